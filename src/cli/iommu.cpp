// 'vfioctl iommu show | enable | disable | revert': the IOMMU in the boot
// configuration, with a diff first, a backup, a journal and a way back.

#include "boot/apply.hpp"
#include "boot/diff.hpp"
#include "boot/journal.hpp"
#include "boot/plan.hpp"
#include "boot/setup.hpp"
#include "boot/trial.hpp"
#include "cli/commands.hpp"
#include "cli/trial_view.hpp"
#include "util/strings.hpp"
#include "vfio/boot_id.hpp"

#include <fmt/format.h>
#include <functional>
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
    bool permanent = false; // enable: no trial boot
    std::string iommu;      // "", "intel", "amd"
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
    json j = {{"id", o.id},       {"action", o.action},   {"time", o.time}, {"state", o.state},
              {"added", o.added}, {"removed", o.removed}, {"files", files}};
    if (o.trial)
        j["trial"] = {{"entry", o.trial->entry},
                      {"cmdline", o.trial->cmdline},
                      {"marker", o.trial->marker},
                      {"panic_s", o.trial->panic_s},
                      {"oneshot", o.trial->oneshot}};
    return j;
}

} // namespace

json trial_json(const boot::TrialView& v) {
    json j = {{"state", boot::trial_state_id(v.state)}};
    if (v.state == boot::TrialState::none) return j;
    j["operation"] = operation_json(*v.op);
    j["words"] = v.words;
    j["next"] = v.next;
    j["look_at"] = v.look_at;
    return j;
}

void print_trial(std::ostream& o, const boot::TrialView& v, const std::string& indent) {
    if (v.state == boot::TrialState::none) return;
    o << indent << "trial boot:     " << boot::trial_state_id(v.state) << ": " << v.words << "\n";
    o << indent << "                next: " << v.next << "\n";
    for (const auto& l : v.look_at)
        o << indent << "                look at: " << l << "\n";
}

namespace {

// 'iommu show'; never fails on a readable root.
Report run_show(Context& ctx, const IommuOptions& opt) {
    auto st = boot::inspect_boot(ctx.host);
    auto pg = boot::detect_platform(ctx.host);
    // grubby and kernelstub take the change itself: show its shape.
    auto regen = boot::regenerate_command(ctx.host, st.setup, {"ADDED"}, {"REMOVED"});
    auto journal = boot::load_journal(ctx.host, opt.state_dir);
    const boot::Operation* last = journal ? journal->last_undoable() : nullptr;
    boot::TrialView trial;
    if (journal) trial = boot::trial_view(ctx.host, *journal, st.setup);
    if (ctx.json) {
        json j = setup_json(st.setup);
        j["trial"] = journal ? trial_json(trial) : json(nullptr);
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
    if (trial.state != boot::TrialState::none) {
        o << "\n";
        print_trial(o, trial, "");
    }
    if (last) {
        std::vector<std::string> b;
        for (const auto& f : last->files)
            if (!f.backup.empty()) b.push_back(f.backup);
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
        if (!f.backup.empty()) o << "backup: " << f.backup << "\n";
    for (const auto& e : plan.edits)
        o << (e.removed ? "removed: " : e.created ? "created: " : "wrote:  ") << e.path << "\n";
    std::string cmd = util::join(res.regenerate, " ");
    if (res.regenerate.empty())
        o << "nothing to regenerate: the boot loader reads these files as they are\n";
    else if (res.regenerate_ran)
        o << "ran:    " << cmd << " (exit code 0)\n";
    else
        o << "not run against --root " << ctx.host.root().string() << "; on that host run: " << cmd
          << "\n";
    if (auto t = j.find("then"); t != j.end())
        for (const auto& step : *t) {
            std::string c = util::join(step["argv"].get<std::vector<std::string>>(), " ");
            if (step["ran"].get<bool>())
                o << "ran:    " << c << " (exit code " << step["exit_code"].dump() << ")\n";
            else
                o << "not run against --root " << ctx.host.root().string()
                  << "; on that host run: " << c << "\n";
        }
    for (const auto& w : res.warnings)
        warn(ctx, w);
    const std::string action = j.value("action", std::string());
    if (j.value("permanent", true) == false) {
        o << "\nReboot to try it: only the next boot uses the trial entry; a panic in it reboots "
             "into the default entry after "
          << boot::k_trial_panic_s
          << " s.\nIn the trial boot, 'vfioctl iommu confirm' makes it permanent (or enable "
             "vfioctl-trial-confirm.service to confirm once the boot is up).\n"
          << "'vfioctl iommu revert' cancels it (journal " << boot::journal_path(state_dir)
          << ", operation " << res.id << ")\n";
        return exit_ok;
    }
    o << "\nReboot pending: " << boot::pending_word(after.running_known, after.reboot_pending)
      << ": " << after.reason << "\n";
    if (action == "revert")
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
// A step after the files are in place (a one-shot, a second operation),
// given the result and the runner (null against --root); its Error is the
// command's failure.
using AfterApply = std::function<Status(boot::ApplyResult&, json&, boot::CommandRunner*)>;

// Runs argv (or records that it was not run, against --root) as one of
// j["then"]; an Error when it ran and failed.
Status run_then(json& j, boot::CommandRunner* runner, const std::vector<std::string>& argv) {
    if (argv.empty()) return {};
    json step = {{"argv", argv}, {"ran", false}, {"exit_code", nullptr}, {"output", nullptr}};
    Status st;
    if (runner) {
        auto out = runner->run(argv);
        step["ran"] = true;
        if (!out) {
            st = Error{
                "'" + util::join(argv, " ") + "' could not run", {}, out.error().describe(), 0};
        } else {
            step["exit_code"] = out->exit_code;
            step["output"] = out->output;
            if (out->exit_code != 0)
                st = Error{"'" + util::join(argv, " ") + "' failed with exit code " +
                               std::to_string(out->exit_code),
                           {},
                           std::string(util::trim(out->output)),
                           0};
        }
    }
    if (!j.contains("then")) j["then"] = json::array();
    j["then"].push_back(step);
    return st;
}

// The end of a --dry-run: the plan as shown is all.
int dry_run_done(Context& ctx, const json& j) {
    if (ctx.json)
        print_json(ctx, j);
    else
        ctx.out << "\nDry run: nothing was changed.\n";
    return exit_ok;
}

int dry_run_or_apply(Context& ctx, const IommuOptions& opt, json j, const boot::BootSetup& setup,
                     const boot::Plan& plan, const std::string& action, const std::string& question,
                     const std::string& reverts = "",
                     const std::optional<boot::TrialInfo>& trial = std::nullopt,
                     const AfterApply& after = {}) {
    if (opt.dry_run) return dry_run_done(ctx, j);
    if (int c = confirm(ctx, opt, question); c != exit_ok) return c;
    std::unique_ptr<boot::HostRunner> runner;
    if (ctx.host.is_live()) runner = std::make_unique<boot::HostRunner>(ctx.host);
    boot::ApplyOptions ao;
    ao.state_dir = opt.state_dir;
    ao.runner = runner.get();
    ao.trial = trial;
    auto r = boot::apply_plan(ctx.host, setup, plan, action, ao, reverts);
    if (r && after)
        if (Status st = after(*r, j, runner.get()); !st) {
            j["applied"] = false;
            return report_error(ctx, st.error(), exit_failure, j);
        }
    if (!ctx.json && r) ctx.out << "\n";
    return finish(ctx, std::move(j), r, plan, opt.state_dir);
}

// Undoes the open trial (its entry removed, the boot loader regenerated) and
// clears its one-shot; for 'disable' with a trial scheduled.
Status drop_trial(Context& ctx, const IommuOptions& opt, const boot::BootSetup& setup, json& j) {
    auto rp = boot::plan_revert(ctx.host, opt.state_dir);
    if (!rp) return rp.error();
    if (rp->undoes.action != "trial")
        return Error{"the last change in the journal is not the open trial",
                     {},
                     "'vfioctl iommu show' shows the journal",
                     0};
    std::unique_ptr<boot::HostRunner> runner;
    if (ctx.host.is_live()) runner = std::make_unique<boot::HostRunner>(ctx.host);
    boot::ApplyOptions ao;
    ao.state_dir = opt.state_dir;
    ao.runner = runner.get();
    auto cancel = boot::cancel_oneshot_argv(ctx.host, setup);
    auto r = boot::apply_plan(ctx.host, setup, rp->plan, "revert", ao, rp->undoes.id);
    if (!r) return r.error();
    j["dropped_trial"] = {{"operation", r->id}, {"reverts", rp->undoes.id}};
    if (!ctx.json) ctx.out << "Dropped the trial boot (operation " << rp->undoes.id << ")\n";
    return run_then(j, runner.get(), cancel);
}

// 'iommu enable' as a trial: the one-shot entry, then its one-shot.
int run_trial(Context& ctx, const IommuOptions& opt, json j, const boot::BootSetup& setup,
              const boot::Goal& goal) {
    const std::string marker = boot::now_stamp();
    auto tp = boot::plan_trial(ctx.host, setup, goal, marker);
    if (!tp) return report_error(ctx, tp.error(), exit_failure, j);
    if (ctx.host.is_live() && !tp->oneshot_found)
        return report_error(
            ctx,
            Error{"no trial boot: " + tp->oneshot_argv.front() + " is not installed",
                  {},
                  "install it, or use --permanent; nothing was changed",
                  0},
            exit_failure, j);
    boot::TrialInfo ti;
    ti.marker = marker;
    ti.entry = boot::oneshot_of(setup) == boot::OneShot::systemd_boot ? boot::k_trial_loader_entry
                                                                      : boot::k_trial_entry_id;
    ti.cmdline = tp->cmdline;
    ti.boot_id = vfio::current_boot(ctx.host).str();
    ti.panic_s = boot::k_trial_panic_s;
    ti.oneshot = tp->oneshot_argv;
    ti.goal_action = boot::action_id(goal.action);
    ti.goal_platform = boot::platform_id(goal.platform);
    ti.goal_pt = goal.passthrough;
    auto regen = boot::regenerate_command(ctx.host, setup, {}, {});
    j["trial"] = {{"entry", ti.entry},     {"cmdline", ti.cmdline},
                  {"from", tp->source},    {"panic_s", ti.panic_s},
                  {"oneshot", ti.oneshot}, {"files", edits_json(tp->plan, {})}};
    if (!ctx.json) {
        ctx.out << "\nTrial boot (the next boot only; the default entry stays as it is):\n";
        ctx.out << "  copied from:   " << tp->source << "\n";
        ctx.out << "  command line:  " << util::printable(tp->cmdline) << "\n";
        ctx.out << "  a panic reboots it after " << ti.panic_s
                << " s into the default entry (panic=" << ti.panic_s << ")\n\n";
        for (const auto& e : tp->plan.edits)
            ctx.out << boot::unified_diff(e.before, e.after, e.path);
        ctx.out << "\nThen: "
                << (regen.argv.empty() ? std::string("") : util::join(regen.argv, " ") + "; ")
                << util::join(tp->oneshot_argv, " ") << "\n";
    }
    AfterApply oneshot = [&ctx, &opt, &setup, argv = tp->oneshot_argv](
                             boot::ApplyResult& res, json& out, boot::CommandRunner* runner) {
        Status st = run_then(out, runner, argv);
        if (st) return st;
        // Not scheduled: the trial entry goes again.
        Error e = st.error();
        auto rp = boot::plan_revert(ctx.host, opt.state_dir);
        boot::ApplyOptions ao;
        ao.state_dir = opt.state_dir;
        ao.runner = runner;
        if (rp && rp->undoes.id == res.id &&
            boot::apply_plan(ctx.host, setup, rp->plan, "revert", ao, res.id))
            e.hint += (e.hint.empty() ? "" : "\n") +
                      std::string("the trial entry was removed again; nothing is scheduled");
        else
            e.hint += (e.hint.empty() ? "" : "\n") +
                      std::string("'vfioctl iommu revert' removes the trial entry");
        return Status{e};
    };
    return dry_run_or_apply(ctx, opt, std::move(j), setup, tp->plan, "trial",
                            "Schedule the trial boot?", "", ti, oneshot);
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
    auto journal = boot::load_journal(ctx.host, opt.state_dir);
    if (!journal) return report_error(ctx, journal.error(), exit_failure, j);
    const bool trial_open = boot::open_trial(*journal) != nullptr;
    if (trial_open && action == boot::Action::enable) {
        auto v = boot::trial_view(ctx.host, *journal, setup);
        j["trial"] = trial_json(v);
        return report_error(ctx, Error{"a trial boot is open already: " + v.words, {}, v.next, 0},
                            exit_failure, j);
    }
    if (trial_open) {
        // disable: the trial goes first, so that no boot tries the IOMMU on.
        j["drops_trial"] = boot::open_trial(*journal)->id;
        if (!ctx.json)
            ctx.out << "A trial boot is scheduled (operation " << boot::open_trial(*journal)->id
                    << "): disable drops it first.\n";
        if (!opt.dry_run) {
            if (int c = confirm(ctx, opt, "Drop the trial boot and change the boot configuration?");
                c != exit_ok)
                return c;
            if (Status st = drop_trial(ctx, opt, setup, j); !st)
                return report_error(ctx, st.error(), exit_failure, j);
        }
    }
    if (plan->empty()) {
        auto st = boot::inspect_boot(ctx.host, setup);
        j["changed"] = trial_open && !opt.dry_run;
        j["reboot_pending"] = pending_json(st);
        j["regenerate_pending"] = st.regenerate_pending;
        j["reason"] = st.reason;
        if (ctx.json) {
            print_json(ctx, j);
            return exit_ok;
        }
        ctx.out << (trial_open ? "Nothing else to change" : "Nothing to change")
                << ": the boot configuration already "
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
    const bool trial = action == boot::Action::enable && !opt.permanent &&
                       boot::oneshot_of(setup) != boot::OneShot::none;
    j["permanent"] = !trial;
    if (action == boot::Action::enable && !opt.permanent && !trial) {
        j["no_trial"] = boot::no_oneshot_reason(setup);
        warn(ctx, "no trial boot: " + boot::no_oneshot_reason(setup) +
                      "; the change applies to every boot at once");
    }
    if (!ctx.json) {
        ctx.out << "Boot loader: " << setup.description << "\n";
        ctx.out << "IOMMU:       " << boot::platform_id(*platform) << " ("
                << (opt.iommu.empty() ? pg.evidence : "--iommu " + opt.iommu) << ")\n";
        ctx.out << "\n"
                << (trial ? "Changes made by 'vfioctl iommu confirm' after the trial ("
                          : "Changes (")
                << boot::action_id(action) << ": " << goal_words << "):\n";
        print_changes(ctx, *plan);
        if (!trial)
            ctx.out << "\nThen: "
                    << (regen.argv.empty() ? std::string("nothing to regenerate (the boot loader "
                                                         "reads these files as they are)")
                                           : util::join(regen.argv, " "))
                    << "\n";
    }
    if (trial) return run_trial(ctx, opt, std::move(j), setup, goal);
    IommuOptions once = opt;
    once.yes = opt.yes || trial_open; // confirmed with the trial's drop
    return dry_run_or_apply(ctx, once, std::move(j), setup, *plan, boot::action_id(action),
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
            bool created = false;
            for (const auto& jf : op.files)
                if (jf.path == f) {
                    backup = jf.backup;
                    created = jf.created;
                }
            if (created)
                ctx.out << "  " << f << ": removed ('" << op.action << "' created it)\n";
            else
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
    AfterApply cancel;
    if (op.action == "trial")
        cancel = [argv = boot::cancel_oneshot_argv(ctx.host, setup)](boot::ApplyResult&, json& out,
                                                                     boot::CommandRunner* runner) {
            return run_then(out, runner, argv);
        };
    return dry_run_or_apply(ctx, opt, std::move(j), setup, rp->plan, "revert",
                            "Revert the boot configuration?", op.id, std::nullopt, cancel);
}

// Whether the running kernel made IOMMU groups: nullopt when it cannot be read.
std::optional<bool> iommu_groups_exist(const host::Host& h) {
    const char* dir = "/sys/kernel/iommu_groups";
    auto l = h.list(dir);
    if (!l) {
        if (!h.exists(dir)) return false;
        return std::nullopt;
    }
    return !l->empty();
}

// 'iommu confirm': in the trial boot, with the IOMMU on, the trial's command
// line becomes the default (an 'enable' that 'revert' undoes) and the trial
// entry goes.
int run_confirm(Context& ctx, const IommuOptions& opt) {
    auto journal = boot::load_journal(ctx.host, opt.state_dir);
    if (!journal) return report_error(ctx, journal.error());
    auto setup = boot::detect_setup(ctx.host);
    auto v = boot::trial_view(ctx.host, *journal, setup);
    json j = {{"action", "confirm"}, {"dry_run", opt.dry_run}, {"trial", trial_json(v)}};
    if (v.state == boot::TrialState::none)
        return report_error(ctx,
                            Error{"no trial boot to confirm", boot::journal_path(opt.state_dir),
                                  "'vfioctl iommu enable' schedules one", 0},
                            exit_failure, j);
    if (v.state != boot::TrialState::running) {
        std::string hint = v.next;
        for (const auto& l : v.look_at)
            hint += "\nlook at: " + l;
        return report_error(ctx, Error{"this boot is not the trial: " + v.words, {}, hint, 0},
                            exit_failure, j);
    }
    auto groups = iommu_groups_exist(ctx.host);
    if (groups != true)
        return report_error(
            ctx,
            Error{groups ? "the trial boot runs, but the kernel made no IOMMU groups: the IOMMU "
                           "did not come on"
                         : "cannot read /sys/kernel/iommu_groups: whether the IOMMU is on is "
                           "unknown",
                  {},
                  "'vfioctl status' says why; 'vfioctl iommu revert' drops the trial; nothing "
                  "was changed",
                  0},
            exit_failure, j);
    const boot::TrialInfo& t = *v.op->trial;
    boot::Goal goal{boot::Action::enable,
                    t.goal_platform == "amd" ? boot::Platform::amd : boot::Platform::intel,
                    t.goal_pt};
    auto plan = boot::plan_goal(setup.sets, goal);
    if (!plan) return report_error(ctx, plan.error(), exit_failure, j);
    // The trial entry goes, as vfioctl wrote it.
    boot::Plan drop;
    for (const auto& f : v.op->files) {
        auto now = ctx.host.read(f.path);
        if (!now) {
            // Gone is fine; one that cannot be read is left, and said.
            if (ctx.host.exists(f.path))
                warn(ctx, f.path + " cannot be read (" + now.error().describe() +
                              "); left as it is: remove it by hand");
            continue;
        }
        if (boot::fingerprint(*now) != f.after) {
            warn(ctx, f.path + " changed since the trial was scheduled; left as it is");
            continue;
        }
        boot::FileEdit e{f.path, boot::Format::whole_file, *now, ""};
        e.removed = true;
        e.mode = f.mode;
        drop.edits.push_back(std::move(e));
    }
    // The boot loader's command runs once, after both: with the enable's
    // parameters (grubby takes them).
    drop.added = plan->added;
    drop.removed = plan->removed;
    j["changes"] = changes_json(plan->changes);
    j["files"] = edits_json(*plan, {});
    j["removes"] = edits_json(drop, {});
    if (!ctx.json) {
        ctx.out << "This boot is the trial (operation " << v.op->id << ") and the IOMMU is on.\n";
        ctx.out << "\nChanges (enable: " << util::join(boot::goal_params(goal), " ")
                << ", for every boot):\n";
        print_changes(ctx, *plan);
        for (const auto& e : drop.edits)
            ctx.out << "and the trial entry goes: " << e.path << "\n";
    }
    if (opt.dry_run) return dry_run_done(ctx, j);
    if (int c = confirm(ctx, opt, "Make the trial's command line the default?"); c != exit_ok)
        return c;
    std::unique_ptr<boot::HostRunner> runner;
    if (ctx.host.is_live()) runner = std::make_unique<boot::HostRunner>(ctx.host);
    boot::ApplyOptions ao;
    ao.state_dir = opt.state_dir;
    ao.runner = runner.get();
    // The enable first, without the boot loader's command, then the trial
    // entry's removal with it: one regenerate for both.
    std::string enable_id;
    if (!plan->empty()) {
        boot::ApplyOptions first = ao;
        first.regenerate = false;
        auto r = boot::apply_plan(ctx.host, setup, *plan, "enable", first);
        if (!r) return report_error(ctx, r.error(), exit_failure, j);
        enable_id = r->id;
    }
    auto r = boot::apply_plan(ctx.host, setup, drop, "confirm", ao);
    if (r) {
        if (auto jn = boot::load_journal(ctx.host, opt.state_dir)) {
            if (boot::Operation* o = jn->find(v.op->id)) {
                o->state = "confirmed";
                if (o->trial) o->trial->confirmed_by = enable_id.empty() ? r->id : enable_id;
            }
            if (Status st = boot::save_journal(ctx.host, opt.state_dir, *jn); !st)
                r->warnings.push_back("could not record the confirmation: " +
                                      st.error().describe());
        }
        if (!enable_id.empty()) r->id = enable_id;
    }
    boot::Plan both = *plan;
    for (const auto& e : drop.edits)
        both.edits.push_back(e);
    if (!ctx.json && r) ctx.out << "\n";
    return finish(ctx, std::move(j), r, both, opt.state_dir);
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
            CLI::App* conf = sub.add_subcommand(
                "confirm",
                "in the trial boot 'enable' scheduled, with the IOMMU on: make its command line "
                "the default and remove the trial entry");
            CLI::App* rev = sub.add_subcommand(
                "revert",
                "undo the last enable or disable: restore the backup exactly, or take out only "
                "vfioctl's parameters when the file changed since");
            for (CLI::App* c : {show, en, dis, conf, rev})
                c->add_option("--state-dir", opt->state_dir,
                              "where the journal lives, under --root (default " + paths.state_dir +
                                  ")")
                    ->check(state_dir_check());
            for (CLI::App* c : {en, dis, conf, rev}) {
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
            en->add_flag("--permanent", opt->permanent,
                         "change the default entry at once, without a trial boot");
            return [=](Context& ctx) {
                if (show->parsed()) return render(ctx, run_show(ctx, *opt));
                if (en->parsed()) return run_change(ctx, *opt, boot::Action::enable);
                if (dis->parsed()) return run_change(ctx, *opt, boot::Action::disable);
                if (rev->parsed()) return run_revert(ctx, *opt);
                if (conf->parsed()) return run_confirm(ctx, *opt);
                return static_cast<int>(exit_usage);
            };
        }};
}

} // namespace vfioctl::cli
