#pragma once
// A VM profile as a libvirt domain XML ('vfioctl vm export'): the same
// machine 'vm start' would run, in the form virsh define and virt-manager
// read. Pure: the caller resolves the devices, placement and firmware on
// the host; nothing here reads or writes a file.

#include "vm/argv.hpp"
#include "vm/firmware.hpp"
#include "vm/placement.hpp"
#include "vm/profile.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::vm {

// The libvirt namespace for QEMU arguments that have no libvirt form.
inline constexpr const char* k_libvirt_qemu_ns = "http://libvirt.org/schemas/domain/qemu/1.0";

// Everything the domain needs beyond the profile, resolved by the caller.
struct LibvirtSpec {
    bool kvm = false;            // <domain type='kvm'>, else 'qemu' (TCG)
    std::string emulator;        // qemu-system-x86_64's host path; "" leaves it to libvirt
    std::vector<PassSlot> slots; // each behind its own pcie-root-port, as 'vm start' does
    PlacementPlan placement;     // numatune, huge pages, vCPU pinning
    // firmware = "uefi": the OVMF code image and the variable-store
    // template (host paths); libvirt makes the VM's own store from it.
    OvmfFiles ovmf;
    std::vector<std::string> notes; // said in XML comments at the top (what "auto" resolved to)
};

// The domain XML and what did not carry over as it is.
struct LibvirtDomain {
    std::string xml;
    // Profile settings libvirt has no form for (extra_args passed as
    // <qemu:commandline>, an ssh port forward), in words.
    std::vector<std::string> warnings;
};

// Pure: the domain for profile p with what spec resolved.
LibvirtDomain libvirt_domain(const Profile& p, const LibvirtSpec& spec);

// Pure: text for an XML attribute or element: & < > " ' as entities,
// control characters other than tab and newline (which XML 1.0 cannot
// carry) as U+FFFD.
std::string xml_escape(std::string_view s);

} // namespace vfioctl::vm
