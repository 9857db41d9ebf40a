#include "iommu/groups.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace vfioctl::iommu {

std::vector<IommuGroup> read_groups(const host::Tree& host, const pci::Inventory& inv,
                                    std::vector<std::string>& warnings,
                                    std::optional<std::string>* disagreement) {
    std::vector<IommuGroup> groups;
    auto names = host.list("/sys/kernel/iommu_groups");
    if (!names) return groups;
    auto disagree = [&](std::string why) {
        if (disagreement && !*disagreement) *disagreement = std::move(why);
    };
    std::map<pci::PciAddress, int> linked; // device -> the group its link names
    for (const auto& d : inv.devices)
        if (d.iommu_group) linked[d.addr] = *d.iommu_group;
    std::set<int> existing;
    std::map<int, std::vector<pci::PciAddress>> members;
    for (const auto& d : inv.devices)
        if (d.iommu_group) members[*d.iommu_group].push_back(d.addr); // sorted: inv is
    for (const auto& name : *names) {
        auto n = util::parse_dec(name);
        if (!n || *n > 1'000'000) {
            warnings.push_back("/sys/kernel/iommu_groups/" + name +
                               " is not a group number; skipped");
            continue;
        }
        IommuGroup g;
        g.number = static_cast<int>(*n);
        const std::string base = "/sys/kernel/iommu_groups/" + name;
        g.type = host.attr(base + "/type").value_or("");
        // The members are the devices whose links name the group and the
        // ones the group lists: a member that cannot be read (no link, or
        // left out of the inventory) stays in its group as an unknown
        // member, never silently dropped from it.
        // Where the two views disagree (a member without its link, a link
        // that names another group or a group that does not list it), a
        // member such as the root disk may be hidden: membership is unknown.
        existing.insert(g.number);
        std::vector<pci::PciAddress> by_link;
        if (auto it = members.find(g.number); it != members.end()) by_link = it->second;
        g.devices = by_link;
        if (auto devs = host.list(base + "/devices")) {
            std::set<pci::PciAddress> listed;
            for (const auto& d : *devs) {
                if (auto a = pci::PciAddress::parse(d)) {
                    g.devices.push_back(*a);
                    listed.insert(*a);
                    auto l = linked.find(*a);
                    if (l == linked.end() || l->second != g.number)
                        disagree(base + "/devices lists " + a->str() + ", but " +
                                 (l == linked.end()
                                      ? std::string("it has no readable iommu_group link")
                                      : "its iommu_group link names group " +
                                            std::to_string(l->second)));
                } else {
                    warnings.push_back(base + "/devices/" + d + " is not a PCI address; skipped");
                }
            }
            for (const auto& a : by_link)
                if (!listed.count(a))
                    disagree("/sys/bus/pci/devices/" + a.str() + "/iommu_group names group " +
                             name + ", but " + base + "/devices does not list it");
        } else {
            disagree("cannot list " + base + "/devices (" + devs.error().describe() + ")");
        }
        std::sort(g.devices.begin(), g.devices.end());
        g.devices.erase(std::unique(g.devices.begin(), g.devices.end()), g.devices.end());
        groups.push_back(std::move(g));
    }
    for (const auto& [a, n] : linked)
        if (!existing.count(n))
            disagree("/sys/bus/pci/devices/" + a.str() + "/iommu_group names group " +
                     std::to_string(n) + ", but /sys/kernel/iommu_groups/" + std::to_string(n) +
                     " does not exist");
    std::sort(groups.begin(), groups.end(),
              [](const IommuGroup& a, const IommuGroup& b) { return a.number < b.number; });
    return groups;
}

DeviceRole role_of(const pci::PciDevice& d, const pci::Inventory& inv,
                   const host::SystemFacts& facts) {
    DeviceRole r;
    r.bridge = d.bridge;
    r.gpu = d.is_gpu();
    r.gpu_companion = inv.is_gpu_companion(d);
    for (const auto& c : facts.critical)
        if (c.addr == d.addr) r.critical.push_back(c);
    if (d.boot_vga) r.critical.push_back({d.addr, host::CriticalKind::boot_vga, {}});
    for (const auto& u : facts.in_use)
        if (u.addr == d.addr) r.in_use.push_back(u);
    const std::string addr = d.addr.str();
    for (const auto& h : facts.holders) {
        bool mine = false;
        auto minor = facts.nvidia_minors.find(h.node);
        if (minor != facts.nvidia_minors.end())
            mine = minor->second == addr;
        else if (util::starts_with(h.node, "/dev/nvidia") && d.vendor == 0x10de && d.is_gpu())
            mine = h.node.find_first_of("0123456789") == std::string::npos; // nvidiactl, nvidia-uvm
        else if (util::starts_with(h.node, "/dev/dri/"))
            mine = std::find(d.drm_nodes.begin(), d.drm_nodes.end(), h.node.substr(9)) !=
                   d.drm_nodes.end();
        if (mine) {
            host::DeviceUse u;
            u.addr = d.addr;
            u.kind = host::InUseKind::holder_process;
            u.pid = h.pid;
            u.comm = h.comm;
            u.node = h.node;
            r.in_use.push_back(std::move(u));
        }
    }
    return r;
}

Viability assess(const IommuGroup& g, const std::optional<pci::PciAddress>& target,
                 const pci::Inventory& inv, const host::SystemFacts& facts) {
    Viability v;
    std::optional<pci::PciAddress> slot = target;
    for (const auto& a : g.devices) {
        const pci::PciDevice* d = inv.find(a);
        if (!d) {
            v.unknown.push_back(a);
            continue;
        }
        if (d->bridge) continue;
        if (!slot) slot = a;
        for (const auto& c : facts.critical)
            if (c.addr == a) v.critical.push_back(c);
        if (d->boot_vga) v.critical.push_back({a, host::CriticalKind::boot_vga, {}});
        if (!a.same_slot(*slot) || (target && a != *target)) v.must_go_too.push_back(a);
    }
    v.isolated = std::all_of(v.must_go_too.begin(), v.must_go_too.end(),
                             [&](const pci::PciAddress& a) { return slot && a.same_slot(*slot); });
    v.viable = v.critical.empty() && v.unknown.empty();
    return v;
}

} // namespace vfioctl::iommu
