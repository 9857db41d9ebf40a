#pragma once
// Loading the host once per command, and the device views that status and
// groups share (JSON objects and text lines).

#include "cli/context.hpp"
#include "host/system.hpp"
#include "iommu/groups.hpp"
#include "pci/device.hpp"
#include "vfio/journal.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vfioctl::cli {

struct HostModel {
    host::SystemFacts facts;
    pci::Inventory inv;
    std::vector<iommu::IommuGroup> groups;
    std::vector<std::string> warnings;
    std::vector<vfio::JournalEntry> journal; // devices vfioctl moved, from the default state dir
};

// Reads everything the diagnosis needs; fails only when the root holds no
// PCI tree at all. Prints warnings for unreadable parts unless quiet.
// devices_only skips what only status shows (programs and their versions).
Result<HostModel> load_host(Context& ctx, bool devices_only = false);

nlohmann::json device_json(const pci::PciDevice& d, const iommu::DeviceRole& role);
std::vector<std::string> role_flags(const iommu::DeviceRole& role);
// "8a:00.0 [10de:2336] 3D controller: NVIDIA Corporation GH100 [H100 PCIe] (nvidia)".
std::string device_line(const pci::PciDevice& d);

// Targets as users type them: a BDF, a vendor:device ID ("10de:2336", "10de 2336").
// Returns every matching device; an Error for malformed text or no match.
Result<std::vector<const pci::PciDevice*>> match_devices(const pci::Inventory& inv,
                                                         const std::string& target);

} // namespace vfioctl::cli
