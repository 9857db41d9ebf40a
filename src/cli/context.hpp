#pragma once
// What every command handler gets: the host, paths, output mode and streams.

#include "host/host.hpp"
#include "services/devices.hpp"
#include "services/paths.hpp"
#include "util/result.hpp"

#include <istream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>

namespace vfioctl::cli {

// 4: 'recover --at-boot' left journal entries that only 'vfioctl recover'
// may handle (their boot, or the running one, is unknown, or they are of
// this boot).
enum Exit { exit_ok = 0, exit_failure = 1, exit_usage = 2, exit_wont_work = 3, exit_left = 4 };

// "schema_version" of the JSON that status, groups, bind, vm status and
// every error print (docs/schema/README.md): bumped when a field is removed
// or changes type or meaning; an added field does not bump it.
inline constexpr int k_json_schema_version = 1;

// The host is held by reference: a FakeKernel stays one.
struct Context {
    const host::Host& host;
    const services::Paths& paths;
    bool json = false;
    std::ostream& out;
    std::ostream& err;
    // Standard input, and whether it is a terminal (questions are asked
    // only on one).
    std::istream& in;
    bool terminal = false;
};

// What a command says, printed by render: its text (without --json) or its
// JSON (with it) on out, and its exit code; with an error, the error on
// err after the text, and in JSON the error's fields joined to json's.
struct Report {
    std::string text;
    nlohmann::json json = nullptr; // null: nothing on out with --json
    std::optional<Error> error;
    int exit_code = exit_ok;
};
// A Report of e with code; extra holds the JSON fields printed with it,
// text what the text mode prints before the error.
Report failed(Error e, int code = exit_failure, nlohmann::json extra = nullptr,
              std::string text = {});
// A Report of a refusal to take devices: exit 3 when passthrough will not
// work, else 1.
Report refused(const services::Refusal& r);
// Prints r on ctx as text or JSON (report_error for its error); returns
// its exit code.
int render(Context& ctx, const Report& r);

// The one place errors become messages: "vfioctl: error: ..." and
// "hint: ..." on err and, with json, an object on out holding extra's
// fields (when it is an object) and "error", "hint", "exit_code". Returns
// code. Host text in the message is escaped for the terminal.
int report_error_to(std::ostream& out, std::ostream& err, bool json, const Error& e, int code,
                    const nlohmann::json& extra = nullptr);
// report_error_to on ctx's streams and mode.
int report_error(Context& ctx, const Error& e, int code = exit_failure,
                 const nlohmann::json& extra = nullptr);
// report_error of a refusal to take devices: exit 3 when passthrough
// will not work, else 1.
int report_refusal(Context& ctx, const services::Refusal& r);
// Prints a warning line to stderr ("vfioctl: warning: ..."), escaped.
void warn(Context& ctx, const std::string& text);
// The JSON text of j, indented; bytes that are not UTF-8 become U+FFFD
// (never throws on host bytes).
std::string json_text(const nlohmann::json& j);
// Writes j to ctx.out as json_text, with a final newline.
void print_json(Context& ctx, const nlohmann::json& j);

} // namespace vfioctl::cli
