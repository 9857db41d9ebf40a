#pragma once
// PciDevice: one PCI function as vfioctl sees it, read through libpci (IDs,
// class, names from pci.ids, capabilities, BARs) and the Host (driver,
// IOMMU group, sysfs topology). pci/ sits below host/: it names host::Tree
// and nothing else of it.

#include "pci/address.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vfioctl::host {
class Tree;
}

namespace vfioctl::pci {

// A memory or I/O region of a function.
struct Bar {
    int index = 0;
    uint64_t size = 0;
    bool is_64bit = false;
    bool prefetchable = false;
    bool is_io = false;
};

struct PciDevice {
    PciAddress addr;
    uint16_t vendor = 0;
    uint16_t device = 0;
    uint16_t subsys_vendor = 0;
    uint16_t subsys_device = 0;
    uint16_t class_code = 0; // base class << 8 | subclass (0x0302 for a 3D controller)
    uint8_t prog_if = 0;
    uint8_t revision = 0;
    std::string vendor_name;
    std::string device_name;
    std::string class_name;
    std::string subsys_name;
    std::optional<std::string> driver;          // bound driver, nullopt when none
    std::optional<std::string> driver_override; // nullopt when unset ("(null)")
    std::optional<int> iommu_group;
    // Set, in words, when the device's iommu_group entry exists but is no
    // readable link: its group, and so the host's groups, are unknown.
    std::optional<std::string> iommu_group_problem;
    bool boot_vga = false;
    bool bridge = false;
    std::vector<std::string> capabilities; // "PCIe", "MSI-X", "ACS", ...
    bool has_acs = false;
    std::vector<Bar> bars;
    std::vector<std::string> drm_nodes; // "card0", "renderD128": its /dev/dri nodes
    std::string sysfs_path;             // canonical host path under /sys/devices
    std::optional<PciAddress> parent;   // upstream bridge, nullopt at the root complex

    PciId id() const { return {vendor, device}; }
    // Display controllers of any kind: VGA, XGA, 3D, other (class 0x03xx).
    bool is_gpu() const { return (class_code >> 8) == 0x03; }
    // "vendor device" names, as lspci prints them.
    std::string name() const { return vendor_name + " " + device_name; }
};

// Every function on a host, sorted by address.
struct Inventory {
    std::vector<PciDevice> devices;
    std::vector<std::string> warnings; // unreadable or garbage attributes, in words

    const PciDevice* find(const PciAddress& a) const;
    // Devices whose vendor:device equals id.
    std::vector<const PciDevice*> find(const PciId& id) const;
    std::vector<const PciDevice*> gpus() const;
    // Functions in the same slot as a GPU that are not display devices
    // (HDMI audio, USB-C controller): they travel with the GPU.
    bool is_gpu_companion(const PciDevice& d) const;
};

// Reads every PCI function of the host through libpci (sysfs.path under the
// host's root). Fails when the host has no /sys/bus/pci tree.
Result<Inventory> enumerate(const host::Tree& host);

} // namespace vfioctl::pci
