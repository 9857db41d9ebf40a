// 'vfioctl bind', 'unbind' and 'recover': devices to vfio-pci and back.

#include "vfio/bind.hpp"

#include "cli/commands.hpp"
#include "cli/model.hpp"
#include "cli/settled_view.hpp"
#include "services/devices.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace vfioctl::cli {

namespace {

using nlohmann::json;

json opt_json(const std::optional<std::string>& s) {
    return s ? json(*s) : json(nullptr);
}

// Obstacles as objects: address, kind (typed, for scripts) and text.
json obstacles_json(const std::vector<vfio::Obstacle>& obstacles) {
    json arr = json::array();
    for (const auto& o : obstacles)
        arr.push_back({{"address", o.addr.str()}, {"kind", o.kind}, {"text", o.text}});
    return arr;
}

json changes_json(const std::vector<vfio::DeviceChange>& changes) {
    json arr = json::array();
    for (const auto& c : changes)
        arr.push_back({{"address", c.address},
                       {"from", opt_json(c.from)},
                       {"to", opt_json(c.to)},
                       {"changed", c.changed},
                       {"ms", c.ms},
                       {"note", c.note}});
    return arr;
}

// The changes as text lines: "  ADDR: FROM -> TO (N ms)" or "  ADDR: DRIVER (NOTE)".
std::string changes_text(const std::vector<vfio::DeviceChange>& changes) {
    std::string out;
    for (const auto& c : changes) {
        out += "  " + c.address + ": ";
        if (c.changed)
            out += c.from.value_or("no driver") + " -> " + c.to.value_or("no driver") +
                   fmt::format(" ({:.0f} ms)", c.ms);
        else
            out += c.to.value_or("no driver");
        if (!c.note.empty()) out += (c.changed ? "; " : " (") + c.note + (c.changed ? "" : ")");
        out += "\n";
    }
    return out;
}

// The devices service on ctx's host: progress lines on stderr in text mode.
services::Devices devices(Context& ctx, const std::string& state_dir, double timeout_s) {
    return services::Devices(
        ctx.host, state_dir,
        [&ctx](const std::string& s) {
            if (!ctx.json) ctx.err << s << "\n";
        },
        static_cast<int>(timeout_s * 1000));
}

void add_common(CLI::App& sub, std::string& state_dir, double& timeout_s) {
    sub.add_option("--state-dir", state_dir, "where the journal and lock live (under --root)")
        ->capture_default_str()
        ->check(state_dir_check());
    sub.add_option("--timeout", timeout_s, "seconds to wait for the kernel to unbind a device")
        ->capture_default_str()
        ->check(seconds_value())
        ->check(CLI::Range(0.1, 3600.0));
}

struct BindOptions {
    std::vector<std::string> targets;
    int gpu = -1;
    bool dry_run = false;
    bool force = false;
    std::string state_dir;
    double timeout_s = 10;
};

// The devices a user's targets name: BDFs, vendor:device IDs, or --gpu N.
Result<std::vector<const pci::PciDevice*>>
resolve_targets(const HostModel& m, const std::vector<std::string>& targets, int gpu) {
    std::vector<const pci::PciDevice*> out;
    for (const auto& t : targets) {
        auto found = match_devices(m.inv, t);
        if (!found) return found.error();
        out.insert(out.end(), found->begin(), found->end());
    }
    if (gpu >= 0) {
        auto gpus = m.inv.gpus();
        if (gpu >= static_cast<int>(gpus.size()))
            return Error{"there is no GPU " + std::to_string(gpu) + " (this host has " +
                             std::to_string(gpus.size()) + ")",
                         {},
                         "'vfioctl status' numbers the GPUs from 0",
                         0};
        out.push_back(gpus[static_cast<size_t>(gpu)]);
    }
    if (out.empty())
        return Error{"no device given", {}, "vfioctl bind 8a:00.0 | 10de:2336 | --gpu 0", 0};
    return out;
}

Report run_bind(Context& ctx, const BindOptions& o) {
    auto m = load_host(ctx, o.state_dir, true);
    if (!m) return failed(m.error());
    auto targets = resolve_targets(*m, o.targets, o.gpu);
    if (!targets)
        return failed(targets.error(), o.targets.empty() && o.gpu < 0 ? exit_usage : exit_failure);
    auto plan = vfio::plan_bind(*targets, m->inv, m->facts, m->groups);

    json jplan = json::array();
    for (const auto& it : plan.items)
        jplan.push_back({{"address", it.addr.str()},
                         {"group", it.group},
                         {"driver", opt_json(it.driver)},
                         {"target", it.target},
                         {"already", it.already},
                         {"label", it.label}});
    std::string text;
    for (int g : plan.groups) {
        text += "IOMMU group " + std::to_string(g) + ":\n";
        for (const auto& it : plan.items)
            if (it.group == g)
                text += "  " + it.label + ": " +
                        (it.already ? "already on vfio-pci"
                                    : it.driver.value_or("no driver") + " -> vfio-pci") +
                        (it.target ? "" : "   (same group)") + "\n";
    }
    for (const auto& r : plan.refusals)
        text += "refused: " + r.text + "\n";
    for (const auto& b : plan.blockers)
        text += (o.force ? "forced past: " : "blocked: ") + b.text + "\n";
    if (auto refusal = services::plan_refusal(plan, o.force, services::Requester::bind))
        return failed(*refusal, exit_failure,
                      {{"plan", jplan},
                       {"refusals", vfio::texts(plan.refusals)},
                       {"blockers", vfio::texts(plan.blockers)},
                       {"refused", obstacles_json(plan.refusals)},
                       {"blocked", obstacles_json(plan.blockers)},
                       {"changed", false}},
                      text);
    Report r;
    if (o.dry_run) {
        r.json = {{"plan", jplan},
                  {"refusals", vfio::texts(plan.refusals)},
                  {"blockers", vfio::texts(plan.blockers)},
                  {"refused", obstacles_json(plan.refusals)},
                  {"blocked", obstacles_json(plan.blockers)},
                  {"dry_run", true},
                  {"changed", false}};
        r.text = text + "dry run: nothing changed\n";
        return r;
    }
    // The plan is on stdout before the changes' progress on stderr.
    if (!ctx.json) {
        ctx.out << text;
        text.clear();
    }
    auto changes = devices(ctx, o.state_dir, o.timeout_s).bind(plan);
    if (!changes) return failed(changes.error());
    r.json = {{"plan", jplan},
              {"blocked", obstacles_json(plan.blockers)},
              {"forced", o.force && !plan.blockers.empty()},
              {"changes", changes_json(*changes)},
              {"changed", true}};
    r.text = text + (plan.nothing_to_do() ? "Nothing to do:\n" : "Bound to vfio-pci:\n") +
             changes_text(*changes) + "Give back with: vfioctl unbind " +
             (o.targets.empty() ? "--all" : util::join(o.targets, " ")) + "\n";
    return r;
}

struct UnbindOptions {
    std::vector<std::string> targets;
    bool all = false;
    bool force = false;
    std::string state_dir;
    double timeout_s = 10;
};

Report run_unbind(Context& ctx, const UnbindOptions& o) {
    if (o.all == !o.targets.empty())
        return failed(
            Error{"give either devices or --all", {}, "vfioctl unbind 8a:00.0 | --all", 0},
            exit_usage);
    auto m = load_host(ctx, o.state_dir, true);
    if (!m) return failed(m.error());
    std::vector<pci::PciAddress> addrs;
    if (!o.all) {
        auto targets = resolve_targets(*m, o.targets, -1);
        if (!targets) return failed(targets.error());
        // The whole group goes back, as it came.
        auto plan = vfio::plan_bind(*targets, m->inv, m->facts, m->groups);
        for (const auto& it : plan.items)
            addrs.push_back(it.addr);
        for (const auto* t : *targets)
            if (std::find(addrs.begin(), addrs.end(), t->addr) == addrs.end())
                addrs.push_back(t->addr);
    }
    auto changes = devices(ctx, o.state_dir, o.timeout_s)
                       .give_back(addrs, services::busy_groups(m->facts), o.force);
    if (!changes) return failed(changes.error());
    Report r;
    r.json = {{"changes", changes_json(*changes)}};
    if (std::none_of(changes->begin(), changes->end(), [](const auto& c) { return c.changed; }))
        r.text = std::string("Nothing to give back") +
                 (changes->empty() ? ": the journal is empty" : ":") + "\n" +
                 changes_text(*changes);
    else
        r.text = "Given back:\n" + changes_text(*changes);
    return r;
}

Report run_recover(Context& ctx, const std::string& state_dir, double timeout_s, bool at_boot) {
    auto rec = devices(ctx, state_dir, timeout_s)
                   .recover(at_boot ? vfio::RecoverMode::at_boot : vfio::RecoverMode::full);
    if (!rec) return failed(rec.error());
    const json boot = rec->boot.known() ? json(rec->boot.str()) : json(nullptr);
    json j = {{"changes", changes_json(rec->changes)},
              {"settled", rec->settled ? settlement_json(*rec->settled) : json(nullptr)},
              {"boot", boot},
              {"at_boot", at_boot},
              {"left", left_json(rec->left, rec->boot)}};
    std::string text = rec->settled ? settlement_text(*rec->settled) : "";
    if (!at_boot) {
        Report r;
        r.json = std::move(j);
        if (!rec->changes.empty())
            text += "Recovered:\n" + changes_text(rec->changes);
        else if (!rec->settled)
            text += "Nothing to recover: the journal is empty\n";
        r.text = text;
        return r;
    }
    if (rec->left.empty()) {
        Report r;
        r.json = std::move(j);
        r.text = rec->settled ? text : "Nothing to settle: no journal entry of an earlier boot\n";
        return r;
    }
    // Left for the user: settling them could leave a device on vfio-pci
    // that the running kernel still has there.
    std::vector<std::string> which;
    for (const auto& e : rec->left) {
        const std::string why = left_reason(e, rec->boot);
        which.push_back(e.address + (why == "this_boot"      ? " (bound in this boot)"
                                     : why == "boot_unknown" ? " (its boot is unknown)"
                                                             : ""));
    }
    std::string message = std::to_string(rec->left.size()) + " journal entr" +
                          (rec->left.size() == 1 ? "y was" : "ies were") +
                          " not settled: " + util::join(which, ", ");
    if (!rec->boot.known()) message += "; the running boot is unknown: " + rec->boot_unknown_why;
    return failed(Error{message, vfio::journal_path(state_dir),
                        "no device was touched; run 'vfioctl recover' to give them back to "
                        "their original drivers",
                        0},
                  exit_left, j, text);
}

} // namespace

Command bind_command() {
    return {"bind", "move a device and its whole IOMMU group to vfio-pci (journaled, verified)",
            [](CLI::App& sub, const services::Paths& paths) {
                auto o = std::make_shared<BindOptions>();
                o->state_dir = paths.state_dir;
                sub.add_option("target", o->targets,
                               "BDF (8a:00.0) or vendor:device (10de:2336, every match)");
                sub.add_option("--gpu", o->gpu, "the Nth GPU that 'vfioctl status' lists, from 0")
                    // A range, not NonNegativeNumber: its message printed DBL_MAX's 309 digits.
                    ->check(CLI::Range(0, 65535));
                sub.add_flag("--dry-run", o->dry_run, "show the plan and stop");
                sub.add_flag(
                    "--force", o->force,
                    "take devices that are in use (never the root filesystem's controller)");
                add_common(sub, o->state_dir, o->timeout_s);
                return [o](Context& ctx) { return render(ctx, run_bind(ctx, *o)); };
            }};
}

Command unbind_command() {
    return {"unbind", "give devices back to exactly the driver they had before 'bind'",
            [](CLI::App& sub, const services::Paths& paths) {
                auto o = std::make_shared<UnbindOptions>();
                o->state_dir = paths.state_dir;
                sub.add_option("target", o->targets, "BDF or vendor:device");
                sub.add_flag("--all", o->all, "every device in the journal");
                sub.add_flag("--force", o->force, "even while a process (a VM) holds /dev/vfio/N");
                add_common(sub, o->state_dir, o->timeout_s);
                return [o](Context& ctx) { return render(ctx, run_unbind(ctx, *o)); };
            }};
}

Command recover_command() {
    return {"recover", "after a crash, bring every journaled device back to its original driver",
            [](CLI::App& sub, const services::Paths& paths) {
                auto state_dir = std::make_shared<std::string>(paths.state_dir);
                auto timeout = std::make_shared<double>(10);
                auto at_boot = std::make_shared<bool>(false);
                add_common(sub, *state_dir, *timeout);
                sub.add_flag(
                    "--at-boot", *at_boot,
                    "what vfioctl-recover.service runs: settle the journal entries of an earlier "
                    "boot (the reboot gave those devices back) and touch no device; exit 0 when "
                    "nothing is left, 4 when entries of this or an unknown boot are left for "
                    "'vfioctl recover'");
                sub.footer("Entries of an earlier boot (the boot_id they were written in differs "
                           "from the running one) are settled first, without any sysfs write, "
                           "and recorded in STATE_DIR/settled.json ('vfioctl status' shows the "
                           "last settlement). Entries of an unknown boot are never settled.\n"
                           "Exit status: 0 done, 1 failure, 2 usage, 4 (--at-boot) entries "
                           "left for 'vfioctl recover'.");
                return [state_dir, timeout, at_boot](Context& ctx) {
                    return render(ctx, run_recover(ctx, *state_dir, *timeout, *at_boot));
                };
            }};
}

} // namespace vfioctl::cli
