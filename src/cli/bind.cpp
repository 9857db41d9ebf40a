// 'vfioctl bind', 'unbind' and 'recover': devices to vfio-pci and back.

#include "vfio/bind.hpp"

#include "cli/commands.hpp"
#include "cli/gpu_select.hpp"
#include "cli/health_view.hpp"
#include "cli/model.hpp"
#include "cli/persist_view.hpp"
#include "cli/settled_view.hpp"
#include "host/users.hpp"
#include "services/devices.hpp"
#include "services/persist.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <map>

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
    GpuSelection select;
    std::string owner; // --owner: who gets /dev/vfio/N
    int gpu = -1;
    bool dry_run = false;
    bool force = false;
    bool persistent = false;
    bool at_boot = false;
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

json paths_json(const std::vector<pci::PciAddress>& addrs) {
    json arr = json::array();
    for (const auto& a : addrs)
        arr.push_back(vfio::bind_entry_path(a));
    return arr;
}

std::string notes_text(const std::vector<std::string>& notes) {
    std::string out;
    for (const auto& n : notes)
        out += "  " + n + "\n";
    return out;
}

// 'bind --at-boot' (vfioctl-bind.service): vfioctl's entries applied, one
// bad entry never stopping the others. Exit 0 when every present device is
// on vfio-pci (absent ones are only reported), 1 when one is not or an
// entry cannot be read.
Report run_bind_at_boot(Context& ctx, const BindOptions& o) {
    if (o.persistent || o.dry_run || o.force || o.gpu >= 0 || o.select.any() || !o.owner.empty())
        return failed(Error{"--at-boot takes no other option but device addresses",
                            {},
                            "vfioctl bind --at-boot [DDDD:BB:DD.F]...",
                            0},
                      exit_usage);
    std::vector<pci::PciAddress> only;
    for (const auto& t : o.targets) {
        auto a = pci::PciAddress::parse(t);
        if (!a) return failed(a.error(), exit_usage);
        only.push_back(*a);
    }
    auto cfg = vfio::read_persist(ctx.host);
    auto items = services::apply_at_boot(ctx.host, cfg, only, static_cast<int>(o.timeout_s * 1000));
    json jitems = json::array();
    std::string text;
    bool bad = false;
    for (const auto& it : items) {
        jitems.push_back({{"address", it.address},
                          {"outcome", vfio::at_boot_outcome_id(it.outcome)},
                          {"from", opt_json(it.from)},
                          {"note", it.note}});
        const bool ok = it.outcome == vfio::AtBootOutcome::already ||
                        it.outcome == vfio::AtBootOutcome::bound ||
                        it.outcome == vfio::AtBootOutcome::taken_back ||
                        it.outcome == vfio::AtBootOutcome::absent;
        bad = bad || !ok;
        text += "  " + it.address + ": " + vfio::at_boot_outcome_id(it.outcome) +
                (it.from ? " (was on " + *it.from + ")" : "") +
                (it.note.empty() ? "" : ": " + it.note) + "\n";
    }
    json problems = json::array();
    for (const auto& p : cfg.problems)
        if (p.source == vfio::Source::vfioctl || p.source == vfio::Source::driverctl) {
            problems.push_back({{"source", vfio::source_id(p.source)},
                                {"where", p.where},
                                {"text", p.text},
                                {"unreadable", p.unreadable}});
            bad = bad || (p.unreadable && p.source == vfio::Source::vfioctl);
            text += std::string(p.unreadable ? "  cannot read: " : "  not understood: ") + p.where +
                    ": " + p.text + "\n";
        }
    Report r;
    r.json = {{"at_boot", true},
              {"items", jitems},
              {"problems", problems},
              {"schema_version", k_json_schema_version}};
    r.text = (items.empty() ? std::string("No persistent binding to apply\n")
                            : "Persistent bindings (" + std::string(vfio::k_bind_dir) + "):\n") +
             util::printable(text, true);
    r.exit_code = bad ? exit_failure : exit_ok;
    return r;
}

struct GivenNodes {
    std::vector<std::string> nodes; // given
    std::optional<Error> error;     // the first that could not be
};

// Each group's /dev/vfio/N to u, in group order; stops at the first failure.
GivenNodes give_nodes(const host::Host& host, const std::vector<int>& groups, const host::User& u) {
    GivenNodes g;
    for (int n : groups) {
        const std::string node = "/dev/vfio/" + std::to_string(n);
        if (auto s = host::give_node(host, node, u); !s) {
            g.error = s.error();
            break;
        }
        g.nodes.push_back(node);
    }
    return g;
}

Report run_bind(Context& ctx, const BindOptions& o) {
    if (o.at_boot) return run_bind_at_boot(ctx, o);
    auto m = load_host(ctx, o.state_dir, true);
    if (!m) return failed(m.error());
    // --owner is checked before anything changes.
    std::optional<host::User> owner;
    if (!o.owner.empty()) {
        auto u = host::find_user(ctx.host, o.owner);
        if (!u) return failed(u.error(), exit_usage, {{"changed", false}});
        owner = *u;
    }
    // What the user named: targets, and --all-gpus/--with-nvswitches.
    std::vector<std::string> wanted = o.targets;
    Selected sel;
    if (o.select.any()) {
        auto s = select_devices(*m, o.select);
        if (!s) return failed(s.error(), exit_failure, {{"changed", false}});
        sel = std::move(*s);
        wanted.insert(wanted.end(), sel.addresses.begin(), sel.addresses.end());
    }
    auto targets = resolve_targets(*m, wanted, o.gpu);
    if (!targets)
        return failed(targets.error(), wanted.empty() && o.gpu < 0 ? exit_usage : exit_failure);
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
    for (const auto& n : sel.notes)
        text += "--all-gpus " + n + "\n";
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
    // Persistent bindings: shown with --dry-run, decided before any change
    // with --persistent (a refusal changes nothing).
    std::vector<pci::PciAddress> addrs;
    for (const auto& it : plan.items)
        addrs.push_back(it.addr);
    std::optional<PersistView> pv;
    std::optional<vfio::PersistPlan> pp;
    if (o.dry_run || o.persistent) pv = read_persist_view(ctx.host, m->inv, std::nullopt);
    if (o.persistent) {
        auto p = vfio::plan_persist(pv->config, pv->hooks, addrs);
        if (!p)
            return failed(p.error(), exit_failure,
                          {{"plan", jplan},
                           {"persistent", persist_json(*pv, m->inv, addrs)},
                           {"changed", false}},
                          text);
        pp = std::move(*p);
    }
    Report r;
    if (o.dry_run) {
        r.json = {{"plan", jplan},
                  {"refusals", vfio::texts(plan.refusals)},
                  {"blockers", vfio::texts(plan.blockers)},
                  {"refused", obstacles_json(plan.refusals)},
                  {"blocked", obstacles_json(plan.blockers)},
                  {"persistent", persist_json(*pv, m->inv, addrs)},
                  {"dry_run", true},
                  {"changed", false},
                  {"schema_version", k_json_schema_version}};
        if (pp) r.json["persistent_plan"] = {{"write", paths_json(pp->add)}, {"notes", pp->notes}};
        const std::string ptext = persist_text(*pv, m->inv, addrs);
        if (!ptext.empty()) text += "Persistent bindings of these devices:\n" + ptext;
        if (pp) {
            for (const auto& a : pp->add)
                text += "would record " + vfio::bind_entry_path(a) + "\n";
            text += notes_text(pp->notes);
        }
        if (o.select.any())
            r.json["selection"] = {{"addresses", sel.addresses}, {"left_out", sel.notes}};
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
              // Whether any device moved: a second bind of bound devices changes nothing.
              {"changed", std::any_of(changes->begin(), changes->end(),
                                      [](const vfio::DeviceChange& c) { return c.changed; })},
              {"schema_version", k_json_schema_version}};
    if (o.select.any())
        r.json["selection"] = {{"addresses", sel.addresses}, {"left_out", sel.notes}};
    r.text = text + (plan.nothing_to_do() ? "Nothing to do:\n" : "Bound to vfio-pci:\n") +
             changes_text(*changes);
    if (owner) {
        auto given = give_nodes(ctx.host, plan.groups, *owner);
        r.json["owner"] = {{"user", owner->name}, {"uid", owner->uid}, {"nodes", given.nodes}};
        for (const auto& n : given.nodes)
            r.text += "  " + n + " belongs to " + owner->name + " (uid " +
                      std::to_string(owner->uid) + ")\n";
        if (given.error) {
            Error e = *given.error;
            e.message = "bound, but " + e.message;
            e.hint = "the devices are on vfio-pci; as root, 'chown " + owner->name + " " + e.path +
                     "', or 'vfioctl unbind' gives them back";
            return failed(e, exit_failure, r.json, r.text);
        }
    }
    if (pp) {
        auto w = services::write_persist(ctx.host, o.state_dir, *pp);
        if (!w) {
            Error e = w.error();
            e.message = "bound now, but not at every boot: " + e.message;
            e.hint = "the devices stay on vfio-pci until the next boot; 'vfioctl unbind " +
                     util::join(wanted, " ") + "' gives them back now";
            return failed(e, exit_failure, r.json, r.text);
        }
        r.json["persistent"] = {
            {"written", w->written},
            {"notes", pp->notes},
            {"operation", w->operation.empty() ? json(nullptr) : json(w->operation)}};
        if (!w->written.empty()) r.json["changed"] = true;
        r.text += "Bound at every boot:\n";
        for (const auto& p : w->written)
            r.text += "  recorded " + p + "\n";
        if (!w->operation.empty()) r.text += "  (boot journal operation " + w->operation + ")\n";
        r.text += notes_text(pp->notes);
    }
    r.text += std::string("Give back with: vfioctl unbind ") + (pp ? "--persistent " : "") +
              (wanted.empty() ? "--all" : util::join(wanted, " ")) + "\n";
    return r;
}

struct UnbindOptions {
    std::vector<std::string> targets;
    bool all = false;
    bool force = false;
    bool persistent = false;
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
    // --persistent: an address of a device this host does not have (a card
    // taken out) still names its entry; there is nothing to give back now.
    std::vector<pci::PciAddress> absent;
    std::vector<std::string> present = o.targets;
    if (o.persistent) {
        present.clear();
        for (const auto& t : o.targets) {
            auto a = pci::PciAddress::parse(t);
            if (a && !m->inv.find(*a))
                absent.push_back(*a);
            else
                present.push_back(t);
        }
    }
    if (!o.all && !present.empty()) {
        auto targets = resolve_targets(*m, present, -1);
        if (!targets) return failed(targets.error());
        // The whole group goes back, as it came.
        auto plan = vfio::plan_bind(*targets, m->inv, m->facts, m->groups);
        for (const auto& it : plan.items)
            addrs.push_back(it.addr);
        for (const auto* t : *targets)
            if (std::find(addrs.begin(), addrs.end(), t->addr) == addrs.end())
                addrs.push_back(t->addr);
    }
    // --persistent: the entries go first, so that a device the kernel
    // will not give back now is still free at the next boot.
    std::optional<services::PersistWrite> removed;
    std::vector<std::string> persist_notes;
    if (o.persistent) {
        auto cfg = vfio::read_persist(ctx.host);
        std::vector<pci::PciAddress> which = addrs;
        which.insert(which.end(), absent.begin(), absent.end());
        if (o.all)
            for (const auto& c : cfg.claims)
                if (c.source == vfio::Source::vfioctl && c.address) which.push_back(*c.address);
        auto pp = vfio::plan_unpersist(cfg, m->inv, which);
        if (!pp) return failed(pp.error());
        auto w = services::write_persist(ctx.host, o.state_dir, *pp);
        if (!w) return failed(w.error());
        removed = std::move(*w);
        persist_notes = pp->notes;
    }
    // Only absent devices named: nothing to give back (an empty list would
    // mean every journaled device).
    Result<std::vector<vfio::DeviceChange>> changes = std::vector<vfio::DeviceChange>{};
    // AER counters before, to tell the errors the give-back caused.
    std::map<std::string, pci::AerErrors> aer_before;
    for (const auto& a : addrs)
        aer_before[a.str()] = pci::read_aer(ctx.host, a);
    for (const auto& e : m->journal)
        if (auto a = pci::PciAddress::parse(e.address))
            aer_before[a->str()] = pci::read_aer(ctx.host, *a);
    if (o.all || !addrs.empty())
        changes = devices(ctx, o.state_dir, o.timeout_s)
                      .give_back(addrs, services::busy_groups(m->facts), o.force);
    if (!changes) {
        Error e = changes.error();
        // A device that did not come back may have fallen off the bus: say so.
        json wedged = json::array();
        std::string wedged_text;
        for (const auto& [addr, before] : aer_before) {
            const auto h = pci::check_return(ctx.host, pci::PciAddress::parse(addr).value(), before,
                                             std::nullopt);
            if (h.state != pci::ReturnState::wedged) continue;
            wedged.push_back(return_json(h));
            wedged_text += return_text(h);
        }
        if (!wedged.empty())
            e.hint = "a device looks wedged: reboot the host, then run 'vfioctl recover'";
        json extra = wedged.empty() ? json(nullptr) : json{{"health_after", wedged}};
        if (!removed) return failed(e, exit_failure, extra, wedged_text);
        e.message = "not bound at boot any more, but not given back now: " + e.message;
        if (!extra.is_object()) extra = json::object();
        extra["persistent"] = {{"removed", removed->removed}};
        return failed(e, exit_failure, extra, wedged_text);
    }
    Report r;
    r.json = {{"changes", changes_json(*changes)}};
    std::string persist_text_out;
    if (removed) {
        r.json["persistent"] = {
            {"removed", removed->removed},
            {"backups", removed->backups},
            {"notes", persist_notes},
            {"operation", removed->operation.empty() ? json(nullptr) : json(removed->operation)}};
        persist_text_out = "Not bound at boot any more:\n";
        for (const auto& p : removed->removed)
            persist_text_out += "  removed " + p + "\n";
        if (!removed->operation.empty())
            persist_text_out += "  (boot journal operation " + removed->operation +
                                ", backups: " + util::join(removed->backups, ", ") + ")\n";
        persist_text_out += notes_text(persist_notes);
    }
    if (!o.all && addrs.empty())
        r.text = "Nothing to give back now: no such device on this host\n";
    else if (std::none_of(changes->begin(), changes->end(),
                          [](const auto& c) { return c.changed; }))
        r.text = std::string("Nothing to give back") +
                 (changes->empty() ? ": the journal is empty" : ":") + "\n" +
                 changes_text(*changes);
    else
        r.text = "Given back:\n" + changes_text(*changes);
    r.text += persist_text_out;
    json after = json::array();
    for (const auto& c : *changes) {
        auto a = pci::PciAddress::parse(c.address);
        if (!c.changed || !a) continue;
        const auto h = pci::check_return(ctx.host, *a, aer_before[a->str()], c.to);
        after.push_back(return_json(h));
        r.text += return_text(h);
    }
    r.json["health_after"] = after;
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
                add_selection_flags(sub, o->select);
                sub.add_option("--owner", o->owner,
                               "give each group's /dev/vfio/N to this user (a login name or uid), "
                               "so that QEMU may run as that user, not root");
                sub.add_flag("--dry-run", o->dry_run, "show the plan and stop");
                sub.add_flag("--persistent", o->persistent,
                             "also at every boot: records /etc/vfioctl/bind.d/pci-ADDRESS for "
                             "each device of the group (per address, never per vendor:device)");
                sub.add_flag("--at-boot", o->at_boot,
                             "what vfioctl-bind.service runs: apply /etc/vfioctl/bind.d (only "
                             "the addresses given, if any); exit 0 when every present device is "
                             "on vfio-pci, 1 when one is not");
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
                sub.add_flag("--persistent", o->persistent,
                             "also remove the devices' /etc/vfioctl/bind.d entries (with --all: "
                             "every entry)");
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
