#include "host/virt.hpp"

#include "host/tree.hpp"
#include "util/strings.hpp"

namespace vfioctl::host {

const char* const k_dmi_attrs[6] = {"sys_vendor",  "product_name", "product_version",
                                    "bios_vendor", "bios_version", "chassis_asset_tag"};

const char* hypervisor_id(Hypervisor h) {
    switch (h) {
    case Hypervisor::none:
        return "none";
    case Hypervisor::unknown:
        return "unknown";
    case Hypervisor::qemu_kvm:
        return "qemu_kvm";
    case Hypervisor::vmware:
        return "vmware";
    case Hypervisor::hyperv:
        return "hyperv";
    case Hypervisor::azure:
        return "azure";
    case Hypervisor::xen:
        return "xen";
    case Hypervisor::virtualbox:
        return "virtualbox";
    case Hypervisor::aws_ec2:
        return "aws_ec2";
    case Hypervisor::gce:
        return "gce";
    case Hypervisor::openstack:
        return "openstack";
    }
    return "unknown";
}

const char* hypervisor_name(Hypervisor h) {
    switch (h) {
    case Hypervisor::none:
        return "no hypervisor";
    case Hypervisor::unknown:
        return "an unnamed hypervisor";
    case Hypervisor::qemu_kvm:
        return "QEMU/KVM";
    case Hypervisor::vmware:
        return "VMware";
    case Hypervisor::hyperv:
        return "Microsoft Hyper-V";
    case Hypervisor::azure:
        return "Microsoft Azure";
    case Hypervisor::xen:
        return "Xen";
    case Hypervisor::virtualbox:
        return "VirtualBox";
    case Hypervisor::aws_ec2:
        return "Amazon EC2";
    case Hypervisor::gce:
        return "Google Compute Engine";
    case Hypervisor::openstack:
        return "OpenStack Nova";
    }
    return "an unnamed hypervisor";
}

ViommuOffer viommu_offer(Hypervisor h) {
    switch (h) {
    case Hypervisor::hyperv:
    case Hypervisor::azure:
    case Hypervisor::xen:
    case Hypervisor::aws_ec2:
    case Hypervisor::gce:
        return ViommuOffer::not_offered;
    case Hypervisor::none:
    case Hypervisor::unknown:
    case Hypervisor::qemu_kvm:
    case Hypervisor::vmware:
    case Hypervisor::virtualbox:
    case Hypervisor::openstack:
        return ViommuOffer::configurable;
    }
    return ViommuOffer::configurable;
}

namespace {

bool has(const std::optional<std::string>& s, std::string_view needle) {
    return s && util::to_lower(*s).find(needle) != std::string::npos;
}

} // namespace

Hypervisor identify_hypervisor(const VirtFacts& f) {
    // The CPU's flag says "guest"; DMI alone does not (an EC2 bare-metal
    // instance says "Amazon EC2" too).
    if (!f.cpu_flag) return Hypervisor::none;
    // Clouds first: they run on KVM, Xen or Hyper-V and say so in DMI too.
    if (has(f.sys_vendor, "amazon ec2") || has(f.bios_version, "amazon") ||
        has(f.bios_vendor, "amazon"))
        return Hypervisor::aws_ec2;
    if (has(f.sys_vendor, "google") || has(f.product_name, "google compute engine"))
        return Hypervisor::gce;
    if (has(f.product_name, "openstack") || has(f.sys_vendor, "openstack"))
        return Hypervisor::openstack;
    if (has(f.sys_vendor, "microsoft corporation") && has(f.product_name, "virtual machine"))
        // Azure's fixed chassis asset tag.
        return f.chassis_asset_tag &&
                       util::trim(*f.chassis_asset_tag) == "7783-7084-3265-9085-8269-3286-77"
                   ? Hypervisor::azure
                   : Hypervisor::hyperv;
    if (has(f.sys_vendor, "vmware")) return Hypervisor::vmware;
    if (has(f.sys_vendor, "innotek") || has(f.product_name, "virtualbox"))
        return Hypervisor::virtualbox;
    if (has(f.sys_vendor, "xen") || has(f.xen_type, "xen")) return Hypervisor::xen;
    if (has(f.sys_vendor, "qemu") || has(f.product_name, "kvm") || has(f.bios_vendor, "seabios"))
        return Hypervisor::qemu_kvm;
    return Hypervisor::unknown;
}

VirtFacts read_virt(const Tree& host, bool cpu_flag) {
    VirtFacts f;
    f.cpu_flag = cpu_flag;
    auto dmi = [&](const char* name) -> std::optional<std::string> {
        auto v = host.attr(std::string("/sys/class/dmi/id/") + name);
        if (!v || v->empty()) return std::nullopt;
        return util::printable(*v);
    };
    f.sys_vendor = dmi("sys_vendor");
    f.product_name = dmi("product_name");
    f.product_version = dmi("product_version");
    f.bios_vendor = dmi("bios_vendor");
    f.bios_version = dmi("bios_version");
    f.chassis_asset_tag = dmi("chassis_asset_tag");
    if (auto t = host.attr("/sys/hypervisor/type"); t && !t->empty())
        f.xen_type = util::printable(*t);
    f.hypervisor = identify_hypervisor(f);
    return f;
}

} // namespace vfioctl::host
