#include "cli/cli.hpp"

#include "cli/commands.hpp"

#include "util/strings.hpp"

#include <iostream>

namespace vfioctl::cli {

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {status_command(), groups_command(),
                                               explain_command(), snapshot_command(),
                                               bind_command(),   unbind_command(),
                                               recover_command(), iommu_command(),
                                               vm_command(),     verify_command()};
    return table;
}

const CLI::Validator& state_dir_check() {
    static const CLI::Validator v(
        [](std::string& s) -> std::string {
            if (s.empty() || s.front() != '/') return "--state-dir must be an absolute path, not '" + s + "'";
            for (const auto& part : util::split(s, '/'))
                if (part == "..") return "--state-dir must not contain '..' (it is a path under --root): '" + s + "'";
            return {};
        },
        "ABSOLUTE_PATH");
    return v;
}

int report_error(Context& ctx, const Error& e, int code) {
    if (ctx.json) {
        nlohmann::json j = {{"error", e.describe()}, {"exit_code", code}};
        if (!e.hint.empty()) j["hint"] = e.hint;
        print_json(ctx, j);
    }
    ctx.err << "vfioctl: error: " << e.describe() << "\n";
    if (!e.hint.empty()) ctx.err << "hint: " << e.hint << "\n";
    return code;
}

void warn(Context& ctx, const std::string& text) { ctx.err << "vfioctl: warning: " << text << "\n"; }

void print_json(Context& ctx, const nlohmann::json& j) { ctx.out << j.dump(2) << "\n"; }

int run(int argc, char** argv) {
    // Listings of thousands of devices: no per-write sync with C stdio.
    std::ios::sync_with_stdio(false);
    CLI::App app{"vfioctl: take a Linux host from 'IOMMU off' to a GPU passed through to a QEMU VM "
                 "and back, safely, and prove each step.",
                 "vfioctl"};
    app.set_version_flag("--version", std::string("vfioctl ") + VFIOCTL_VERSION);
    bool json = false;
    std::string root = "/";
    app.add_flag("--json", json, "print machine-readable JSON on stdout");
    app.add_option("--root", root,
                   "run against a recorded or fixture host tree instead of / (see 'snapshot')");
    app.require_subcommand(1);
    app.fallthrough();

    std::vector<std::pair<CLI::App*, std::function<int(Context&)>>> handlers;
    for (const auto& c : commands()) {
        CLI::App* sub = app.add_subcommand(c.name, c.help);
        handlers.emplace_back(sub, c.setup(*sub));
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        std::cerr << "hint: 'vfioctl --help' lists the commands; 'vfioctl COMMAND --help' their options\n";
        return exit_usage;
    }
    if (root.empty()) {
        // Never the live host by accident: "/" is the way to say it.
        Context bad{host::Host("/"), json, std::cout, std::cerr};
        return report_error(bad, Error{"--root is empty", {}, "give a host tree, or omit --root for this machine", 0},
                            exit_usage);
    }
    Context ctx{host::Host(root), json, std::cout, std::cerr};
    if (!ctx.host.is_live()) {
        if (!ctx.host.is_dir("/"))
            return report_error(ctx, Error{"--root is not a directory", root,
                                           "give a tree written by 'vfioctl snapshot DIR'", 0},
                                 exit_usage);
        if (!ctx.host.is_dir("/sys") || !ctx.host.is_dir("/proc"))
            return report_error(ctx, Error{"--root is not a host tree (it has no sys/ or no proc/ directory)", root,
                                           "--root must name a host tree: give a tree written by "
                                           "'vfioctl snapshot DIR'", 0},
                                 exit_usage);
    }
    for (auto& [sub, handler] : handlers)
        if (sub->parsed()) return handler(ctx);
    return exit_usage;
}

} // namespace vfioctl::cli
