#pragma once
// Device health before a function goes to a VM: how it can be reset, how its
// PCIe link trained, what its 64-bit BARs add up to, whether the bridges
// above it enforce ACS, what AER logged and its power state. Read from
// sysfs and the bridges' config space through host::Tree. A fact that
// cannot be read is unknown (nullopt or an `unknown` enumerator), never the
// harmless value.

#include "pci/device.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::host {
class Tree;
}

namespace vfioctl::pci {

// The kernel's reset methods for the function (sysfs reset_method).
struct ResetMethods {
    // nullopt: no readable reset_method file (an older kernel, or unreadable).
    std::optional<std::vector<std::string>> methods; // "flr", "pm", "bus", ...
    // True when the kernel knows the function has no way to reset it: a GPU
    // that cannot be reset cannot be safely handed from one VM to the next.
    bool none() const { return methods && methods->empty(); }
};

// How the link's trained speed and width compare with what it can do.
enum class LinkState {
    unknown,  // a speed or width file is missing or unreadable
    full,     // running at its maximum
    degraded, // below the maximum in speed or width
};

// The PCIe link of a function, speeds in MT/s (16.0 GT/s is 16000).
struct PcieLink {
    std::optional<uint32_t> speed_mts;
    std::optional<uint32_t> max_speed_mts;
    std::optional<uint32_t> width;
    std::optional<uint32_t> max_width;
    // The upstream port's maximum, when it can be read: a Gen5 device in a
    // Gen4 slot is limited by the slot, which is no degradation.
    std::optional<uint32_t> port_max_speed_mts;
    std::optional<uint32_t> port_max_width;
    LinkState state = LinkState::unknown;
    bool speed_below = false; // trained speed below the reachable maximum
    bool width_below = false; // trained width below the reachable maximum
};

// ACS control bits that matter for isolation and peer-to-peer traffic.
struct AcsBits {
    bool source_validation = false;
    bool request_redirect = false;
    bool completion_redirect = false;
    bool upstream_forwarding = false;
};

// Whether a bridge has the ACS extended capability.
enum class AcsPresence {
    unknown, // its config space past 256 bytes cannot be read (not root)
    absent,
    present,
};

// The PCIe role of a bridge on the path, from its PCI Express capability.
enum class PortRole {
    unknown,
    root_port,
    upstream_port,
    downstream_port,
    other_bridge, // a PCIe-to-PCI bridge or another kind
};

// One bridge between a device and the root complex.
struct BridgeAcs {
    PciAddress addr;
    PortRole role = PortRole::unknown;
    AcsPresence presence = AcsPresence::unknown;
    AcsBits capable; // what the ACS capability register offers (present only)
    AcsBits enabled; // what the ACS control register enables (present only)
    // The kernel's test for isolation below a root or downstream port:
    // source validation, request and completion redirect and upstream
    // forwarding enabled. Upstream ports are not asked for it.
    bool needs_acs() const {
        return role == PortRole::root_port || role == PortRole::downstream_port;
    }
    // True when ACS is present and isolates; false when absent or missing a bit.
    bool isolates() const {
        return presence == AcsPresence::present && enabled.source_validation &&
               enabled.request_redirect && enabled.completion_redirect &&
               enabled.upstream_forwarding;
    }
    // Peer-to-peer requests or completions are redirected up to the root complex.
    bool redirects_p2p() const {
        return presence == AcsPresence::present &&
               (enabled.request_redirect || enabled.completion_redirect);
    }
};

// One non-zero AER counter ("RxErr", 12).
struct AerEntry {
    std::string name;
    uint64_t count = 0;
};

// One of the kernel's AER counter files.
struct AerCounters {
    std::optional<uint64_t> total; // nullopt: no readable file, or no numbers in it
    std::vector<AerEntry> nonzero; // the counters above zero, TOTAL_ lines left out
};

// The AER counters of a function (aer_dev_correctable, _nonfatal, _fatal).
struct AerErrors {
    AerCounters correctable;
    AerCounters nonfatal;
    AerCounters fatal;
    // nullopt when any of the three is unknown.
    std::optional<uint64_t> total() const;
};

// The function's power state (sysfs power_state).
enum class PowerState { unknown, d0, d1, d2, d3hot, d3cold };

// Everything health knows of one function.
struct DeviceHealth {
    PciAddress addr;
    ResetMethods reset;
    PcieLink link;
    // The total of the 64-bit prefetchable BARs; nullopt when the BARs were
    // not read (vfioctl reads them for GPUs) or could not be.
    std::optional<uint64_t> bar64_prefetchable_bytes;
    // The bridges from the device up to its root port, nearest first.
    std::vector<BridgeAcs> bridges;
    // False when a bridge on the way up is not in the inventory: the path's
    // ACS is then unknown past it.
    bool path_complete = true;
    AerErrors aer;
    std::optional<bool> d3cold_allowed;
    PowerState power = PowerState::unknown;
};

// How a device looks after vfio-pci let it go ('unbind').
enum class ReturnState {
    healthy,   // its driver bound, config space answers, no new AER errors
    unhealthy, // no driver where one was expected, new AER errors, or no reset method
    wedged,    // config space reads all ones or power_state says error: reboot the host
    unknown,   // none of the above, but something could not be read
};

struct ReturnHealth {
    PciAddress addr;
    std::optional<std::string> expected_driver; // the driver it was given back to
    std::optional<std::string> driver;          // what is bound now
    // Config space answers with a vendor ID other than all ones; nullopt
    // when it cannot be read.
    std::optional<bool> responds;
    bool power_error = false; // power_state reads "error"
    bool no_reset = false;    // reset_method is empty: the kernel could not reset it
    // AER errors logged since before; nullopt when a count is unknown.
    std::optional<uint64_t> new_aer_errors;
    ReturnState state = ReturnState::unknown;
};

// The AER counters of the function at a (aer_dev_*), unknown where unreadable.
AerErrors read_aer(const host::Tree& host, const PciAddress& a);
// Checks the function at a after it was given back to expected_driver
// (nullopt: to no driver), against its AER counters from before.
ReturnHealth check_return(const host::Tree& host, const PciAddress& a, const AerErrors& before,
                          const std::optional<std::string>& expected_driver);
const char* return_state_id(ReturnState s);

// The bridges read so far in one command: many devices share the bridges
// above them (a switch's ports), and each bridge's config space is read
// once.
using BridgeCache = std::map<PciAddress, BridgeAcs>;

// Reads d's health facts from host (sysfs attributes, the config space of
// each bridge above it, through cache when given); never fails: what
// cannot be read is unknown.
DeviceHealth read_health(const host::Tree& host, const Inventory& inv, const PciDevice& d,
                         BridgeCache* cache = nullptr);

// Pure parsers of the kernel's formats, for tests.
// "16.0 GT/s PCIe" → 16000; nullopt for "Unknown" or garbage.
std::optional<uint32_t> parse_link_speed(std::string_view text);
// An aer_dev_* file's "NAME COUNT" lines.
AerCounters parse_aer(std::string_view text);
// The ACS capability and PCIe port role of a bridge from its config bytes.
void parse_bridge_config(std::string_view config, BridgeAcs& out);
// The link's state from its speeds and widths (fills state and the *_below flags).
void assess_link(PcieLink& link);

// Stable words for JSON: "unknown", "full", "degraded"; "D0", "D3cold", ...
const char* link_state_id(LinkState s);
const char* acs_presence_id(AcsPresence p);
const char* port_role_id(PortRole r);
const char* power_state_id(PowerState p);

} // namespace vfioctl::pci
