#pragma once
// IOMMU groups as the kernel publishes them, and whether a group can be
// handed to vfio-pci as a whole.

#include "host/host.hpp"
#include "host/system.hpp"
#include "pci/device.hpp"

#include <optional>
#include <string>
#include <vector>

namespace vfioctl::iommu {

struct IommuGroup {
    int number = 0;
    std::string type;                     // "identity", "DMA", "DMA-FQ", "" when not exposed
    std::vector<pci::PciAddress> devices; // sorted
};

// Every group under /sys/kernel/iommu_groups, sorted numerically (numbers are
// sparse). Members are the union of the devices whose iommu_group links name
// the group and the ones its devices/ directory lists, so that a member that
// cannot be read stays in its group. Where the two views disagree (or a
// listing cannot be read), *disagreement, when given, says so in words: the
// kernel makes both together, so membership is unknown. No directory means
// no groups, not an error; garbage entries are skipped with a warning.
std::vector<IommuGroup> read_groups(const host::Tree& host, const pci::Inventory& inv,
                                    std::vector<std::string>& warnings,
                                    std::optional<std::string>* disagreement = nullptr);

// The role flags of one device within the host.
struct DeviceRole {
    bool bridge = false;
    bool gpu = false;
    bool gpu_companion = false;
    std::vector<host::CriticalUse> critical; // why the host cannot lose it; empty when it can
    std::vector<host::DeviceUse> in_use;     // mounted filesystems, up interfaces, holders
};

DeviceRole role_of(const pci::PciDevice& d, const pci::Inventory& inv,
                   const host::SystemFacts& facts);

// Whether a group can go to vfio-pci, seen from one target device in it (or
// from none, for the groups listing).
struct Viability {
    bool viable = false;                      // no member is host-critical, every member is known
    bool isolated = false;                    // every endpoint is the target's own function(s)
    std::vector<pci::PciAddress> must_go_too; // other endpoints that move with the target
    std::vector<host::CriticalUse> critical;  // members the host cannot lose
    std::vector<pci::PciAddress> unknown;     // listed in the group but not enumerated
};

// Pure: decides from the group's members, their roles and the target. A
// group without a target is isolated when all its endpoints share one slot.
Viability assess(const IommuGroup& g, const std::optional<pci::PciAddress>& target,
                 const pci::Inventory& inv, const host::SystemFacts& facts);

} // namespace vfioctl::iommu
