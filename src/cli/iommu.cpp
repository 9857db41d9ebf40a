// 'vfioctl iommu show | enable | disable | revert': the IOMMU in the boot
// configuration, with a diff first, a backup, a journal and a way back.

#include "boot/apply.hpp"
#include "boot/diff.hpp"
#include "boot/journal.hpp"
#include "boot/plan.hpp"
#include "boot/setup.hpp"
#include "cli/commands.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>
#include <sstream>

namespace vfioctl::cli {

namespace {

using nlohmann::json;

// reboot_pending in JSON: null when the running command line is unknown.
json pending_json(const boot::BootState& st) {
    return st.running_known ? json(st.reboot_pending) : json(nullptr);
}

// The options of the iommu subcommands, shared by their parsers.
struct IommuOptions {
    bool dry_run = false;
    bool yes = false;
    bool no_pt = false;
    std::string iommu; // "", "intel", "amd"
    std::string state_dir;
};

// A string or null.
json opt_json(const std::optional<std::string>& s) {
    return s ? json(*s) : json(nullptr);
}

// Parameters joined, or "no IOMMU parameters".
std::string words(const std::vector<std::string>& v) {
    return v.empty() ? std::string("no IOMMU parameters") : util::join(v, " ");
}

// The places that write the effective command line, as "file:line (VAR)".
std::vector<std::string> places(const boot::BootSetup& s) {
    std::vector<std::string> out;
    for (const auto& set : s.sets) {
        auto v = set.view();
        bool any = false;
        for (const auto& p : v.effective) {
            if (p.where.empty() || std::find(out.begin(), out.end(), p.where) != out.end())
                continue;
            out.push_back(p.where);
            any = true;
        }
        if (!any)
            for (const auto& f : set.files())
                out.push_back(f.path + " (nothing yet)");
    }
    return out;
}

// A command line's IOMMU parameters and what they do on this platform.
std::string iommu_words(const std::optional<std::string>& cmdline, const boot::PlatformGuess& pg) {
    if (!cmdline) return "unknown";
    auto params = boot::iommu_params(*cmdline);
    std::string s = words(params);
    if (!pg.platform) return s;
    auto c = boot::interpret(boot::tokenize(*cmdline));
    bool on = boot::iommu_on(c, *pg.platform, pg.intel_default_on.value_or(false));
    std::string verdict = on ? "IOMMU on" : "IOMMU off";
    if (*pg.platform == boot::Platform::intel && c.intel == boot::Switch::unset && !c.iommu_off &&
        !pg.intel_default_on)
        verdict = "IOMMU off unless this kernel turns it on by default";
    return s + " (" + verdict + ")";
}

// The boot setup as JSON: loader, files, places, the boot loader's own file.
json setup_json(const boot::BootSetup& s) {
    json sets = json::array();
    for (const auto& set : s.sets) {
        json files = json::array();
        for (const auto& f : set.files())
            files.push_back({{"path", f.path}, {"format", boot::format_id(f.format)}});
        auto v = set.view();
        sets.push_back({{"label", set.label()},
                        {"files", files},
                        {"cmdline", v.cmdline},
                        {"uncertain", v.uncertain}});
    }
    return {{"loader", boot::loader_id(s.loader)},
            {"description", s.description},
            {"evidence", s.evidence},
            {"editable", s.editable()},
            {"config", sets},
            {"places", places(s)},
            {"generated_path", s.generated_path.empty() ? json(nullptr) : json(s.generated_path)},
            {"generated_cmdline", opt_json(s.generated_cmdline)},
            {"notes", s.notes}};
}

// A journal operation as JSON.
json operation_json(const boot::Operation& o) {
    json files = json::array();
    for (const auto& f : o.files)
        files.push_back({{"path", f.path}, {"backup", f.backup}});
    return {{"id", o.id},       {"action", o.action},   {"time", o.time}, {"state", o.state},
            {"added", o.added}, {"removed", o.removed}, {"files", files}};
}

// 'iommu show'; never fails on a readable root.
Report run_show(Context& ctx, const IommuOptions& opt) {
    auto st = boot::inspect_boot(ctx.host);
    auto pg = boot::detect_platform(ctx.host);
    // grubby and kernelstub take the change itself: show its shape.
    auto regen = boot::regenerate_command(ctx.host, st.setup, {"ADDED"}, {"REMOVED"});
    auto journal = boot::load_journal(ctx.host, opt.state_dir);
    const boot::Operation* last = journal ? journal->last_undoable() : nullptr;
    if (ctx.json) {
        json j = setup_json(st.setup);
        j["regenerate"] = regen.argv;
        j["configured_cmdline"] = opt_json(st.configured_cmdline);
        j["next_cmdline"] = opt_json(st.next_cmdline);
        j["running_cmdline"] = st.running_cmdline;
        j["next_iommu"] = st.next_iommu;
        j["running_iommu"] = st.running_iommu;
        j["reboot_pending"] = pending_json(st);
        j["regenerate_pending"] = st.regenerate_pending;
        j["reason"] = st.reason;
        j["platform"] = pg.platform ? json(boot::platform_id(*pg.platform)) : json(nullptr);
        j["platform_evidence"] = pg.evidence;
        j["last_change"] = last ? operation_json(*last) : json(nullptr);
        if (!journal) j["journal_error"] = journal.error().describe();
        Report r;
        r.json = std::move(j);
        return r;
    }
    std::ostringstream o;
    o << fmt::format("Boot loader:     {}\n", st.setup.description);
    if (!st.setup.evidence.empty())
        o << fmt::format("  found by:      {}\n", util::join(st.setup.evidence, ", "));
    if (st.setup.editable()) {
        auto pl = places(st.setup);
        for (size_t i = 0; i < pl.size(); ++i)
            o << (i ? "                 " : "Configured in:   ") << pl[i] << "\n";
        o << fmt::format("Regenerate with: {}\n",
                         regen.argv.empty()
                             ? std::string("nothing (the entries are read as they are)")
                             : util::join(regen.argv, " "));
    }
    o << fmt::format("\nConfigured:      {}\n", st.configured_cmdline
                                                    ? util::printable(*st.configured_cmdline)
                                                    : std::string("unknown"));
    if (st.setup.generated_cmdline && st.setup.generated_cmdline != st.configured_cmdline)
        o << fmt::format("Boot loader has: {}  ({})\n",
                         util::printable(*st.setup.generated_cmdline), st.setup.generated_path);
    o << fmt::format("Running:         {}\n", st.running_cmdline.empty()
                                                  ? std::string("unknown")
                                                  : util::printable(st.running_cmdline));
    o << fmt::format("\nIOMMU ({}):\n", pg.evidence);
    o << fmt::format("  next boot:     {}\n", iommu_words(st.next_cmdline, pg));
    o << fmt::format("  running now:   {}\n", iommu_words(st.running_cmdline, pg));
    o << fmt::format("Reboot pending:  {}: {}\n",
                     boot::pending_word(st.running_known, st.reboot_pending), st.reason);
    if (last) {
        std::vector<std::string> b;
        for (const auto& f : last->files)
            b.push_back(f.backup);
        o << fmt::format("\nLast change:     {} at {} ({}), backup {}\n", last->action, last->time,
                         last->state, b.empty() ? std::string("none") : util::join(b, ", "));
        o << "                 'vfioctl iommu revert' undoes it\n";
    }
    if (!journal) o << "\nJournal:         " << journal.error().describe() << "\n";
    for (const auto& n : st.setup.notes)
        o << "note: " << n << "\n";
    for (const auto& set : st.setup.sets)
        for (const auto& u : set.view().uncertain)
            o << "note: " << u << "\n";
    Report r;
    r.text = o.str();
    return r;
}

// Asks on the terminal; refuses without one.
int confirm(Context& ctx, const IommuOptions& opt, const std::string& question) {
    if (opt.yes) return exit_ok;
    if (!ctx.terminal)
        return report_error(
            ctx,
            Error{"not changing the boot configuration without a confirmation",
                  {},
                  "review the change with --dry-run, then run again on a terminal or with --yes",
                  0},
            exit_usage);
    ctx.err << question << " [y/N] " << std::flush;
    std::string answer;
    std::getline(ctx.in, answer);
    answer = util::to_lower(util::trim(answer));
    if (answer == "y" || answer == "yes") return exit_ok;
    ctx.err << "nothing was changed\n";
    return exit_failure;
}

// Each edited file with its diff and, once applied, its backup.
json edits_json(const boot::Plan& plan, const std::vector<boot::AppliedFile>& applied) {
    json files = json::array();
    for (const auto& e : plan.edits) {
        json f = {{"path", e.path},
                  {"format", boot::format_id(e.format)},
                  {"diff", boot::unified_diff(e.before, e.after, e.path)}};
        for (const auto& a : applied)
            if (a.path == e.path) f["backup"] = a.backup;
        files.push_back(f);
    }
    return files;
}

// Parameter changes as JSON.
json changes_json(const std::vector<boot::ParamChange>& cs) {
    json out = json::array();
    for (const auto& c : cs)
        out.push_back({{"path", c.path},
                       {"variable", c.variable},
                       {"removed", c.removed},
                       {"added", c.added}});
    return out;
}

// The parameter changes in words, then the diffs.
void print_changes(Context& ctx, const boot::Plan& plan) {
    for (const auto& c : plan.changes) {
        std::string where =
            c.path + (c.variable.empty() || c.variable == "cmdline" ? "" : " (" + c.variable + ")");
        if (!c.removed.empty() && !c.added.empty())
            ctx.out << "  " << c.removed << " -> " << c.added << "   in " << where << "\n";
        else if (!c.added.empty())
            ctx.out << "  add " << c.added << "   in " << where << "\n";
        else
            ctx.out << "  remove " << c.removed << "   from " << where << "\n";
    }
    for (const auto& n : plan.notes)
        ctx.out << "  note: " << n << "\n";
    ctx.out << "\n";
    for (const auto& e : plan.edits)
        ctx.out << boot::unified_diff(e.before, e.after, e.path);
}

// Prints what was done (or what would be) and the state of the next boot.
int finish(Context& ctx, json j, const Result<boot::ApplyResult>& r, const boot::Plan& plan,
           const std::string& state_dir) {
    if (!r) {
        j["applied"] = false;
        return report_error(ctx, r.error(), exit_failure, j);
    }
    auto after = boot::inspect_boot(ctx.host);
    const auto& res = *r;
    j["applied"] = true;
    j["operation"] = res.id;
    j["journal"] = boot::journal_path(state_dir);
    j["files"] = edits_json(plan, res.files);
    j["regenerate"] = {
        {"argv", res.regenerate},
        {"ran", res.regenerate_ran},
        {"exit_code",
         res.regenerate_output ? json(res.regenerate_output->exit_code) : json(nullptr)},
        {"output", res.regenerate_output ? json(res.regenerate_output->output) : json(nullptr)}};
    j["reboot_pending"] = pending_json(after);
    j["regenerate_pending"] = after.regenerate_pending;
    j["next_cmdline"] = opt_json(after.next_cmdline);
    j["reason"] = after.reason;
    j["warnings"] = res.warnings;
    if (ctx.json) {
        print_json(ctx, j);
        return exit_ok;
    }
    auto& o = ctx.out;
    for (const auto& f : res.files)
        o << "backup: " << f.backup << "\n";
    for (const auto& e : plan.edits)
        o << "wrote:  " << e.path << "\n";
    std::string cmd = util::join(res.regenerate, " ");
    if (res.regenerate.empty())
        o << "nothing to regenerate: the boot loader reads these files as they are\n";
    else if (res.regenerate_ran)
        o << "ran:    " << cmd << " (exit code 0)\n";
    else
        o << "not run against --root " << ctx.host.root().string() << "; on that host run: " << cmd
          << "\n";
    for (const auto& w : res.warnings)
        warn(ctx, w);
    o << "\nReboot pending: " << boot::pending_word(after.running_known, after.reboot_pending)
      << ": " << after.reason << "\n";
    if (j.value("action", std::string()) == "revert")
        o << "Reverted (journal " << boot::journal_path(state_dir) << ", operation " << res.id
          << ")\n";
    else
        o << "Undo with 'vfioctl iommu revert' (journal " << boot::journal_path(state_dir)
          << ", operation " << res.id << ")\n";
    return exit_ok;
}

// 'iommu enable' and 'iommu disable': plan, show, confirm, apply. Exit 1 for a
// setup it does not edit or a failed step, 2 without confirmation.
// The end of 'enable', 'disable' and 'revert': with --dry-run the plan as
// shown is all; else, once confirmed, the plan is applied (reverts: the
// operation it undoes) and finish reports it.
int dry_run_or_apply(Context& ctx, const IommuOptions& opt, json j, const boot::BootSetup& setup,
                     const boot::Plan& plan, const std::string& action, const std::string& question,
                     const std::string& reverts = "") {
    if (opt.dry_run) {
        if (ctx.json)
            print_json(ctx, j);
        else
            ctx.out << "\nDry run: nothing was changed.\n";
        return exit_ok;
    }
    if (int c = confirm(ctx, opt, question); c != exit_ok) return c;
    std::unique_ptr<boot::HostRunner> runner;
    if (ctx.host.is_live()) runner = std::make_unique<boot::HostRunner>(ctx.host);
    boot::ApplyOptions ao;
    ao.state_dir = opt.state_dir;
    ao.runner = runner.get();
    auto r = boot::apply_plan(ctx.host, setup, plan, action, ao, reverts);
    if (!ctx.json && r) ctx.out << "\n";
    return finish(ctx, std::move(j), r, plan, opt.state_dir);
}

int run_change(Context& ctx, const IommuOptions& opt, boot::Action action) {
    auto setup = boot::detect_setup(ctx.host);
    std::string running;
    if (auto r = ctx.host.read("/proc/cmdline")) running = std::string(util::trim(*r));
    auto pg = boot::detect_platform(ctx.host);
    std::optional<boot::Platform> platform = pg.platform;
    if (opt.iommu == "intel") platform = boot::Platform::intel;
    if (opt.iommu == "amd") platform = boot::Platform::amd;
    if (!platform)
        return report_error(ctx,
                            Error{"cannot tell which IOMMU this host has: " + pg.evidence,
                                  {},
                                  "say it with --iommu intel or --iommu amd",
                                  0},
                            exit_usage);
    boot::Goal goal{action, *platform, action == boot::Action::enable && !opt.no_pt};
    json j = {{"action", boot::action_id(action)},
              {"dry_run", opt.dry_run},
              {"platform", boot::platform_id(*platform)},
              {"platform_evidence", opt.iommu.empty() ? pg.evidence : "--iommu " + opt.iommu},
              {"wanted", boot::goal_params(goal)}};
    j["setup"] = setup_json(setup);
    std::vector<std::string> warnings;
    if (action == boot::Action::enable && !pg.firmware_table)
        warnings.push_back(
            "the firmware describes no IOMMU (no ACPI DMAR or IVRS table): turn on VT-d or AMD-Vi "
            "in the firmware setup too, or the command line alone changes nothing");
    if (!setup.editable()) {
        auto steps = boot::manual_steps(setup, goal, running);
        j["changed"] = false;
        j["manual_steps"] = steps;
        if (!ctx.json) {
            ctx.out << "Boot loader: " << setup.description << "\n";
            for (const auto& n : setup.notes)
                ctx.out << "note: " << n << "\n";
            ctx.out << "\nvfioctl does not edit this setup; do this by hand:\n";
            for (size_t i = 0; i < steps.size(); ++i)
                ctx.out << "  " << i + 1 << ". " << steps[i] << "\n";
        }
        return report_error(ctx,
                            Error{std::string("nothing was changed: vfioctl does not edit ") +
                                      (std::string("aeiou").find(
                                           boot::loader_id(setup.loader)[0]) != std::string::npos
                                           ? "an "
                                           : "a ") +
                                      boot::loader_id(setup.loader) + " boot setup",
                                  {},
                                  ctx.json ? "follow manual_steps" : "follow the steps above",
                                  0},
                            exit_failure, j);
    }
    auto plan = boot::plan_goal(setup.sets, goal);
    if (!plan) {
        Error e = plan.error();
        e.hint += (e.hint.empty() ? "" : "; ") + std::string("the change is: ") +
                  util::join(boot::goal_params(goal), " ") + " on the kernel command line" +
                  (boot::conflicting_params(running, goal).empty()
                       ? ""
                       : ", without " + util::join(boot::conflicting_params(running, goal), " "));
        return report_error(ctx, e);
    }
    for (const auto& w : warnings)
        warn(ctx, w);
    j["warnings"] = warnings;
    j["changes"] = changes_json(plan->changes);
    j["added"] = plan->added;
    j["removed"] = plan->removed;
    json cls = json::array();
    for (const auto& c : plan->cmdlines)
        cls.push_back({{"label", c.label}, {"before", c.before}, {"after", c.after}});
    j["cmdlines"] = cls;
    auto regen = boot::regenerate_command(ctx.host, setup, plan->added, plan->removed);
    const std::string goal_words = util::join(boot::goal_params(goal), " ");
    if (plan->empty()) {
        auto st = boot::inspect_boot(ctx.host, setup);
        j["changed"] = false;
        j["reboot_pending"] = pending_json(st);
        j["regenerate_pending"] = st.regenerate_pending;
        j["reason"] = st.reason;
        if (ctx.json) {
            print_json(ctx, j);
            return exit_ok;
        }
        ctx.out << "Nothing to change: the boot configuration already "
                << (action == boot::Action::enable ? "turns the IOMMU on" : "turns the IOMMU off")
                << " (" << words(boot::iommu_params(st.configured_cmdline.value_or(""))) << ").\n";
        ctx.out << "Boot loader: " << setup.description << "\n";
        ctx.out << "Reboot pending: " << boot::pending_word(st.running_known, st.reboot_pending)
                << ": " << st.reason << "\n";
        return exit_ok;
    }
    j["changed"] = true;
    j["files"] = edits_json(*plan, {});
    j["regenerate"] = {{"argv", regen.argv}, {"ran", false}};
    if (!ctx.json) {
        ctx.out << "Boot loader: " << setup.description << "\n";
        ctx.out << "IOMMU:       " << boot::platform_id(*platform) << " ("
                << (opt.iommu.empty() ? pg.evidence : "--iommu " + opt.iommu) << ")\n";
        ctx.out << "\nChanges (" << boot::action_id(action) << ": " << goal_words << "):\n";
        print_changes(ctx, *plan);
        ctx.out
            << "\nThen: "
            << (regen.argv.empty()
                    ? std::string(
                          "nothing to regenerate (the boot loader reads these files as they are)")
                    : util::join(regen.argv, " "))
            << "\n";
    }
    return dry_run_or_apply(ctx, opt, std::move(j), setup, *plan, boot::action_id(action),
                            "Change the boot configuration?");
}

// 'iommu revert': undoes the journal's last enable or disable.
int run_revert(Context& ctx, const IommuOptions& opt) {
    auto setup = boot::detect_setup(ctx.host);
    auto rp = boot::plan_revert(ctx.host, opt.state_dir);
    if (!rp) return report_error(ctx, rp.error());
    const auto& op = rp->undoes;
    auto regen = boot::regenerate_command(ctx.host, setup, rp->plan.added, rp->plan.removed);
    json j = {{"action", "revert"},
              {"dry_run", opt.dry_run},
              {"reverts", operation_json(op)},
              {"exact", rp->exact},
              {"merged", rp->merged},
              {"untouched", rp->untouched},
              {"changes", changes_json(rp->plan.changes)},
              {"files", edits_json(rp->plan, {})},
              {"regenerate", {{"argv", regen.argv}, {"ran", false}}},
              {"notes", rp->plan.notes}};
    j["setup"] = setup_json(setup);
    if (!ctx.json) {
        ctx.out << "Undoing '" << op.action << "' of " << op.time << " (operation " << op.id << ", "
                << op.state << ")\n";
        for (const auto& f : rp->exact) {
            std::string backup;
            for (const auto& jf : op.files)
                if (jf.path == f) backup = jf.backup;
            ctx.out << "  " << f << ": restored from " << backup << " exactly\n";
        }
        for (const auto& f : rp->merged)
            ctx.out << "  " << f
                    << ": changed since; only the parameters vfioctl changed are put back\n";
        for (const auto& f : rp->untouched)
            ctx.out << "  " << f << ": already as it was before\n";
        for (const auto& n : rp->plan.notes)
            ctx.out << "  note: " << n << "\n";
        ctx.out << "\n";
        for (const auto& e : rp->plan.edits)
            ctx.out << boot::unified_diff(e.before, e.after, e.path);
        if (!rp->plan.empty())
            ctx.out << "\nThen: "
                    << (regen.argv.empty() ? std::string("nothing to regenerate")
                                           : util::join(regen.argv, " "))
                    << "\n";
    }
    if (rp->plan.edits.empty()) {
        // Every file is already as it was: nothing to write, and no "Reverted".
        std::vector<std::string> files = rp->untouched;
        files.insert(files.end(), rp->merged.begin(), rp->merged.end());
        Error e{"nothing was reverted: " +
                    (files.empty()
                         ? std::string("operation ") + op.id + " changed no file"
                         : util::join(files, ", ") + (files.size() == 1 ? " is" : " are") +
                               " already as before '" + op.action + "' (operation " + op.id + ")"),
                {},
                {},
                0};
        j["changed"] = false;
        j["applied"] = false;
        if (opt.dry_run) {
            e.hint = "nothing was changed";
            return report_error(ctx, e, exit_failure, j);
        }
        // The journal entry is closed, so that 'show' and 'revert' stop offering it.
        boot::ApplyOptions ao;
        ao.state_dir = opt.state_dir;
        auto closed = boot::apply_plan(ctx.host, setup, rp->plan, "revert", ao, op.id);
        if (!closed) return report_error(ctx, closed.error(), exit_failure, j);
        e.hint = "no file was changed; the journal records operation " + op.id +
                 " as reverted (by " + closed->id + ")";
        j["journal"] = boot::journal_path(opt.state_dir);
        j["operation"] = closed->id;
        return report_error(ctx, e, exit_failure, j);
    }
    return dry_run_or_apply(ctx, opt, std::move(j), setup, rp->plan, "revert",
                            "Revert the boot configuration?", op.id);
}

} // namespace

Command iommu_command() {
    return {
        "iommu",
        "the IOMMU in the boot configuration: show it, enable or disable it (with a diff and a "
        "backup), revert",
        [](CLI::App& sub, const services::Paths& paths) {
            auto opt = std::make_shared<IommuOptions>();
            opt->state_dir = paths.state_dir;
            sub.require_subcommand(1);
            CLI::App* show = sub.add_subcommand(
                "show",
                "the boot loader, where the command line is configured, what the next boot gets "
                "next to the running one, and whether a reboot is pending");
            CLI::App* en = sub.add_subcommand(
                "enable",
                "turn the IOMMU on in the boot configuration (intel_iommu=on on Intel, by the "
                "firmware's ACPI tables; iommu=pt) and remove what turns it off");
            CLI::App* dis = sub.add_subcommand(
                "disable",
                "turn the IOMMU off in the boot configuration (intel_iommu=off, or amd_iommu=off)");
            CLI::App* rev = sub.add_subcommand(
                "revert",
                "undo the last enable or disable: restore the backup exactly, or take out only "
                "vfioctl's parameters when the file changed since");
            for (CLI::App* c : {show, en, dis, rev})
                c->add_option("--state-dir", opt->state_dir,
                              "where the journal lives, under --root (default " + paths.state_dir +
                                  ")")
                    ->check(state_dir_check());
            for (CLI::App* c : {en, dis, rev}) {
                c->add_flag("--dry-run", opt->dry_run,
                            "print the diff and the regenerate command, change nothing");
                c->add_flag("-y,--yes", opt->yes, "do not ask for confirmation");
            }
            for (CLI::App* c : {en, dis})
                c->add_option("--iommu", opt->iommu,
                              "intel or amd, when the firmware tables do not say (default: from "
                              "ACPI DMAR/IVRS)")
                    ->check(CLI::IsMember({"intel", "amd"}));
            en->add_flag("--no-pt", opt->no_pt, "leave iommu=pt out");
            return [=](Context& ctx) {
                if (show->parsed()) return render(ctx, run_show(ctx, *opt));
                if (en->parsed()) return run_change(ctx, *opt, boot::Action::enable);
                if (dis->parsed()) return run_change(ctx, *opt, boot::Action::disable);
                if (rev->parsed()) return run_revert(ctx, *opt);
                return static_cast<int>(exit_usage);
            };
        }};
}

} // namespace vfioctl::cli
