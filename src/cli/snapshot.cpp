// 'vfioctl snapshot DIR': record this host for --root, bug reports and tests.

#include "host/snapshot.hpp"

#include "cli/commands.hpp"

namespace vfioctl::cli {

namespace {

int run_snapshot(Context& ctx, const std::string& dir) {
    auto stats = host::snapshot(ctx.host, dir, [&](const std::string& phase) {
        if (!ctx.json) ctx.err << "snapshot: " << phase << "\n";
    });
    if (!stats) return report_error(ctx, stats.error());
    if (ctx.json) {
        print_json(ctx, {{"directory", dir},
                         {"files", stats->files},
                         {"links", stats->links},
                         {"dirs", stats->dirs},
                         {"bytes", stats->bytes},
                         {"skipped", stats->skipped}});
    } else {
        ctx.out << "Recorded " << stats->files << " files, " << stats->links << " links and "
                << stats->dirs << " directories (" << stats->bytes / 1024 << " KiB) into " << dir
                << "\n";
        if (!stats->skipped.empty())
            ctx.out << stats->skipped.size() << " path(s) could not be read (--json lists them)\n";
        ctx.out << "Use it with: vfioctl --root " << dir << " status\n";
    }
    return exit_ok;
}

} // namespace

Command snapshot_command() {
    return {"snapshot",
            "record, read-only, what vfioctl reads from this host into DIR (for --root)",
            [](CLI::App& sub, const services::Paths&) {
                auto dir = std::make_shared<std::string>();
                sub.add_option("dir", *dir, "a new or empty directory")->required();
                return [dir](Context& ctx) { return run_snapshot(ctx, *dir); };
            }};
}

} // namespace vfioctl::cli
