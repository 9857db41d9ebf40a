#pragma once
// The QEMU command line as a pure function of a profile and the devices it
// passes through: no shell, no I/O, golden-tested and checked by the real
// QEMU (-S, then QMP query-pci).

#include "pci/device.hpp"
#include "vm/firmware.hpp"
#include "vm/placement.hpp"
#include "vm/profile.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace vfioctl::vm {

// One host function given to the guest.
struct PassFunction {
    pci::PciAddress host; // its host address
    uint16_t vendor = 0;
    uint16_t device = 0;
    uint16_t class_code = 0; // 0x0302 for a compute GPU
    std::vector<pci::Bar> bars;
    // The QEMU device that presents it: "vfio-pci" (with host=), or an
    // emulated model ("e1000e") for topology tests on hosts without one.
    std::string model = "vfio-pci";
};

// The functions of one host slot (a GPU and its audio or USB companions),
// function 0 first; the guest sees them as one multifunction slot behind
// its own pcie-root-port.
struct PassSlot {
    std::vector<PassFunction> functions;
};

// A value for a QEMU option list: its commas doubled (QEMU reads ",," as one).
std::string qemu_escape(const std::string& s);

// Groups devices into slots: the functions that share a host slot travel
// together, ordered by function number, slots in address order. Pure.
std::vector<PassSlot> group_slots(const std::vector<const pci::PciDevice*>& devices);

// A serial port, in the guest's ttyS order.
struct SerialPort {
    enum Kind { file, socket, stdio, pipe } kind = file;
    // file: the file (appended to); socket: the unix socket; pipe: the
    // FIFOs PATH.in (to the guest) and PATH.out (from it), made beforehand
    std::string path;
    std::string logfile; // socket: also appended to this file
};

// Everything the argv needs beyond the profile, resolved by the caller.
struct LaunchSpec {
    std::string qemu = "qemu-system-x86_64";
    bool kvm = false; // the accelerator decided (auto resolved)
    std::vector<PassSlot> slots;
    std::string qmp_socket; // "" for none
    std::string pidfile;    // "" for none
    bool daemonize = false;
    std::vector<SerialPort> serials;
    std::string initrd_override; // vm run: the initramfs it generated
    std::string append_override; // vm run: the kernel command line it built
    bool no_reboot = false;      // a guest reboot or panic ends QEMU
    // With share_host_root: "" shares / over virtio-9p (QEMU itself, read-only);
    // else the vhost-user socket of the virtiofsd that serves it (virtiofs;
    // guest RAM then becomes a shared memfd, which vhost-user needs).
    std::string virtiofs_socket;
    FirmwareLaunch firmware; // SeaBIOS unless 'uefi' was prepared (vm/firmware.hpp)
    // Where the guest's RAM lives (plan_placement); the default is QEMU's own.
    PlacementPlan placement;
};

// The 64-bit PCI window and CPU address width the passed-through BARs need.
struct MmioPlan {
    uint64_t bar_bytes = 0;    // sum of the 64-bit memory BARs
    uint64_t hole64_bytes = 0; // q35-pcihost.pci-hole64-size to set; 0 keeps QEMU's 32 GiB
    int phys_bits = 0;         // guest physical address bits to ask for; 0 keeps the default
    uint64_t window_bytes = 0; // the 64-bit window the guest gets (QEMU's 32 GiB when not set)
    int address_bits = 0;      // address bits that reach the window's end; 0 without 64-bit BARs
};

// Pure: sizes the 64-bit window from the BARs (twice the next power of two
// of their sum, so that each BAR fits aligned) and the physical address
// bits that reach its end above the guest's RAM.
MmioPlan plan_mmio(const std::vector<PassSlot>& slots, uint64_t memory_mib);

// Pure: the full argv, argv[0] being spec.qemu.
std::vector<std::string> qemu_argv(const Profile& p, const LaunchSpec& spec);

// Pure: the -object for the guest RAM's backend (id "mem"), "" when QEMU's
// default serves: a shared memfd for virtiofs, a hugetlbfs file or
// anonymous RAM bound to a node for a placement.
std::string memory_backend(const Profile& p, const LaunchSpec& spec);

// "4G", "512M", "64K" or bytes: the shortest exact form QEMU reads.
std::string size_arg(uint64_t bytes);

} // namespace vfioctl::vm
