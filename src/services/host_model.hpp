#pragma once
// The host as the diagnosis and the bind planner see it: devices, system
// facts, IOMMU groups and the bind journal, read once per command.

#include "host/host.hpp"
#include "host/system.hpp"
#include "iommu/groups.hpp"
#include "pci/device.hpp"
#include "vfio/journal.hpp"

#include <string>
#include <vector>

namespace vfioctl::services {

struct HostModel {
    host::SystemFacts facts;
    pci::Inventory inv;
    std::vector<iommu::IommuGroup> groups;
    // Unreadable parts of the host, in the order they were found.
    std::vector<std::string> warnings;
    // Devices vfioctl moved, from the bind journal in the state dir.
    std::vector<vfio::JournalEntry> journal;
};

// Reads everything the diagnosis needs, and the bind journal in state_dir
// (a host path); fails only when the root holds no PCI tree at all. What
// cannot be read becomes a warning. devices_only skips what only status
// shows (programs and their versions).
Result<HostModel> load_host(const host::Host& host, const std::string& state_dir,
                            bool devices_only = false);

// Targets as users type them: a BDF, a vendor:device ID ("10de:2336", "10de 2336").
// Returns every matching device; an Error for malformed text or no match.
Result<std::vector<const pci::PciDevice*>> match_devices(const pci::Inventory& inv,
                                                         const std::string& target);

} // namespace vfioctl::services
