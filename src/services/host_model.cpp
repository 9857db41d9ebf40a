#include "services/host_model.hpp"

#include <set>

namespace vfioctl::services {

Result<HostModel> load_host(const host::Host& host, const std::string& state_dir,
                            bool devices_only) {
    HostModel m;
    auto inv = pci::enumerate(host);
    if (!inv) return inv.error();
    m.inv = std::move(inv).value();
    m.facts = host::read_system(host, devices_only);
    // A device whose iommu_group entry cannot be read, or group listings
    // and links that disagree, make every membership unknown, as an
    // unlistable groups directory does.
    for (const auto& d : m.inv.devices)
        if (d.iommu_group_problem && !m.facts.groups_unreadable) {
            m.facts.groups_unreadable = *d.iommu_group_problem;
            m.facts.warnings.push_back(*d.iommu_group_problem +
                                       ": IOMMU group membership is unknown");
        }
    std::optional<std::string> disagreement;
    m.groups = iommu::read_groups(host, m.inv, m.warnings, &disagreement);
    if (disagreement && !m.facts.groups_unreadable) {
        m.facts.groups_unreadable = disagreement;
        m.facts.warnings.push_back(*disagreement + ": IOMMU group membership is unknown");
    }
    std::set<int> known;
    for (const auto& g : m.groups)
        known.insert(g.number);
    for (const auto& d : m.inv.devices)
        if (d.iommu_group && !known.count(*d.iommu_group))
            m.warnings.push_back(d.addr.str() + ": iommu_group link leads to group " +
                                 std::to_string(*d.iommu_group) +
                                 ", which does not exist under /sys/kernel/iommu_groups");
    if (auto j = vfio::load_journal(host, state_dir))
        m.journal = j->entries;
    else
        m.warnings.push_back(j.error().describe());
    for (auto& w : m.inv.warnings)
        m.warnings.push_back(w);
    for (auto& w : m.facts.warnings)
        m.warnings.push_back(w);
    return m;
}

Result<std::vector<const pci::PciDevice*>> match_devices(const pci::Inventory& inv,
                                                         const std::string& target) {
    std::vector<const pci::PciDevice*> out;
    if (target.find('.') != std::string::npos) {
        auto a = pci::PciAddress::parse(target);
        if (!a) return a.error();
        if (const auto* d = inv.find(*a)) out.push_back(d);
        if (out.empty())
            return Error{
                "no PCI device at " + a->str(), {}, "'vfioctl groups' lists the devices", 0};
        return out;
    }
    auto id = pci::PciId::parse(target);
    if (!id)
        return Error{"'" + target + "' is neither a PCI address nor a vendor:device ID",
                     {},
                     "give a BDF (8a:00.0, 0000:8a:00.0) or an ID (10de:2336)",
                     0};
    out = inv.find(*id);
    if (out.empty())
        return Error{
            "no PCI device with ID " + id->str(), {}, "'vfioctl groups' lists the devices", 0};
    return out;
}

} // namespace vfioctl::services
