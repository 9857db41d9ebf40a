#include "services/devices.hpp"

#include "iommu/diagnosis.hpp"
#include "util/strings.hpp"

#include <algorithm>

namespace vfioctl::services {

std::optional<Error> plan_refusal(const vfio::BindPlan& plan, bool force, Requester who) {
    const bool bind = who == Requester::bind;
    auto refuse = [](const std::vector<vfio::Obstacle>& obstacles, std::string hint) {
        return Error{"refusing to bind: " + util::join(vfio::texts(obstacles), "; "),
                     {},
                     "nothing was changed; " + std::move(hint),
                     0};
    };
    if (!plan.refusals.empty())
        return refuse(plan.refusals, bind ? "'vfioctl groups' shows each group's members and roles"
                                          : "'vfioctl groups' shows each group's members");
    if (!plan.blockers.empty() && !force)
        return refuse(plan.blockers, bind ? "stop what uses the device, or pass --force to take "
                                            "it anyway"
                                          : "stop what uses the device, or 'vfioctl bind --force' "
                                            "it first");
    return std::nullopt;
}

Devices::Devices(const host::Host& host, std::string state_dir,
                 std::function<void(const std::string&)> progress, int unbind_timeout_ms)
    : m_host(host), m_state_dir(std::move(state_dir)), m_progress(std::move(progress)),
      m_unbind_timeout_ms(unbind_timeout_ms) {}

vfio::ChangeOptions Devices::change_options() const {
    vfio::ChangeOptions o;
    o.state_dir = m_state_dir;
    o.unbind_timeout_ms = m_unbind_timeout_ms;
    o.progress = m_progress;
    return o;
}

Result<std::vector<vfio::DeviceChange>> Devices::bind(const vfio::BindPlan& plan) const {
    return vfio::execute_bind(m_host, plan, change_options());
}

namespace {

// What a guest's targets come to on m, checked as take checks them before
// it changes anything: the devices and the plan that would bind them.
struct Chosen {
    std::vector<const pci::PciDevice*> devices;
    vfio::BindPlan plan;
};

// The passthrough the chosen devices make: slots, addresses, IDs.
Passthrough passthrough_of(const std::vector<const pci::PciDevice*>& devs) {
    Passthrough p;
    p.slots = vm::group_slots(devs);
    for (const auto& s : p.slots)
        for (const auto& f : s.functions) {
            p.addresses.push_back(f.host.str());
            p.ids.push_back(pci::PciId{f.vendor, f.device}.str());
        }
    return p;
}

Taken<Chosen> choose(const HostModel& m, const std::vector<std::string>& targets) {
    std::vector<const pci::PciDevice*> devs;
    auto add = [&devs](const pci::PciDevice* d) {
        if (std::find(devs.begin(), devs.end(), d) == devs.end()) devs.push_back(d);
    };
    for (const auto& t : targets) {
        auto found = match_devices(m.inv, t);
        if (!found) return found.error();
        for (const auto* d : *found) {
            add(d);
            if (d->is_gpu())
                for (const auto& o : m.inv.devices)
                    if (o.addr.same_slot(d->addr) && m.inv.is_gpu_companion(o)) add(&o);
        }
    }
    // Preflight: the verdict 'status' gives, before anything changes.
    auto dx = iommu::diagnose(m.facts, m.inv, m.groups);
    for (const auto* d : devs) {
        const iommu::GpuDiagnosis* g = nullptr;
        for (const auto& x : dx.gpus)
            if (x.gpu->addr == d->addr) g = &x;
        if (g && g->verdict != iommu::Verdict::will_work)
            return Refusal{Error{"passthrough of " + d->addr.str() + " " +
                                     iommu::verdict_text(g->verdict) + ": " +
                                     util::join(g->causes, "; "),
                                 {},
                                 g->steps.empty() ? "'vfioctl status' explains"
                                                  : "then try again: " + util::join(g->steps, "; "),
                                 0},
                           true};
        if (!d->iommu_group)
            return Refusal{
                Error{d->addr.str() + " has no IOMMU group" +
                          (dx.iommu.off_cause ? ": " + *dx.iommu.off_cause : std::string()),
                      {},
                      "QEMU would fail with 'no iommu_group found'; 'vfioctl status' gives the "
                      "steps",
                      0},
                true};
    }
    auto plan = vfio::plan_bind(devs, m.inv, m.facts, m.groups);
    if (auto refused = plan_refusal(plan, false, Requester::guest)) return *refused;
    return Chosen{std::move(devs), std::move(plan)};
}

} // namespace

Taken<Passthrough> Devices::take(const HostModel& m,
                                 const std::vector<std::string>& targets) const {
    auto chosen = choose(m, targets);
    if (!chosen) return chosen.refusal();
    auto changes = bind(chosen->plan);
    if (!changes) return changes.error();
    return passthrough_of(chosen->devices);
}

Taken<Passthrough> resolve_passthrough(const HostModel& m,
                                       const std::vector<std::string>& targets) {
    auto chosen = choose(m, targets);
    if (!chosen) return chosen.refusal();
    return passthrough_of(chosen->devices);
}

Result<std::vector<vfio::DeviceChange>>
Devices::give_back(const std::vector<pci::PciAddress>& addresses,
                   const std::map<int, std::string>& busy, bool force) const {
    return vfio::give_back(m_host, addresses, busy, force, change_options());
}

Status Devices::give_back(const std::vector<std::string>& addresses) const {
    if (addresses.empty()) return {};
    std::vector<pci::PciAddress> addrs;
    for (const auto& a : addresses)
        if (auto p = pci::PciAddress::parse(a)) addrs.push_back(*p);
    auto r = give_back(addrs);
    if (!r) return r.error();
    return {};
}

Result<vfio::Recovery> Devices::recover(vfio::RecoverMode mode) const {
    return vfio::recover(m_host, change_options(), mode);
}

std::map<int, std::string> busy_groups(const host::SystemFacts& facts) {
    std::map<int, std::string> busy;
    for (const auto& h : facts.holders) {
        if (!util::starts_with(h.node, "/dev/vfio/")) continue;
        if (auto g = util::parse_dec(h.node.substr(10)))
            busy[static_cast<int>(*g)] += (busy.count(static_cast<int>(*g)) ? ", " : "") +
                                          std::string("pid ") + std::to_string(h.pid) + " (" +
                                          h.comm + ")";
    }
    return busy;
}

} // namespace vfioctl::services
