#pragma once
// Runs vfioctl's command line in this process (cli::run) against an
// injected host, a FakeKernel over a fixture tree or a Host over a root,
// and keeps what it printed.

#include "cli/cli.hpp"
#include "fixture/fixture.hpp"

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace vfioctl::test {

struct CliRun {
    int exit_code = -1;
    std::string out;
    std::string err;
    // stdout parsed as JSON; a null value when it is not JSON.
    nlohmann::json json() const {
        return nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
    }
};

// Paths for a test: the default state dir (under the host's root) and the
// run base in a temporary directory the caller keeps.
inline services::Paths test_paths(const fixture::TempDir& run_base) {
    services::Paths p;
    p.run_base = run_base.path.string();
    return p;
}

// vfioctl ARGS... against host, with paths, input on standard input
// (a terminal when terminal is true).
inline CliRun run_cli(const host::Host& host, const std::vector<std::string>& args,
                      const services::Paths& paths, const std::string& input = {},
                      bool terminal = false) {
    cli::Services s;
    s.host = &host;
    s.paths = paths;
    std::istringstream in(input);
    s.in = &in;
    s.in_is_terminal = terminal;
    std::ostringstream out, err;
    CliRun r;
    r.exit_code = cli::run(args, s, out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

// True when text contains needle.
inline bool contains(const std::string& text, const std::string& needle) {
    return text.find(needle) != std::string::npos;
}

} // namespace vfioctl::test
