#pragma once
// Whether vfioctl runs inside a virtual machine, and under which hypervisor:
// the CPU's hypervisor flag, the firmware's DMI strings and
// /sys/hypervisor/type. Inside a VM, a missing IOMMU is the hypervisor's
// missing virtual IOMMU, not a firmware setting.

#include <optional>
#include <string>
#include <string_view>

namespace vfioctl::host {

class Tree;

// What runs this machine. none: no sign of a hypervisor (bare metal);
// unknown: a guest (the CPU says so) whose hypervisor nothing names.
enum class Hypervisor {
    none,
    unknown,
    qemu_kvm,
    vmware,
    hyperv,
    azure,
    xen,
    virtualbox,
    aws_ec2,
    gce,
    openstack,
};

// What a hypervisor offers its guests for passing a device on.
enum class ViommuOffer {
    configurable, // the VM's settings can give it a virtual IOMMU (the steps say how)
    not_offered,  // the platform gives its guests none: passthrough from this VM cannot work
};

struct VirtFacts {
    bool cpu_flag = false; // the CPU's "hypervisor" flag
    // DMI strings (/sys/class/dmi/id), printable; nullopt when absent.
    std::optional<std::string> sys_vendor;
    std::optional<std::string> product_name;
    std::optional<std::string> product_version;
    std::optional<std::string> bios_vendor;
    std::optional<std::string> bios_version;
    std::optional<std::string> chassis_asset_tag;
    std::optional<std::string> xen_type; // /sys/hypervisor/type
    Hypervisor hypervisor = Hypervisor::none;

    bool guest() const { return hypervisor != Hypervisor::none; }
};

// "none", "unknown", "qemu_kvm", ...
const char* hypervisor_id(Hypervisor h);
// "QEMU/KVM", "VMware", "Amazon EC2", ...; "an unnamed hypervisor" for unknown.
const char* hypervisor_name(Hypervisor h);
ViommuOffer viommu_offer(Hypervisor h);

// The hypervisor the facts name (reads the other fields, not hypervisor):
// none without the CPU's flag, unknown when no string names it. Pure.
Hypervisor identify_hypervisor(const VirtFacts& f);

// The DMI files read (under /sys/class/dmi/id), for snapshot.
extern const char* const k_dmi_attrs[6];

// Reads the facts through host and identifies the hypervisor.
VirtFacts read_virt(const Tree& host, bool cpu_flag);

} // namespace vfioctl::host
