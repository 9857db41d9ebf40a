#include "cli/model.hpp"

#include <cstdio>
#include <set>

namespace vfioctl::cli {

Result<HostModel> load_host(Context& ctx, bool devices_only) {
    HostModel m;
    auto inv = pci::enumerate(ctx.host);
    if (!inv) return inv.error();
    m.inv = std::move(inv).value();
    m.facts = host::read_system(ctx.host, devices_only);
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
    m.groups = iommu::read_groups(ctx.host, m.inv, m.warnings, &disagreement);
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
    if (auto j = vfio::load_journal(ctx.host, "/var/lib/vfioctl"))
        m.journal = j->entries;
    else
        m.warnings.push_back(j.error().describe());
    for (auto& w : m.inv.warnings)
        m.warnings.push_back(w);
    for (auto& w : m.facts.warnings)
        m.warnings.push_back(w);
    for (const auto& w : m.warnings)
        warn(ctx, w);
    return m;
}

std::vector<std::string> role_flags(const iommu::DeviceRole& role) {
    std::vector<std::string> f;
    if (role.bridge) f.emplace_back("bridge");
    if (role.gpu) f.emplace_back("gpu");
    if (role.gpu_companion) f.emplace_back("gpu_companion");
    if (!role.critical.empty()) f.emplace_back("host_critical");
    if (!role.in_use.empty()) f.emplace_back("in_use");
    return f;
}

nlohmann::json device_json(const pci::PciDevice& d, const iommu::DeviceRole& role) {
    char cls[8];
    std::snprintf(cls, sizeof cls, "%04x", d.class_code);
    nlohmann::json j = {
        {"address", d.addr.str()},
        {"id", d.id().str()},
        {"class", cls},
        {"class_name", d.class_name},
        {"vendor_name", d.vendor_name},
        {"device_name", d.device_name},
        {"driver", d.driver ? nlohmann::json(*d.driver) : nlohmann::json(nullptr)},
        {"iommu_group", d.iommu_group ? nlohmann::json(*d.iommu_group) : nlohmann::json(nullptr)},
        {"flags", role_flags(role)},
    };
    nlohmann::json reasons = nlohmann::json::array(), kinds = nlohmann::json::array();
    for (const auto& c : role.critical) {
        reasons.push_back(c.reason());
        kinds.push_back(host::critical_kind_id(c.kind));
    }
    nlohmann::json uses = nlohmann::json::array(), use_kinds = nlohmann::json::array();
    for (const auto& u : role.in_use) {
        uses.push_back(u.what());
        use_kinds.push_back(host::in_use_kind_id(u.kind));
    }
    j["critical_reasons"] = reasons;
    j["critical_kinds"] = kinds;
    j["in_use"] = uses;
    j["in_use_kinds"] = use_kinds;
    if (d.driver_override) j["driver_override"] = *d.driver_override;
    return j;
}

std::string device_line(const pci::PciDevice& d) {
    std::string s =
        d.addr.short_str() + " [" + d.id().str() + "] " + d.class_name + ": " + d.name();
    s += d.driver ? " (" + *d.driver + ")" : " (no driver)";
    return s;
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

} // namespace vfioctl::cli
