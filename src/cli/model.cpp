#include "cli/model.hpp"

#include <cstdio>

namespace vfioctl::cli {

Result<HostModel> load_host(Context& ctx, const std::string& state_dir, bool devices_only) {
    auto m = services::load_host(ctx.host, state_dir, devices_only);
    if (!m) return m;
    for (const auto& w : m->warnings)
        warn(ctx, w);
    return m;
}

iommu::NextBoot next_boot_of(const boot::BootState& bs) {
    return {boot::loader_id(bs.setup.loader),
            bs.configured_cmdline,
            bs.next_cmdline,
            bs.reboot_pending,
            bs.regenerate_pending,
            bs.regenerate_command,
            bs.reason,
            bs.running_known};
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
    (void)std::snprintf(cls, sizeof cls, "%04x", d.class_code); // fits: 4 digits
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

} // namespace vfioctl::cli
