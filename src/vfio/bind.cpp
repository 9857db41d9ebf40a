#include "vfio/bind.hpp"

#include "util/fault.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

namespace vfioctl::vfio {

namespace {

using Clock = std::chrono::steady_clock;

const char* const k_vfio = "vfio-pci";

std::string dev_base(const std::string& addr) {
    return "/sys/bus/pci/devices/" + addr;
}

std::string show(const std::optional<std::string>& drv) {
    return drv.value_or("no driver");
}

void say(const ChangeOptions& opt, const std::string& s) {
    if (opt.progress) opt.progress(s);
}

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Holds the state-directory lock and the loaded journal for one change.
struct Session {
    host::FileLock lock;
    Journal journal;
};

Result<Session> open_session(const host::Host& host, const ChangeOptions& opt) {
    if (auto st = host.make_dirs(opt.state_dir); !st) return st.error();
    auto lock = host::FileLock::acquire(host, lock_path(opt.state_dir), opt.lock_timeout_ms);
    if (!lock) return lock.error();
    auto j = load_journal(host, opt.state_dir);
    if (!j) return j.error();
    return Session{std::move(lock).value(), std::move(j).value()};
}

// Polls for a path to appear (devtmpfs creates /dev/vfio/N as the group opens up).
bool wait_for(const host::Host& host, const std::string& p, int timeout_ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!host.exists(p)) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

Status unbind_from(const host::Host& host, const std::string& addr, const std::string& drv,
                   const ChangeOptions& opt) {
    return host.write_bounded("/sys/bus/pci/drivers/" + drv + "/unbind", addr,
                              opt.unbind_timeout_ms);
}

// One device to vfio-pci; the journal entry is written before the first change.
Result<DeviceChange> bind_one(const host::Host& host, Journal& journal, const PlanItem& item,
                              const ChangeOptions& opt) {
    const std::string addr = item.addr.str();
    const std::string base = dev_base(addr);
    if (!host.exists(base))
        return Error{"device " + addr + " has disappeared", base,
                     "'vfioctl groups' shows what is there now", 0};
    auto t0 = Clock::now();
    JournalEntry e;
    e.address = addr;
    e.group = item.group;
    const std::optional<std::string> current = host.link_name(base + "/driver");
    e.original_driver = current;
    if (auto o = host.attr(base + "/driver_override"); o && *o != "(null)" && !o->empty())
        e.original_override = *o;
    e.boot = current_boot(host);
    // An entry left by a run that did not finish (killed, not yet
    // recovered) knows what the device had before vfioctl touched it: keep
    // that, never what the unfinished run left. Unless it is of an earlier
    // boot: the reboot gave the device back, so what it has now is right.
    if (const JournalEntry* old = journal.find(addr); old && !old->boot.known_other_than(e.boot)) {
        e.original_driver = old->original_driver;
        e.original_override = old->original_override;
    }
    e.phase = "binding";
    e.since = util::utc_now();
    journal.erase(addr);
    journal.entries.push_back(e);
    if (auto st = save_journal(host, opt.state_dir, journal); !st) {
        journal.erase(addr);
        return st.error();
    }
    util::fault_point("bind.journaled");
    say(opt, "binding " + addr + ": " + show(e.original_driver) + " -> vfio-pci");
    if (auto st = host.write(base + "/driver_override", k_vfio); !st) return st.error();
    util::fault_point("bind.override");
    if (current)
        if (auto st = unbind_from(host, addr, *current, opt); !st) return st.error();
    util::fault_point("bind.unbound");
    if (auto st = host.write("/sys/bus/pci/drivers_probe", addr); !st) return st.error();
    util::fault_point("bind.probed");
    auto now = host.link_name(base + "/driver");
    if (now != std::optional<std::string>(k_vfio))
        return Error{"the probe left " + addr + " on " + show(now) + ", not vfio-pci",
                     base + "/driver", "check 'dmesg' for vfio-pci errors (is the IOMMU on?)", 0};
    const std::string node = "/dev/vfio/" + std::to_string(item.group);
    if (!wait_for(host, node, opt.node_timeout_ms))
        return Error{addr + " is on vfio-pci but " + node + " did not appear", node,
                     "check 'dmesg' for vfio errors", 0};
    if (auto* je = journal.find(addr)) je->phase = "bound";
    if (auto st = save_journal(host, opt.state_dir, journal); !st) return st.error();
    util::fault_point("bind.done");
    DeviceChange c{addr, e.original_driver, std::string(k_vfio), true, ms_since(t0), {}};
    return c;
}

// One journaled device back to its original driver; the entry goes only
// once the original driver holds it again.
Result<DeviceChange> restore_one(const host::Host& host, Journal& journal, const std::string& addr,
                                 const ChangeOptions& opt) {
    JournalEntry* je = journal.find(addr);
    if (!je) return Error{"no journal entry for " + addr, journal_path(opt.state_dir), {}, 0};
    const JournalEntry e = *je;
    const std::string base = dev_base(addr);
    auto t0 = Clock::now();
    DeviceChange c{addr, host.link_name(base + "/driver"), e.original_driver, false, 0, {}};
    if (!host.exists(base)) {
        journal.erase(addr);
        if (auto st = save_journal(host, opt.state_dir, journal); !st) return st.error();
        c.note = "the device is gone; its journal entry was dropped";
        return c;
    }
    je->phase = "restoring";
    // The writes below happen in this boot: an entry left behind by them
    // must never be taken for one of an earlier boot in this boot.
    je->boot = current_boot(host);
    if (auto st = save_journal(host, opt.state_dir, journal); !st) return st.error();
    util::fault_point("restore.journaled");
    say(opt, "restoring " + addr + ": " + show(c.from) + " -> " + show(e.original_driver));
    if (auto st = host.write(base + "/driver_override", e.original_override.value_or("\n")); !st)
        return st.error();
    util::fault_point("restore.override");
    auto cur = host.link_name(base + "/driver");
    if (cur && cur != e.original_driver)
        if (auto st = unbind_from(host, addr, *cur, opt); !st) return st.error();
    util::fault_point("restore.unbound");
    if (!host.link_name(base + "/driver")) {
        bool bound = false;
        if (e.original_driver) {
            const std::string drv = "/sys/bus/pci/drivers/" + *e.original_driver;
            if (!host.exists(drv)) (void)host.load_module(*e.original_driver);
            if (host.exists(drv)) bound = static_cast<bool>(host.write(drv + "/bind", addr));
        }
        if (!bound)
            if (auto st = host.write("/sys/bus/pci/drivers_probe", addr); !st) return st.error();
    }
    util::fault_point("restore.bound");
    auto now = host.link_name(base + "/driver");
    if (e.original_driver && now != e.original_driver)
        return Error{
            addr + " is on " + show(now) + " after restoring, not " + *e.original_driver,
            base + "/driver",
            "its journal entry is kept: load the driver's module, then run 'vfioctl recover'", 0};
    journal.erase(addr);
    if (auto st = save_journal(host, opt.state_dir, journal); !st) return st.error();
    util::fault_point("restore.done");
    c.to = now;
    c.changed = true;
    c.ms = ms_since(t0);
    return c;
}

// Drops the entries of devices that are gone in one save, noting each as
// restore_one does: a journal of thousands of them took a save (of the
// whole journal, fsync'd) per entry, minutes in all.
Status drop_gone(const host::Host& host, Journal& journal, const ChangeOptions& opt,
                 std::vector<DeviceChange>& changes) {
    const size_t before = journal.entries.size();
    std::vector<JournalEntry> kept;
    for (auto& e : journal.entries) {
        if (host.exists(dev_base(e.address))) {
            kept.push_back(std::move(e));
            continue;
        }
        changes.push_back({e.address, std::nullopt, e.original_driver, false, 0,
                           "the device is gone; its journal entry was dropped"});
    }
    journal.entries = std::move(kept);
    if (journal.entries.size() == before) return {};
    return save_journal(host, opt.state_dir, journal);
}

} // namespace

std::vector<std::string> texts(const std::vector<Obstacle>& obstacles) {
    std::vector<std::string> out;
    for (const auto& o : obstacles)
        out.push_back(o.text);
    return out;
}

bool BindPlan::nothing_to_do() const {
    return std::all_of(items.begin(), items.end(), [](const PlanItem& i) { return i.already; });
}

BindPlan plan_bind(const std::vector<const pci::PciDevice*>& targets, const pci::Inventory& inv,
                   const host::SystemFacts& facts, const std::vector<iommu::IommuGroup>& groups) {
    BindPlan plan;
    std::vector<pci::PciAddress> addrs;
    std::set<pci::PciAddress> named;
    for (const auto* t : targets) {
        named.insert(t->addr);
        if (!t->iommu_group) {
            plan.refusals.push_back(
                {t->addr, "no_iommu_group",
                 t->addr.short_str() +
                     " is in no IOMMU group: the IOMMU is off or does not cover it "
                     "('vfioctl status' says why)"});
            continue;
        }
        if (facts.groups_unreadable) {
            // The group's other members, a root disk among them, may be hidden.
            plan.refusals.push_back(
                {t->addr, "unknown_group",
                 t->addr.short_str() +
                     "'s IOMMU group members cannot be established: " + *facts.groups_unreadable});
            continue;
        }
        if (std::find(plan.groups.begin(), plan.groups.end(), *t->iommu_group) != plan.groups.end())
            continue;
        plan.groups.push_back(*t->iommu_group);
        bool found = false;
        for (const auto& g : groups) {
            if (g.number != *t->iommu_group) continue;
            found = true;
            for (const auto& a : g.devices)
                addrs.push_back(a);
        }
        if (!found) addrs.push_back(t->addr);
    }
    std::sort(addrs.begin(), addrs.end());
    addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
    for (const auto& a : addrs) {
        const pci::PciDevice* d = inv.find(a);
        if (!d) {
            plan.refusals.push_back(
                {a, "unreadable_member", a.str() + " is in the group but cannot be read"});
            continue;
        }
        if (d->bridge) continue; // bridges stay with their drivers
        PlanItem it;
        it.addr = a;
        it.label = d->addr.short_str() + " [" + d->id().str() + "] " + d->name();
        it.driver = d->driver;
        it.group = d->iommu_group.value_or(-1);
        it.target = named.count(a) > 0;
        it.already = d->driver == std::optional<std::string>(k_vfio);
        auto role = iommu::role_of(*d, inv, facts);
        for (const auto& c : role.critical) {
            std::string why = a.short_str() + " is host-critical: " + c.reason();
            if (host::force_overrides(c.kind))
                plan.blockers.push_back({a, host::critical_kind_id(c.kind), why});
            else
                plan.refusals.push_back({a, host::critical_kind_id(c.kind),
                                         why + " (never moved, not even with --force)"});
        }
        if (!it.already)
            for (const auto& u : role.in_use)
                plan.blockers.push_back(
                    {a, host::in_use_kind_id(u.kind), a.short_str() + " is in use: " + u.what()});
        plan.items.push_back(std::move(it));
    }
    return plan;
}

Result<std::vector<DeviceChange>> execute_bind(const host::Host& host, const BindPlan& plan,
                                               const ChangeOptions& opt) {
    std::vector<DeviceChange> changes;
    if (plan.nothing_to_do()) {
        for (const auto& it : plan.items)
            changes.push_back(
                {it.addr.str(), it.driver, it.driver, false, 0, "already on vfio-pci"});
        return changes;
    }
    auto session = open_session(host, opt);
    if (!session) return session.error();
    Journal& journal = session->journal;
    if (!host.exists("/sys/bus/pci/drivers/vfio-pci")) {
        say(opt, "loading vfio-pci");
        if (auto st = host.load_module("vfio_pci"); !st) return st.error();
        if (!host.exists("/sys/bus/pci/drivers/vfio-pci"))
            return Error{"vfio-pci loaded but its driver directory did not appear",
                         "/sys/bus/pci/drivers/vfio-pci",
                         {},
                         0};
    }
    std::vector<std::string> moved;
    for (const auto& it : plan.items) {
        if (it.already) {
            changes.push_back(
                {it.addr.str(), it.driver, it.driver, false, 0, "already on vfio-pci"});
            continue;
        }
        // Read again under the lock: another vfioctl may have bound it since
        // the plan was made. Binding it again replaced that run's journal
        // entry with one whose original driver was vfio-pci.
        if (host.link_name(dev_base(it.addr.str()) + "/driver") ==
            std::optional<std::string>(k_vfio)) {
            changes.push_back({it.addr.str(), std::string(k_vfio), std::string(k_vfio), false, 0,
                               "already on vfio-pci (bound meanwhile)"});
            continue;
        }
        moved.push_back(it.addr.str());
        auto c = bind_one(host, journal, it, opt);
        if (c) {
            changes.push_back(*c);
            continue;
        }
        // Give back everything this run moved, newest first.
        Error err = c.error();
        std::vector<std::string> undone, stuck;
        if (err.errnum == ETIMEDOUT) {
            // The kernel is still unbinding it: restoring now would race the
            // unbind. The entry stays for 'recover' once the kernel is done.
            moved.pop_back();
            stuck.push_back(it.addr.str() +
                            " is still being unbound by the kernel; its journal entry is kept");
        }
        for (auto m = moved.rbegin(); m != moved.rend(); ++m) {
            if (!journal.find(*m)) continue;
            auto r = restore_one(host, journal, *m, opt);
            if (r)
                undone.push_back(*m + " back on " + show(r->to));
            else
                stuck.push_back(*m + ": " + r.error().describe());
        }
        err.message = "binding " + it.addr.str() + " failed: " + err.message;
        std::string rolled = undone.empty() ? "" : "rolled back: " + util::join(undone, ", ");
        if (!stuck.empty())
            rolled += (rolled.empty() ? "" : "; ") + std::string("NOT restored: ") +
                      util::join(stuck, "; ") + " (run 'vfioctl recover')";
        err.hint = rolled + (err.hint.empty() ? "" : (rolled.empty() ? "" : ". ") + err.hint);
        return err;
    }
    return changes;
}

Result<std::vector<DeviceChange>> give_back(const host::Host& host,
                                            const std::vector<pci::PciAddress>& addresses,
                                            const std::map<int, std::string>& busy_groups,
                                            bool force, const ChangeOptions& opt) {
    auto session = open_session(host, opt);
    if (!session) return session.error();
    Journal& journal = session->journal;
    std::vector<DeviceChange> changes;
    std::vector<std::string> todo;
    if (addresses.empty()) {
        if (auto st = drop_gone(host, journal, opt, changes); !st) return st.error();
        for (const auto& e : journal.entries)
            todo.push_back(e.address);
    }
    for (const auto& a : addresses)
        todo.push_back(a.str());
    if (!force) {
        std::vector<std::string> busy;
        for (const auto& addr : todo) {
            int group = -1;
            if (auto* e = journal.find(addr))
                group = e->group;
            else if (auto g = host.link_name(dev_base(addr) + "/iommu_group"))
                // std::stoi threw on a link that names no number ("internal error: stoi").
                if (auto n = util::parse_dec(*g); n && *n <= 1'000'000)
                    group = static_cast<int>(*n);
            auto b = busy_groups.find(group);
            if (b != busy_groups.end())
                busy.push_back(addr + " (/dev/vfio/" + std::to_string(group) + " held by " +
                               b->second + ")");
        }
        if (!busy.empty())
            return Error{
                "a process (a VM?) still holds " + util::join(busy, ", "),
                {},
                "stop the VM first ('vfioctl vm stop NAME'); --force takes the device away from it",
                0};
    }
    for (const auto& addr : todo) {
        if (journal.find(addr)) {
            auto c = restore_one(host, journal, addr, opt);
            if (!c) return c.error();
            changes.push_back(*c);
            continue;
        }
        const std::string base = dev_base(addr);
        auto cur = host.link_name(base + "/driver");
        if (cur != std::optional<std::string>(k_vfio)) {
            changes.push_back({addr, cur, cur, false, 0, "not on vfio-pci; nothing to do"});
            continue;
        }
        // Bound by someone else: the original driver is unknown, so clear
        // the override and let the kernel choose, as libvirt does.
        auto t0 = Clock::now();
        say(opt, "re-probing " + addr + " (not bound by vfioctl: original driver unknown)");
        if (auto st = host.write(base + "/driver_override", "\n"); !st) return st.error();
        if (auto st = unbind_from(host, addr, k_vfio, opt); !st) return st.error();
        if (auto st = host.write("/sys/bus/pci/drivers_probe", addr); !st) return st.error();
        auto now = host.link_name(base + "/driver");
        changes.push_back({addr, cur, now, true, ms_since(t0), "not journaled: re-probed"});
    }
    return changes;
}

Result<Recovery> recover(const host::Host& host, const ChangeOptions& opt, RecoverMode mode) {
    auto session = open_session(host, opt);
    if (!session) return session.error();
    Journal& journal = session->journal;
    Recovery rec;
    rec.boot = current_boot(host, &rec.boot_unknown_why);
    // Entries of an earlier boot: the reboot cleared their driver_override
    // and the kernel probed the devices afresh, so writing to them now
    // could only undo what the host did since. Settled without a write.
    if (rec.boot.known()) {
        Settlement s;
        std::vector<JournalEntry> kept;
        for (auto& e : journal.entries)
            (e.boot.known_other_than(rec.boot) ? s.devices : kept).push_back(e);
        if (!s.devices.empty()) {
            s.at = util::utc_now();
            s.boot = rec.boot;
            s.count = s.devices.size();
            say(opt, "settling " + std::to_string(s.count) + " journal entr" +
                         (s.count == 1 ? "y" : "ies") +
                         " of an earlier boot (no device is touched)");
            // The record first, then the journal: a crash in between leaves
            // the entries to be settled (and recorded) again, never dropped
            // unrecorded.
            if (auto st = append_settlement(host, opt.state_dir, s); !st) return st.error();
            util::fault_point("settle.recorded");
            journal.entries = std::move(kept);
            if (auto st = save_journal(host, opt.state_dir, journal); !st) return st.error();
            rec.settled = std::move(s);
        }
    }
    if (mode == RecoverMode::at_boot) {
        rec.left = journal.entries;
        return rec;
    }
    if (auto st = drop_gone(host, journal, opt, rec.changes); !st) return st.error();
    std::vector<std::string> failed;
    std::vector<std::string> todo;
    for (const auto& e : journal.entries)
        todo.push_back(e.address);
    for (const auto& addr : todo) {
        auto c = restore_one(host, journal, addr, opt);
        if (c)
            rec.changes.push_back(*c);
        else
            failed.push_back(c.error().describe());
    }
    if (!failed.empty())
        return Error{(rec.settled ? "settled " + std::to_string(rec.settled->count) +
                                        " entries of an earlier boot, but could not restore: "
                                  : std::string("could not restore: ")) +
                         util::join(failed, "; "),
                     journal_path(opt.state_dir),
                     "the entries are kept; fix the cause and run 'vfioctl recover' again", 0};
    return rec;
}

} // namespace vfioctl::vfio
