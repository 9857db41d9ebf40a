#pragma once
// Moving devices (whole IOMMU groups) to vfio-pci and giving them back to
// exactly the driver they had, journaled so that a crash at any step is
// recoverable.

#include "host/host.hpp"
#include "host/system.hpp"
#include "iommu/groups.hpp"
#include "pci/device.hpp"
#include "vfio/journal.hpp"
#include "vfio/settled.hpp"

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vfioctl::vfio {

// One device of a bind plan.
struct PlanItem {
    pci::PciAddress addr;
    std::string label;                 // device line for people
    std::optional<std::string> driver; // current driver
    int group = -1;
    bool target = false;  // named by the user (not just a group mate)
    bool already = false; // on vfio-pci already: nothing to do
};

// Why one device may not move. kind is the id of the critical or in-use
// kind it comes from (host::critical_kind_id, host::in_use_kind_id), or
// bind's own: "no_iommu_group", "unreadable_member", "unknown_group".
struct Obstacle {
    pci::PciAddress addr;
    std::string kind;
    std::string text; // for people: "01:00.0 is host-critical: root filesystem (/dev/vda)"
};
// The texts of obstacles, in order.
std::vector<std::string> texts(const std::vector<Obstacle>& obstacles);

// What bind will do, and why it may not.
struct BindPlan {
    std::vector<PlanItem> items; // every endpoint of every group involved
    std::vector<int> groups;
    std::vector<Obstacle>
        refusals; // never overridable (root filesystem known or possible, no group, unknown member)
    std::vector<Obstacle>
        blockers; // overridable with --force (in use, default route known or possible, console)
    bool nothing_to_do() const;
};

// Pure: the plan for moving targets (and their groups) to vfio-pci.
BindPlan plan_bind(const std::vector<const pci::PciDevice*>& targets, const pci::Inventory& inv,
                   const host::SystemFacts& facts, const std::vector<iommu::IommuGroup>& groups);

struct ChangeOptions {
    std::string state_dir = "/var/lib/vfioctl";
    int unbind_timeout_ms = 10000;
    int lock_timeout_ms = 5000;
    int node_timeout_ms = 2000; // wait for /dev/vfio/N after the probe
    std::function<void(const std::string&)> progress;
};

// What happened to one device.
struct DeviceChange {
    std::string address;
    std::optional<std::string> from;
    std::optional<std::string> to;
    bool changed = false;
    double ms = 0; // wall time of the kernel writes for it
    std::string note;
};

// Executes a plan (refusals must be empty; blockers empty or forced):
// loads vfio-pci, then for each device journal first, driver_override,
// bounded unbind, drivers_probe, verify the driver link and /dev/vfio/N.
// Any failure gives back the devices already moved, then returns the Error.
Result<std::vector<DeviceChange>> execute_bind(const host::Host& host, const BindPlan& plan,
                                               const ChangeOptions& opt);

// Gives journaled devices back their original driver and clears their
// entries. addresses empty means every journaled device. Devices on
// vfio-pci without an entry get their override cleared and a re-probe.
// Refuses a device whose /dev/vfio/N is in busy_groups unless force.
Result<std::vector<DeviceChange>> give_back(const host::Host& host,
                                            const std::vector<pci::PciAddress>& addresses,
                                            const std::map<int, std::string>& busy_groups,
                                            bool force, const ChangeOptions& opt);

// What recover does with the journal.
enum class RecoverMode {
    // Settles the entries of an earlier boot, then restores the rest.
    full,
    // At boot (vfioctl-recover.service): settles the entries of an earlier
    // boot only and touches no device; the rest are left for 'recover'.
    at_boot,
};

// What recover did.
struct Recovery {
    BootId boot;                       // the running boot; unknown when unreadable
    std::string boot_unknown_why;      // why it is unknown ("" when known)
    std::optional<Settlement> settled; // entries of an earlier boot, dropped without a write
    std::vector<DeviceChange> changes; // devices restored (full mode only)
    std::vector<JournalEntry> left;    // at_boot: entries not settled (unknown or this boot)
};

// Under the state-dir lock: first settles every entry whose boot is known
// and differs from the running boot, when that is known (the reboot undid
// it: no sysfs write, the entry goes to the settled record, then leaves the
// journal). An entry of an unknown boot is never settled. Then, in full
// mode, brings every other journaled device, whatever phase it was left
// in, back to its original driver and clears the journal. Safe at any time.
Result<Recovery> recover(const host::Host& host, const ChangeOptions& opt,
                         RecoverMode mode = RecoverMode::full);

} // namespace vfioctl::vfio
