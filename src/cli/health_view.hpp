#pragma once
// Device health as status and groups show it: the facts of pci/health.hpp,
// whether the BARs fit the 64-bit window a VM would get (vm::plan_mmio), and
// what each problem means, as JSON and text lines.

#include "cli/model.hpp"
#include "pci/health.hpp"

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace vfioctl::cli {

// The device's 64-bit BARs against the window vfioctl gives a VM with the
// default profile's memory.
struct BarFit {
    uint64_t bar_bytes = 0;    // what plan_mmio sums: every 64-bit memory BAR
    uint64_t window_bytes = 0; // the guest's 64-bit PCI window
    int address_bits = 0;      // guest physical address bits that reach its end
    std::optional<int> host_phys_bits;
    // nullopt when the host's address width is unknown.
    std::optional<bool> fits;
};

// One device's health, with what it means.
struct HealthView {
    pci::DeviceHealth facts;
    std::optional<BarFit> fit; // nullopt when the BARs are unknown or none are 64-bit
    // Problems, each in words; what should be looked at before a VM gets it.
    std::vector<std::string> problems;
};

using HealthViews = std::map<pci::PciAddress, HealthView>;

// Reads d's health and judges it; never fails. A cache shared by the calls
// of one command reads each bridge once.
HealthView health_view(const host::Tree& host, const HostModel& m, const pci::PciDevice& d,
                       pci::BridgeCache* cache = nullptr);
// The views of every GPU in m.
HealthViews gpu_health(const host::Tree& host, const HostModel& m);

nlohmann::json health_json(const HealthView& v);
// Indented lines for 'status': link, reset, BARs, ACS, AER, power, problems.
void print_health(std::ostream& o, const HealthView& v, const std::string& indent);

// The JSON of a device's state after 'unbind' gave it back.
nlohmann::json return_json(const pci::ReturnHealth& r);
// Empty when healthy; else a "warning: ..." or "note: ..." line per device,
// saying when a GPU looks wedged and needs a host reboot.
std::string return_text(const pci::ReturnHealth& r);

} // namespace vfioctl::cli
