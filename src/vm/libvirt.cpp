#include "vm/libvirt.hpp"

#include "host/numa.hpp"

#include <fmt/format.h>

namespace vfioctl::vm {

std::string xml_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        case '\t':
        case '\n':
        case '\r':
            // As references they survive attribute-value normalization.
            out += fmt::format("&#{};", static_cast<int>(c));
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                out += "\xef\xbf\xbd"; // U+FFFD: XML 1.0 cannot carry it at all
            else
                out += c;
        }
    }
    return out;
}

namespace {

// An XML comment: its text as it is (markup means nothing there), but
// "--" may not occur in it, nor a final '-', nor control characters.
std::string comment(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '-' && !out.empty() && out.back() == '-') out += ' ';
        if (c == '\n' || c == '\t')
            out += ' ';
        else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            out += "\xef\xbf\xbd";
        else
            out += c;
    }
    if (!out.empty() && out.back() == '-') out += ' ';
    return "<!-- " + out + " -->";
}

// A PCI address in libvirt's form: domain='0x0000' bus='0x8a' slot='0x00' function='0x0'.
std::string pci_attrs(unsigned domain, unsigned bus, unsigned slot, unsigned function) {
    return fmt::format("domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{:x}'", domain,
                       bus, slot, function);
}

// The guest slot of root port i on pcie.0: the one 'vm start' gives it.
unsigned root_port_slot(size_t i) {
    return static_cast<unsigned>(0x10 + i);
}

} // namespace

LibvirtDomain libvirt_domain(const Profile& p, const LibvirtSpec& spec) {
    LibvirtDomain d;
    const MmioPlan mmio = plan_mmio(spec.slots, p.memory_mib);
    const PlacementPlan& pl = spec.placement;

    // QEMU arguments libvirt has no element for.
    std::vector<std::string> qemu_args;
    const uint64_t aperture_mib =
        p.firmware.kind == Firmware::uefi ? ovmf_aperture_mib(mmio) : uint64_t{0};
    if (aperture_mib)
        qemu_args.insert(qemu_args.end(), {"-fw_cfg", "name=opt/ovmf/X-PciMmio64Mb,string=" +
                                                          std::to_string(aperture_mib)});
    if (!p.extra_args.empty()) {
        qemu_args.insert(qemu_args.end(), p.extra_args.begin(), p.extra_args.end());
        std::string list;
        for (const auto& a : p.extra_args)
            list += (list.empty() ? "" : " ") + a;
        d.warnings.push_back("extra_args have no libvirt form; passed as <qemu:commandline>: " +
                             list);
    }
    if (p.ssh_port)
        d.warnings.push_back("ssh_port " + std::to_string(*p.ssh_port) +
                             " is not forwarded: libvirt's user network (SLIRP) takes no port "
                             "forward; give the guest a libvirt network instead");
    if (p.share_host_root && p.share == ShareMode::virtiofs)
        d.warnings.push_back("share = \"virtiofs\" exported as 9p, as 'vm start' shares /");

    std::string x;
    auto line = [&x](int depth, const std::string& s) {
        x.append(static_cast<size_t>(depth) * 2, ' ');
        x += s;
        x += '\n';
    };
    auto element = [&line](int depth, const std::string& name, const std::string& text,
                           const std::string& attrs = {}) {
        line(depth, "<" + name + (attrs.empty() ? "" : " " + attrs) + ">" + xml_escape(text) +
                        "</" + name + ">");
    };

    line(0,
         fmt::format("<domain type='{}'{}>", spec.kvm ? "kvm" : "qemu",
                     qemu_args.empty() ? "" : fmt::format(" xmlns:qemu='{}'", k_libvirt_qemu_ns)));
    line(1, comment("vfioctl vm export " + p.name +
                    (p.source.empty() ? "" : " (profile " + p.source + ")")));
    for (const auto& n : spec.notes)
        line(1, comment(n));
    element(1, "name", p.name);
    const std::string kib = std::to_string(p.memory_mib * 1024);
    element(1, "memory", kib, "unit='KiB'");
    element(1, "currentMemory", kib, "unit='KiB'");
    if (pl.backend == MemoryBackend::file) {
        line(1, "<memoryBacking>");
        if (!pl.mem_path.empty())
            line(2, comment("vm start maps " + pl.mem_path +
                            "; libvirt uses the hugetlbfs mount of that page size itself"));
        line(2, "<hugepages>");
        line(3, fmt::format("<page size='{}' unit='KiB'/>", pl.page_kib));
        line(2, "</hugepages>");
        line(2, "<allocation mode='immediate'/>");
        line(1, "</memoryBacking>");
    }
    const std::string cpuset =
        pl.pin_cpus.empty() ? ""
                            : " cpuset='" + xml_escape(host::format_cpulist(pl.pin_cpus)) + "'";
    line(1, fmt::format("<vcpu placement='static'{}>{}</vcpu>", cpuset, p.cpus));
    if (pl.node) {
        line(1, "<numatune>");
        line(2, fmt::format("<memory mode='strict' nodeset='{}'/>", *pl.node));
        line(1, "</numatune>");
    }

    line(1, "<os>");
    element(2, "type", "hvm", "arch='x86_64' machine='" + xml_escape(p.machine) + "'");
    if (p.firmware.kind == Firmware::uefi) {
        element(2, "loader", spec.ovmf.code, "readonly='yes' type='pflash'");
        line(2, "<nvram template='" + xml_escape(spec.ovmf.vars_template) + "'/>");
    }
    if (!p.boot.kernel.empty()) {
        element(2, "kernel", p.boot.kernel);
        if (!p.boot.initrd.empty()) element(2, "initrd", p.boot.initrd);
        if (!p.boot.append.empty()) element(2, "cmdline", p.boot.append);
    } else if (!p.boot.disk.empty()) {
        line(2, "<boot dev='hd'/>");
    }
    line(1, "</os>");
    line(1, "<features>");
    line(2, "<acpi/>");
    line(2, "<apic/>");
    line(1, "</features>");
    // As 'vm start': the host's CPU under KVM (its physical address bits
    // when the BARs need them), QEMU's "max" under TCG.
    if (spec.kvm) {
        if (mmio.phys_bits) {
            line(1, "<cpu mode='host-passthrough' check='none'>");
            line(2, "<maxphysaddr mode='passthrough'/>");
            line(1, "</cpu>");
        } else {
            line(1, "<cpu mode='host-passthrough' check='none'/>");
        }
    } else if (mmio.phys_bits) {
        line(1, "<cpu mode='maximum' check='none'>");
        line(2, fmt::format("<maxphysaddr mode='emulate' bits='{}'/>", mmio.phys_bits));
        line(1, "</cpu>");
    } else {
        line(1, "<cpu mode='maximum' check='none'/>");
    }
    element(1, "on_poweroff", "destroy");
    element(1, "on_reboot", "restart");
    element(1, "on_crash", "destroy");

    line(1, "<devices>");
    if (!spec.emulator.empty()) element(2, "emulator", spec.emulator);
    if (mmio.hole64_bytes) {
        line(2, "<controller type='pci' index='0' model='pcie-root'>");
        line(3, fmt::format("<pcihole64 unit='KiB'>{}</pcihole64>", mmio.hole64_bytes >> 10));
        line(2, "</controller>");
    } else {
        line(2, "<controller type='pci' index='0' model='pcie-root'/>");
    }
    // No USB controller, as 'vm start' (-nodefaults) has none: libvirt
    // would add one, on a root port of its own, ahead of the hostdevs' ports.
    line(2, "<controller type='usb' index='0' model='none'/>");
    for (size_t i = 0; i < spec.slots.size(); ++i) {
        line(2, fmt::format("<controller type='pci' index='{}' model='pcie-root-port'>", i + 1));
        line(3, "<model name='pcie-root-port'/>");
        line(3, fmt::format("<target chassis='{}'/>", i + 1));
        line(3, "<address type='pci' " + pci_attrs(0, 0, root_port_slot(i), 0) + "/>");
        line(2, "</controller>");
    }
    if (!p.boot.disk.empty()) {
        const bool qcow2 = p.boot.disk.size() > 6 && p.boot.disk.ends_with(".qcow2");
        line(2, "<disk type='file' device='disk'>");
        line(3, fmt::format("<driver name='qemu' type='{}'/>", qcow2 ? "qcow2" : "raw"));
        line(3, "<source file='" + xml_escape(p.boot.disk) + "'/>");
        line(3, "<target dev='vda' bus='virtio'/>");
        line(2, "</disk>");
    }
    if (p.share_host_root) {
        line(2, "<filesystem type='mount' accessmode='squash' multidevs='remap'>");
        line(3, "<driver type='path'/>");
        line(3, "<source dir='/'/>");
        line(3, "<target dir='hostroot'/>");
        line(3, "<readonly/>");
        line(2, "</filesystem>");
    }
    if (p.ssh_port) {
        line(2, "<interface type='user'>");
        line(3, "<model type='virtio'/>");
        line(2, "</interface>");
    }
    line(2, "<serial type='pty'>");
    if (!p.console_log.empty())
        line(3, "<log file='" + xml_escape(p.console_log) + "' append='on'/>");
    line(3, "<target type='isa-serial' port='0'/>");
    line(2, "</serial>");
    line(2, "<console type='pty'>");
    line(3, "<target type='serial' port='0'/>");
    line(2, "</console>");
    // Each host slot behind its own root port (bus i+1), its functions
    // together at the guest's slot 0, as 'vm start' places them.
    for (size_t i = 0; i < spec.slots.size(); ++i) {
        const auto& fns = spec.slots[i].functions;
        for (size_t f = 0; f < fns.size(); ++f) {
            const auto& h = fns[f].host;
            line(2, "<hostdev mode='subsystem' type='pci' managed='yes'>");
            line(3, "<driver name='vfio'/>");
            line(3, "<source>");
            line(4, "<address " + pci_attrs(h.domain, h.bus, h.dev, h.fn) + "/>");
            line(3, "</source>");
            line(3, "<address type='pci' " +
                        pci_attrs(0, static_cast<unsigned>(i + 1), 0, static_cast<unsigned>(f)) +
                        (f == 0 && fns.size() > 1 ? " multifunction='on'" : "") + "/>");
            line(2, "</hostdev>");
        }
    }
    line(2, "<memballoon model='none'/>");
    line(1, "</devices>");
    if (!qemu_args.empty()) {
        if (aperture_mib)
            line(1, comment(fmt::format("OVMF's 64-bit PCI aperture: {} MiB for the BARs' window",
                                        aperture_mib)));
        line(1, "<qemu:commandline>");
        for (const auto& a : qemu_args)
            line(2, "<qemu:arg value='" + xml_escape(a) + "'/>");
        line(1, "</qemu:commandline>");
    }
    line(0, "</domain>");
    d.xml = std::move(x);
    return d;
}

} // namespace vfioctl::vm
