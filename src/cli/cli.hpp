#pragma once
// The command-line front end: parses arguments, runs one command from the
// table, prints its result as text or JSON, and maps errors to exit codes
// (0 ok, 1 failure, 2 usage, 3 "passthrough will not work").

#include "host/host.hpp"
#include "services/paths.hpp"

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace vfioctl::cli {

// What the commands run against, made by the caller: the live machine in
// main(), a FakeKernel over a fixture tree in tests.
struct Services {
    // The host the commands read and change; null: a Host built from --root
    // (the live machine without it). An injected host is used as given.
    const host::Host* host = nullptr;
    services::Paths paths;
    // Standard input; null: empty. in_is_terminal: it is a terminal, where
    // commands may ask before they change something.
    std::istream* in = nullptr;
    bool in_is_terminal = false;
};

// Runs "vfioctl ARGS..." (args without the program name) against services,
// printing to out and err; returns the exit code. Never throws.
int run(const std::vector<std::string>& args, const Services& services, std::ostream& out,
        std::ostream& err);

} // namespace vfioctl::cli
