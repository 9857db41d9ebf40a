#pragma once
// Host-level facts beyond PCI: kernel, CPU, firmware tables, modules, KVM,
// QEMU, processes holding device nodes, and which devices the host cannot
// lose (root filesystem, default route, console). All read through Host.

#include "host/host.hpp"
#include "host/virt.hpp"
#include "pci/address.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::host {

struct CpuInfo {
    std::string vendor; // "GenuineIntel", "AuthenticAMD", "" when unknown
    bool vmx = false;
    bool svm = false;
    bool hypervisor = false; // running as a guest
    // Physical address bits ("address sizes : 46 bits physical"); nullopt
    // when cpuinfo does not say.
    std::optional<int> phys_bits;
};

struct ModuleState {
    std::string name;       // "vfio_pci"
    bool available = false; // a .ko for the running kernel, or built in
    bool builtin = false;
    bool loaded = false; // in /proc/modules, or built in
};

struct KvmState {
    bool present = false; // /dev/kvm exists
    bool usable = false;  // ordinary guest kernels run under it
    std::string backend;  // "kvm_intel", "kvm_amd", "kvm_pvm", "" when unknown
    std::string reason;   // why not usable, in words
};

// A process with an open file descriptor on a device node vfioctl cares about.
struct Holder {
    int pid = 0;
    std::string comm;
    std::string node; // "/dev/nvidia0", "/dev/dri/renderD128", "/dev/vfio/42"
};

// Why the host cannot give a device away. Decisions switch on the kind;
// the text is rendered from the typed fields only for output.
enum class CriticalKind {
    root_filesystem, // the root filesystem lives on it
    default_route,   // a default route leaves through it
    console,         // a console framebuffer is on it
    boot_vga,        // the firmware's boot display
    unknown_root,    // a storage controller, and where / lives cannot be established
    unknown_route,   // a network controller, and the routing table cannot be read
};
// "root_filesystem", "default_route", "console", "boot_vga", "unknown_root", "unknown_route".
const char* critical_kind_id(CriticalKind k);
// Whether --force may take a device of this kind: never for the root
// filesystem, known or possible.
bool force_overrides(CriticalKind k);

struct CriticalUse {
    pci::PciAddress addr;
    CriticalKind kind = CriticalKind::unknown_root;
    // root_filesystem: the source ("/dev/vda", "overlay; its layer is probably
    // virtio tag hostroot"); default_route: the interface; console: the
    // framebuffer ("fb0"); unknown_*: what could not be read.
    std::string detail;
    // "root filesystem (/dev/vda)", "default route via eth0", ...
    std::string reason() const;
    bool operator==(const CriticalUse&) const = default;
};

// Why a device is busy now (overridable with --force).
enum class InUseKind { mount, interface_up_with_address, holder_process };
// "mount", "interface_up_with_address", "holder_process".
const char* in_use_kind_id(InUseKind k);

struct DeviceUse {
    pci::PciAddress addr;
    InUseKind kind = InUseKind::mount;
    std::string mountpoint;             // mount: "/boot"
    std::string source;                 // mount: "/dev/nvme0n1p1"
    std::string interface;              // interface_up_with_address: "eth1"
    std::vector<std::string> addresses; // interface_up_with_address
    int pid = 0;                        // holder_process
    std::string comm;                   // holder_process
    std::string node;                   // holder_process: "/dev/nvidia0"
    // "mounted /boot (/dev/nvme0n1p1)", "interface eth1 is up with address ...",
    // "pid 4242 (nvidia-persistenced) holds /dev/nvidia0".
    std::string what() const;
};

struct SystemFacts {
    std::string kernel_release;
    std::string cmdline;
    CpuInfo cpu;
    VirtFacts virt; // the hypervisor this runs under, if any
    bool acpi_dmar = false;
    bool acpi_ivrs = false;
    std::vector<std::string> iommu_units;              // /sys/class/iommu entries
    std::optional<bool> interrupt_remapping;           // from the Intel units' ecap, when exposed
    std::optional<bool> kernel_intel_iommu_default_on; // CONFIG_INTEL_IOMMU_DEFAULT_ON
    std::vector<ModuleState> vfio_modules;
    bool module_list = false; // /lib/modules/RELEASE/modules.dep was read
    bool dev_vfio = false;    // /dev/vfio/vfio
    KvmState kvm;
    std::optional<std::string> qemu_path;
    std::optional<std::string> qemu_version;
    std::vector<Holder> holders;
    std::vector<CriticalUse> critical;
    std::vector<DeviceUse> in_use;
    // Set, in words, when a safety fact could not be established: where /
    // lives (then every storage controller, block device and virtio
    // filesystem is critical as unknown_root),
    // which interface has the default route (every network controller is
    // unknown_route), or which devices share an IOMMU group.
    std::optional<std::string> root_unknown;
    std::optional<std::string> route_unknown;
    // The groups directory cannot be listed (read_system); a device's
    // iommu_group entry cannot be read (PciDevice::iommu_group_problem) or a
    // group's listing and the devices' links disagree (iommu::read_groups):
    // those two are joined in by cli::load_host.
    std::optional<std::string> groups_unreadable;
    std::vector<std::string> container_runtimes;      // "docker", "podman"
    bool container_gpu_support = false;               // nvidia-container-toolkit / nvidia-ctk
    std::map<std::string, std::string> nvidia_minors; // "/dev/nvidia0" -> "0000:8a:00.0"
    std::vector<std::string> warnings;
};

// One line of /proc/self/mountinfo.
struct MountRec {
    std::string root; // the part of the filesystem mounted here ("/" for all of it)
    std::string mountpoint;
    std::string fstype;
    std::string source;
    std::string majmin;
    std::string options; // superblock options
};

// Pure: the mounts in mountinfo text; lines it cannot read are skipped.
std::vector<MountRec> parse_mountinfo(std::string_view text);

// The interfaces with a default route, and, in words, why /proc/net/route
// says nothing sure about them (no routing table header, a line that is not
// a route): then every network controller may carry the default route.
struct DefaultRoutes {
    std::vector<std::string> ifaces;
    std::optional<std::string> problem;
};
// Pure: the default routes in /proc/net/route and /proc/net/ipv6_route text
// (an empty IPv4 table is a kernel with no IPv4 routes; a line of either
// that is not a route makes the answer unknown).
DefaultRoutes parse_default_routes(std::string_view route, std::string_view ipv6_route);

// The vfio modules vfioctl needs, in load order.
const std::vector<std::string>& vfio_module_names();

// The one KVM rule ('status', 'vm run'): /dev/kvm exists, a backend module
// other than kvm_pvm (PVM) provides it, and on the live host this user can
// open it read-write, as QEMU does. Never fails: reason says why not usable.
// cpu_virt false adds to a missing /dev/kvm that the CPU shows neither vmx
// nor svm.
KvmState read_kvm_state(const Tree& host, bool cpu_virt = true);

// Reads every fact; missing files become absent facts or warnings, never errors.
// With devices_only, only what decides whether devices may move (mounts,
// routes, console, holders, IOMMU, modules): no programs are run or looked up.
SystemFacts read_system(const Tree& host, bool devices_only = false);

// The addresses of each network interface, IPv6 link-local ones left out:
// from getifaddrs on the live host, from k_recorded_addresses (lines
// "IFACE ADDRESS", written by snapshot) on a recorded tree.
inline constexpr const char* k_recorded_addresses = "/.vfioctl/net-addresses";
std::map<std::string, std::vector<std::string>> interface_addresses(const Tree& host);

// Programs whose presence or version snapshot records.
const std::vector<std::string>& recorded_programs();

// CPU facts from /proc/cpuinfo text (first processor block). Pure.
CpuInfo parse_cpuinfo(std::string_view text);

} // namespace vfioctl::host
