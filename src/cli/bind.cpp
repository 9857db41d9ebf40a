// 'vfioctl bind', 'unbind' and 'recover': devices to vfio-pci and back.

#include "vfio/bind.hpp"

#include "cli/commands.hpp"
#include "cli/model.hpp"
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

void print_changes(Context& ctx, const std::vector<vfio::DeviceChange>& changes) {
    for (const auto& c : changes) {
        ctx.out << "  " << c.address << ": ";
        if (c.changed)
            ctx.out << c.from.value_or("no driver") << " -> " << c.to.value_or("no driver")
                    << fmt::format(" ({:.0f} ms)", c.ms);
        else
            ctx.out << c.to.value_or("no driver");
        if (!c.note.empty())
            ctx.out << (c.changed ? "; " : " (") << c.note << (c.changed ? "" : ")");
        ctx.out << "\n";
    }
}

vfio::ChangeOptions change_options(Context& ctx, const std::string& state_dir, double timeout_s) {
    vfio::ChangeOptions o;
    o.state_dir = state_dir;
    o.unbind_timeout_ms = static_cast<int>(timeout_s * 1000);
    o.progress = [&ctx](const std::string& s) {
        if (!ctx.json) ctx.err << s << "\n";
    };
    return o;
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
    std::string state_dir = "/var/lib/vfioctl";
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

int run_bind(Context& ctx, const BindOptions& o) {
    auto m = load_host(ctx, true);
    if (!m) return report_error(ctx, m.error());
    auto targets = resolve_targets(*m, o.targets, o.gpu);
    if (!targets)
        return report_error(ctx, targets.error(),
                            o.targets.empty() && o.gpu < 0 ? exit_usage : exit_failure);
    auto plan = vfio::plan_bind(*targets, m->inv, m->facts, m->groups);

    json jplan = json::array();
    for (const auto& it : plan.items)
        jplan.push_back({{"address", it.addr.str()},
                         {"group", it.group},
                         {"driver", opt_json(it.driver)},
                         {"target", it.target},
                         {"already", it.already},
                         {"label", it.label}});
    if (!ctx.json) {
        for (int g : plan.groups) {
            ctx.out << "IOMMU group " << g << ":\n";
            for (const auto& it : plan.items)
                if (it.group == g)
                    ctx.out << "  " << it.label << ": "
                            << (it.already ? "already on vfio-pci"
                                           : it.driver.value_or("no driver") + " -> vfio-pci")
                            << (it.target ? "" : "   (same group)") << "\n";
        }
        for (const auto& r : plan.refusals)
            ctx.out << "refused: " << r.text << "\n";
        for (const auto& b : plan.blockers)
            ctx.out << (o.force ? "forced past: " : "blocked: ") << b.text << "\n";
    }
    auto fail = [&](const std::string& msg, const std::string& hint) {
        return report_error(ctx, Error{msg, {}, hint, 0}, exit_failure,
                            {{"plan", jplan},
                             {"refusals", vfio::texts(plan.refusals)},
                             {"blockers", vfio::texts(plan.blockers)},
                             {"refused", obstacles_json(plan.refusals)},
                             {"blocked", obstacles_json(plan.blockers)},
                             {"changed", false}});
    };
    if (!plan.refusals.empty())
        return fail("refusing to bind: " + util::join(vfio::texts(plan.refusals), "; "),
                    "nothing was changed; 'vfioctl groups' shows each group's members and roles");
    if (!plan.blockers.empty() && !o.force)
        return fail(
            "refusing to bind: " + util::join(vfio::texts(plan.blockers), "; "),
            "nothing was changed; stop what uses the device, or pass --force to take it anyway");
    if (o.dry_run) {
        if (ctx.json)
            print_json(ctx, {{"plan", jplan},
                             {"refusals", vfio::texts(plan.refusals)},
                             {"blockers", vfio::texts(plan.blockers)},
                             {"refused", obstacles_json(plan.refusals)},
                             {"blocked", obstacles_json(plan.blockers)},
                             {"dry_run", true},
                             {"changed", false}});
        else
            ctx.out << "dry run: nothing changed\n";
        return exit_ok;
    }
    auto changes =
        vfio::execute_bind(ctx.host, plan, change_options(ctx, o.state_dir, o.timeout_s));
    if (!changes) return report_error(ctx, changes.error());
    if (ctx.json)
        print_json(ctx, {{"plan", jplan},
                         {"blocked", obstacles_json(plan.blockers)},
                         {"forced", o.force && !plan.blockers.empty()},
                         {"changes", changes_json(*changes)},
                         {"changed", true}});
    else {
        ctx.out << (plan.nothing_to_do() ? "Nothing to do:\n" : "Bound to vfio-pci:\n");
        print_changes(ctx, *changes);
        ctx.out << "Give back with: vfioctl unbind "
                << (o.targets.empty() ? "--all" : util::join(o.targets, " ")) << "\n";
    }
    return exit_ok;
}

struct UnbindOptions {
    std::vector<std::string> targets;
    bool all = false;
    bool force = false;
    std::string state_dir = "/var/lib/vfioctl";
    double timeout_s = 10;
};

int run_unbind(Context& ctx, const UnbindOptions& o) {
    if (o.all == !o.targets.empty())
        return report_error(
            ctx, Error{"give either devices or --all", {}, "vfioctl unbind 8a:00.0 | --all", 0},
            exit_usage);
    auto m = load_host(ctx, true);
    if (!m) return report_error(ctx, m.error());
    std::vector<pci::PciAddress> addrs;
    if (!o.all) {
        auto targets = resolve_targets(*m, o.targets, -1);
        if (!targets) return report_error(ctx, targets.error());
        // The whole group goes back, as it came.
        auto plan = vfio::plan_bind(*targets, m->inv, m->facts, m->groups);
        for (const auto& it : plan.items)
            addrs.push_back(it.addr);
        for (const auto* t : *targets)
            if (std::find(addrs.begin(), addrs.end(), t->addr) == addrs.end())
                addrs.push_back(t->addr);
    }
    std::map<int, std::string> busy;
    for (const auto& h : m->facts.holders) {
        if (!util::starts_with(h.node, "/dev/vfio/")) continue;
        if (auto g = util::parse_dec(h.node.substr(10)))
            busy[static_cast<int>(*g)] += (busy.count(static_cast<int>(*g)) ? ", " : "") +
                                          std::string("pid ") + std::to_string(h.pid) + " (" +
                                          h.comm + ")";
    }
    auto changes = vfio::give_back(ctx.host, addrs, busy, o.force,
                                   change_options(ctx, o.state_dir, o.timeout_s));
    if (!changes) return report_error(ctx, changes.error());
    if (ctx.json)
        print_json(ctx, {{"changes", changes_json(*changes)}});
    else if (std::none_of(changes->begin(), changes->end(),
                          [](const auto& c) { return c.changed; })) {
        ctx.out << "Nothing to give back" << (changes->empty() ? ": the journal is empty" : ":")
                << "\n";
        print_changes(ctx, *changes);
    } else {
        ctx.out << "Given back:\n";
        print_changes(ctx, *changes);
    }
    return exit_ok;
}

int run_recover(Context& ctx, const std::string& state_dir, double timeout_s) {
    auto changes = vfio::recover(ctx.host, change_options(ctx, state_dir, timeout_s));
    if (!changes) return report_error(ctx, changes.error());
    if (ctx.json)
        print_json(ctx, {{"changes", changes_json(*changes)}});
    else if (changes->empty())
        ctx.out << "Nothing to recover: the journal is empty\n";
    else {
        ctx.out << "Recovered:\n";
        print_changes(ctx, *changes);
    }
    return exit_ok;
}

} // namespace

Command bind_command() {
    return {"bind", "move a device and its whole IOMMU group to vfio-pci (journaled, verified)",
            [](CLI::App& sub) {
                auto o = std::make_shared<BindOptions>();
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
                return [o](Context& ctx) { return run_bind(ctx, *o); };
            }};
}

Command unbind_command() {
    return {"unbind", "give devices back to exactly the driver they had before 'bind'",
            [](CLI::App& sub) {
                auto o = std::make_shared<UnbindOptions>();
                sub.add_option("target", o->targets, "BDF or vendor:device");
                sub.add_flag("--all", o->all, "every device in the journal");
                sub.add_flag("--force", o->force, "even while a process (a VM) holds /dev/vfio/N");
                add_common(sub, o->state_dir, o->timeout_s);
                return [o](Context& ctx) { return run_unbind(ctx, *o); };
            }};
}

Command recover_command() {
    return {"recover", "after a crash, bring every journaled device back to its original driver",
            [](CLI::App& sub) {
                auto state_dir = std::make_shared<std::string>("/var/lib/vfioctl");
                auto timeout = std::make_shared<double>(10);
                add_common(sub, *state_dir, *timeout);
                return [state_dir, timeout](Context& ctx) {
                    return run_recover(ctx, *state_dir, *timeout);
                };
            }};
}

} // namespace vfioctl::cli
