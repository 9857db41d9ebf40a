#include "cli/cli.hpp"
#include "services/console.hpp"

#include <iostream>

int main(int argc, char** argv) {
    // Listings of thousands of devices: no per-write sync with C stdio.
    std::ios::sync_with_stdio(false);
    vfioctl::cli::Services live;
    live.paths = vfioctl::services::Paths::from_environment();
    live.in = &std::cin;
    live.in_is_terminal = vfioctl::services::stdin_is_terminal();
    return vfioctl::cli::run(std::vector<std::string>(argv + 1, argv + argc), live, std::cout,
                             std::cerr);
}
