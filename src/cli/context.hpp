#pragma once
// What every command handler gets: the host, output mode and streams.

#include "host/host.hpp"
#include "util/result.hpp"

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace vfioctl::cli {

enum Exit { exit_ok = 0, exit_failure = 1, exit_usage = 2, exit_wont_work = 3 };

struct Context {
    host::Host host;
    bool json = false;
    std::ostream& out;
    std::ostream& err;
};

// Prints "vfioctl: error: ..." and "hint: ..." (or a JSON error object when
// --json) and returns the exit code to use.
int report_error(Context& ctx, const Error& e, int code = exit_failure);
// Prints a warning line to stderr ("vfioctl: warning: ...").
void warn(Context& ctx, const std::string& text);
// Writes j to ctx.out, indented, with a final newline.
void print_json(Context& ctx, const nlohmann::json& j);

} // namespace vfioctl::cli
