#pragma once
// The command-line definition: the CLI11 app with its global options and
// one subcommand per row of commands(). run() parses with it; the
// generator of the man pages and shell completions (tools/gendoc.cpp)
// walks it, so that neither can drift from --help.

#include "cli/context.hpp"
#include "services/paths.hpp"

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace vfioctl::cli {

// What the parse fills in: the global options and, per command, its
// subcommand and the handler to run when it was given.
struct AppState {
    bool json = false;
    std::string root = "/";
    std::vector<std::pair<CLI::App*, std::function<int(Context&)>>> handlers;
};

// Names app "vfioctl", gives it its description, --version, --json and
// --root, and adds every command (option defaults from paths). state must
// outlive app: the options write into it.
void define_app(CLI::App& app, const services::Paths& paths, AppState& state);

} // namespace vfioctl::cli
