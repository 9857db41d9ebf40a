#include "cli/cli.hpp"

#include "build_info.hpp"
#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <optional>
#include <sstream>

namespace vfioctl::cli {

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        status_command(), groups_command(), explain_command(), snapshot_command(),
        export_command(), bind_command(),   unbind_command(),  recover_command(),
        iommu_command(),  vm_command(),     verify_command()};
    return table;
}

CLI::Validator host_path_value(const std::string& option) {
    return CLI::Validator(
        [option](std::string& s) -> std::string {
            if (s.empty() || s.front() != '/')
                return option + " must be an absolute path, not '" + s + "'";
            for (const auto& part : util::split(s, '/'))
                if (part == "..")
                    return option + " must not contain '..' (it is a path under --root): '" + s +
                           "'";
            return {};
        },
        "ABSOLUTE_PATH");
}

const CLI::Validator& state_dir_check() {
    static const CLI::Validator v = host_path_value("--state-dir");
    return v;
}

CLI::Validator seconds_value() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            const char* begin = text.c_str();
            char* end = nullptr;
            errno = 0;
            const double v = std::strtod(begin, &end);
            if (end == begin || *end != '\0' || errno == ERANGE)
                return "'" + text + "' is not a number of seconds";
            if (!std::isfinite(v) || v < 0 || v > k_max_seconds)
                return "'" + text + "' is not a number of seconds from 0 to " +
                       fmt::format("{:.0f}", k_max_seconds);
            return {};
        },
        "SECONDS", "seconds");
}

std::string json_text(const nlohmann::json& j) {
    std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    // dump escapes C0 controls but leaves C1 ones (U+0080..U+009F) raw, and
    // U+009B is CSI to some terminals: escape them too. The text is valid
    // UTF-8, so 0xc2 is always a lead byte, inside a string.
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
        if (static_cast<unsigned char>(text[i]) == 0xc2 && next >= 0x80 && next < 0xa0) {
            out += fmt::format("\\u{:04x}", next);
            ++i;
        } else {
            out += text[i];
        }
    }
    return out;
}

int report_error_to(std::ostream& out, std::ostream& err, bool json, const Error& e, int code,
                    const nlohmann::json& extra) {
    if (json) {
        nlohmann::json j = extra.is_object() ? extra : nlohmann::json::object();
        j["error"] = e.describe();
        if (!e.hint.empty()) j["hint"] = e.hint;
        j["exit_code"] = code;
        j["schema_version"] = k_json_schema_version;
        out << json_text(j) << "\n";
    }
    err << "vfioctl: error: " << util::printable(e.describe()) << "\n";
    if (!e.hint.empty()) err << "hint: " << util::printable(e.hint, true) << "\n";
    return code;
}

int report_error(Context& ctx, const Error& e, int code, const nlohmann::json& extra) {
    return report_error_to(ctx.out, ctx.err, ctx.json, e, code, extra);
}

Report failed(Error e, int code, nlohmann::json extra, std::string text) {
    Report r;
    r.text = std::move(text);
    r.json = std::move(extra);
    r.error = std::move(e);
    r.exit_code = code;
    return r;
}

Report refused(const services::Refusal& r) {
    return failed(r.error, r.wont_work ? exit_wont_work : exit_failure);
}

int render(Context& ctx, const Report& r) {
    if (!ctx.json) ctx.out << r.text;
    if (r.error) return report_error(ctx, *r.error, r.exit_code, r.json);
    if (ctx.json && !r.json.is_null()) print_json(ctx, r.json);
    return r.exit_code;
}

int report_refusal(Context& ctx, const services::Refusal& r) {
    return report_error(ctx, r.error, r.wont_work ? exit_wont_work : exit_failure);
}

void warn(Context& ctx, const std::string& text) {
    ctx.err << "vfioctl: warning: " << util::printable(text) << "\n";
}

void print_json(Context& ctx, const nlohmann::json& j) {
    ctx.out << json_text(j) << "\n";
}

void define_app(CLI::App& app, const services::Paths& paths, AppState& state) {
    app.name("vfioctl");
    app.description("vfioctl: take a Linux host from 'IOMMU off' to a GPU passed through to a "
                    "QEMU VM and back, safely, and prove each step.");
    app.set_version_flag("--version", std::string("vfioctl ") + VFIOCTL_VERSION + " (commit " +
                                          build_commit() + ")");
    app.add_flag("--json", state.json, "print machine-readable JSON on stdout");
    app.add_option("--root", state.root,
                   "run against a recorded or fixture host tree instead of / (see 'snapshot')");
    app.require_subcommand(1);
    app.fallthrough();
    for (const auto& c : commands()) {
        CLI::App* sub = app.add_subcommand(c.name, c.help);
        state.handlers.emplace_back(sub, c.setup(*sub, paths));
    }
}

namespace {

// Passes text to another stream buffer line by line through
// util::printable (newlines kept): whatever a command prints, no control
// byte or escape sequence from the host reaches the terminal raw.
class PrintableBuf : public std::streambuf {
  public:
    explicit PrintableBuf(std::streambuf* dest) : m_dest(dest) {}
    PrintableBuf(const PrintableBuf&) = delete;
    PrintableBuf& operator=(const PrintableBuf&) = delete;
    ~PrintableBuf() override { sync(); }

  protected:
    int_type overflow(int_type c) override {
        if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
        const char ch = traits_type::to_char_type(c);
        xsputn(&ch, 1);
        return c;
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        m_pending.append(s, static_cast<size_t>(n));
        const size_t nl = m_pending.rfind('\n');
        if (nl != std::string::npos) pass(nl + 1);
        return n;
    }
    int sync() override {
        pass(m_pending.size());
        return m_dest->pubsync();
    }

  private:
    // Writes the first n pending bytes, made printable.
    void pass(size_t n) {
        if (n == 0) return;
        const std::string text = util::printable(std::string_view(m_pending).substr(0, n), true);
        m_dest->sputn(text.data(), static_cast<std::streamsize>(text.size()));
        m_pending.erase(0, n);
    }

    std::streambuf* m_dest;
    std::string m_pending;
};

// The app whose subcommand is missing after a failed parse: the deepest
// one the arguments reached, when it requires a subcommand and got none.
CLI::App* missing_subcommand(CLI::App& app) {
    CLI::App* at = &app;
    for (;;) {
        auto subs = at->get_subcommands();
        if (subs.empty()) break;
        at = subs.front();
    }
    return at->get_require_subcommand_min() > 0 ? at : nullptr;
}

// A parse error in words: an unknown command named with the commands
// there are, else CLI11's own message. Exit code 2.
int report_parse_error(CLI::App& app, const CLI::ParseError& e, bool json, std::ostream& out,
                       std::ostream& err) {
    if (CLI::App* at = missing_subcommand(app)) {
        std::string word;
        for (const auto& r : app.remaining(true))
            if (!r.empty() && r[0] != '-') {
                word = r;
                break;
            }
        std::vector<std::string> names;
        const CLI::App* cat = at;
        for (const CLI::App* s :
             cat->get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); }))
            names.push_back(s->get_name());
        std::string path = at == &app ? "vfioctl" : "vfioctl " + at->get_name();
        Error error{word.empty() ? "'" + path + "' needs a command"
                                 : "unknown command '" + word + "'",
                    {},
                    "the commands of '" + path + "': " + util::join(names, ", ") + "; '" + path +
                        " --help' says more",
                    0};
        return report_error_to(out, err, json, error, exit_usage);
    }
    // CLI11's message quotes the argument as given: escaped like any other
    // text (an argument may carry an escape sequence), and JSON with --json.
    return report_error_to(
        out, err, json,
        Error{e.what(),
              {},
              "'vfioctl --help' lists the commands; 'vfioctl COMMAND --help' their options",
              0},
        exit_usage);
}

int run_parsed(const std::vector<std::string>& args, const Services& services, std::ostream& out,
               std::ostream& err) {
    CLI::App app;
    AppState state;
    define_app(app, services.paths, state);
    const bool& json = state.json;
    const std::string& root = state.root;
    try {
        // CLI11 takes the arguments last first.
        app.parse(std::vector<std::string>(args.rbegin(), args.rend()));
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e, out, err);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e, out, err);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e, out, err);
    } catch (const CLI::ParseError& e) {
        // --json as given: its variable is set only once the parse is done.
        return report_parse_error(app, e, json || app.get_option("--json")->count() > 0, out, err);
    }
    // Text on the terminal is made printable; JSON escapes its own strings.
    PrintableBuf out_buf(out.rdbuf()), err_buf(err.rdbuf());
    std::ostream text_out(&out_buf), text_err(&err_buf);
    text_err.setf(std::ios::unitbuf); // stderr stays unbuffered
    std::ostream& cmd_out = json ? out : text_out;
    if (root.empty())
        // Never the live host by accident: "/" is the way to say it.
        return report_error_to(
            cmd_out, text_err, json,
            Error{"--root is empty", {}, "give a host tree, or omit --root for this machine", 0},
            exit_usage);
    std::optional<host::Host> own_host;
    if (!services.host) own_host.emplace(root);
    const host::Host& host = services.host ? *services.host : *own_host;
    std::istringstream no_input;
    std::istream& in = services.in ? *services.in : no_input;
    Context ctx{host, services.paths, json, cmd_out, text_err, in, services.in_is_terminal};
    if (!ctx.host.is_live()) {
        if (!ctx.host.is_dir("/"))
            return report_error(ctx,
                                Error{"--root is not a directory", root,
                                      "give a tree written by 'vfioctl snapshot DIR'", 0},
                                exit_usage);
        if (!ctx.host.is_dir("/sys") || !ctx.host.is_dir("/proc"))
            return report_error(
                ctx,
                Error{"--root is not a host tree (it has no sys/ or no proc/ directory)", root,
                      "--root must name a host tree: give a tree written by "
                      "'vfioctl snapshot DIR'",
                      0},
                exit_usage);
    }
    for (auto& [sub, handler] : state.handlers)
        if (sub->parsed()) return handler(ctx);
    return exit_usage;
}

} // namespace

int run(const std::vector<std::string>& args, const Services& services, std::ostream& out,
        std::ostream& err) {
    bool json = false;
    for (const auto& a : args) {
        if (a == "--") break;
        json |= a == "--json";
    }
    // The last resort: no exception ends in std::terminate.
    try {
        return run_parsed(args, services, out, err);
    } catch (const std::exception& e) {
        return report_error_to(out, err, json,
                               Error{std::string("internal error: ") + e.what(), {}, {}, 0},
                               exit_failure);
    } catch (...) {
        return report_error_to(
            out, err, json, Error{"internal error: an unknown exception", {}, {}, 0}, exit_failure);
    }
}

} // namespace vfioctl::cli
