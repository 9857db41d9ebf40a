#include "cli/cli.hpp"

int main(int argc, char** argv) {
    return vfioctl::cli::run(argc, argv);
}
