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

// The one place errors become messages: "vfioctl: error: ..." and
// "hint: ..." on err and, with json, an object on out holding extra's
// fields (when it is an object) and "error", "hint", "exit_code". Returns
// code. Host text in the message is escaped for the terminal.
int report_error_to(std::ostream& out, std::ostream& err, bool json, const Error& e, int code,
                    const nlohmann::json& extra = nullptr);
// report_error_to on ctx's streams and mode.
int report_error(Context& ctx, const Error& e, int code = exit_failure,
                 const nlohmann::json& extra = nullptr);
// Prints a warning line to stderr ("vfioctl: warning: ..."), escaped.
void warn(Context& ctx, const std::string& text);
// The JSON text of j, indented; bytes that are not UTF-8 become U+FFFD
// (never throws on host bytes).
std::string json_text(const nlohmann::json& j);
// Writes j to ctx.out as json_text, with a final newline.
void print_json(Context& ctx, const nlohmann::json& j);

} // namespace vfioctl::cli
