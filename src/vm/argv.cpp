#include "vm/argv.hpp"

#include <algorithm>
#include <bit>
#include <fmt/format.h>
#include <map>

namespace vfioctl::vm {

namespace {

constexpr uint64_t GiB = 1ull << 30;
constexpr uint64_t default_hole64 = 32 * GiB; // QEMU q35's own
constexpr int default_phys_bits = 40;         // QEMU's for TCG and for KVM without host-phys-bits

uint64_t next_pow2(uint64_t v) {
    return v <= 1 ? 1 : std::bit_ceil(v);
}

} // namespace

std::string qemu_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        out += c;
        if (c == ',') out += ',';
    }
    return out;
}

std::vector<PassSlot> group_slots(const std::vector<const pci::PciDevice*>& devices) {
    std::map<pci::PciAddress, PassSlot> by_slot;
    std::vector<const pci::PciDevice*> sorted = devices;
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->addr < b->addr; });
    for (const auto* d : sorted) {
        pci::PciAddress key = d->addr;
        key.fn = 0;
        auto& slot = by_slot[key];
        bool dup = false;
        for (const auto& f : slot.functions)
            dup |= f.host == d->addr;
        if (dup) continue;
        slot.functions.push_back(
            {d->addr, d->vendor, d->device, d->class_code, d->bars, "vfio-pci"});
    }
    std::vector<PassSlot> out;
    for (auto& [k, s] : by_slot)
        out.push_back(std::move(s));
    return out;
}

std::string size_arg(uint64_t bytes) {
    for (const auto& [unit, shift] : {std::pair{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}})
        if (bytes >= (1ull << shift) && bytes % (1ull << shift) == 0)
            return std::to_string(bytes >> shift) + unit;
    return std::to_string(bytes);
}

MmioPlan plan_mmio(const std::vector<PassSlot>& slots, uint64_t memory_mib) {
    MmioPlan m;
    uint64_t largest = 0;
    for (const auto& s : slots)
        for (const auto& f : s.functions)
            for (const auto& b : f.bars)
                if (b.is_64bit && !b.is_io) {
                    m.bar_bytes += b.size;
                    largest = std::max(largest, b.size);
                }
    if (m.bar_bytes == 0) return m;
    const uint64_t window = 2 * next_pow2(m.bar_bytes);
    if (window > default_hole64) m.hole64_bytes = window;
    // q35 keeps at most 2 GiB of RAM below 4 GiB once RAM reaches 2.75 GiB;
    // the rest sits above 4 GiB and the 64-bit window starts after it,
    // aligned to 1 GiB.
    const uint64_t ram = memory_mib << 20;
    const uint64_t low = ram >= 0xb0000000ull ? 2 * GiB : ram;
    const uint64_t start = (4 * GiB + (ram - low) + GiB - 1) / GiB * GiB;
    const uint64_t end = start + std::max(window, default_hole64);
    const int bits = static_cast<int>(std::bit_width(end - 1));
    m.window_bytes = std::max(window, default_hole64);
    m.address_bits = bits;
    if (bits > default_phys_bits || largest >= 64 * GiB)
        m.phys_bits = std::max(bits, default_phys_bits);
    return m;
}

std::string memory_backend(const Profile& p, const LaunchSpec& spec) {
    const bool virtiofs = p.share_host_root && !spec.virtiofs_socket.empty();
    const PlacementPlan& pl = spec.placement;
    if (!virtiofs && pl.backend == MemoryBackend::plain) return {};
    const std::string size = ",id=mem,size=" + std::to_string(p.memory_mib) + "M";
    std::string o;
    if (virtiofs) {
        // vhost-user needs shared memory: a memfd, on huge pages when planned.
        o = "memory-backend-memfd" + size + ",share=on";
        if (pl.backend == MemoryBackend::file)
            o += ",hugetlb=on,hugetlbsize=" + size_arg(pl.page_kib << 10);
    } else if (pl.backend == MemoryBackend::file) {
        o = "memory-backend-file" + size + ",mem-path=" + qemu_escape(pl.mem_path);
    } else {
        o = "memory-backend-ram" + size;
    }
    if (pl.node) o += ",host-nodes=" + std::to_string(*pl.node) + ",policy=bind";
    if (pl.backend != MemoryBackend::plain) o += ",prealloc=on";
    return o;
}

std::vector<std::string> qemu_argv(const Profile& p, const LaunchSpec& spec) {
    std::vector<std::string> a{spec.qemu};
    auto add = [&a](std::initializer_list<std::string> xs) { a.insert(a.end(), xs); };
    if (!p.name.empty()) add({"-name", p.name});
    add({"-nodefaults", "-no-user-config", "-display", "none"});
    const bool virtiofs = p.share_host_root && !spec.virtiofs_socket.empty();
    const std::string backend = memory_backend(p, spec);
    add({"-machine", backend.empty() ? p.machine : p.machine + ",memory-backend=mem", "-accel",
         spec.kvm ? "kvm" : "tcg"});
    const MmioPlan mmio = plan_mmio(spec.slots, p.memory_mib);
    std::string cpu = spec.kvm ? "host" : "max";
    if (mmio.phys_bits)
        cpu += spec.kvm ? ",host-phys-bits=on" : ",phys-bits=" + std::to_string(mmio.phys_bits);
    add({"-cpu", cpu, "-m", std::to_string(p.memory_mib) + "M", "-smp", std::to_string(p.cpus)});
    if (!backend.empty()) add({"-object", backend});
    if (mmio.hole64_bytes)
        add({"-global", "q35-pcihost.pci-hole64-size=" + size_arg(mmio.hole64_bytes)});
    for (auto& f : firmware_argv(spec.firmware, mmio))
        a.push_back(std::move(f));
    if (spec.no_reboot) add({"-no-reboot"});
    if (spec.daemonize) add({"-daemonize"});
    if (!spec.pidfile.empty()) add({"-pidfile", spec.pidfile});
    if (!spec.qmp_socket.empty())
        add({"-qmp", "unix:" + qemu_escape(spec.qmp_socket) + ",server=on,wait=off"});
    for (size_t i = 0; i < spec.serials.size(); ++i) {
        const auto& s = spec.serials[i];
        const std::string id = "serial" + std::to_string(i);
        std::string c;
        switch (s.kind) {
        case SerialPort::file:
            c = "file,id=" + id + ",path=" + qemu_escape(s.path) + ",append=on";
            break;
        case SerialPort::socket:
            c = "socket,id=" + id + ",path=" + qemu_escape(s.path) + ",server=on,wait=off";
            if (!s.logfile.empty()) c += ",logfile=" + qemu_escape(s.logfile) + ",logappend=on";
            break;
        case SerialPort::stdio:
            c = "stdio,id=" + id + ",signal=off";
            break;
        case SerialPort::pipe:
            c = "pipe,id=" + id + ",path=" + qemu_escape(s.path);
            break;
        }
        add({"-chardev", c, "-serial", "chardev:" + id});
    }
    if (!p.boot.disk.empty()) {
        const bool qcow2 = p.boot.disk.size() > 6 && p.boot.disk.ends_with(".qcow2");
        add({"-drive", "file=" + qemu_escape(p.boot.disk) +
                           ",if=virtio,format=" + (qcow2 ? "qcow2" : "raw")});
    }
    if (!p.boot.kernel.empty()) {
        add({"-kernel", p.boot.kernel});
        const std::string& initrd =
            spec.initrd_override.empty() ? p.boot.initrd : spec.initrd_override;
        if (!initrd.empty()) add({"-initrd", initrd});
        const std::string& append =
            spec.append_override.empty() ? p.boot.append : spec.append_override;
        if (!append.empty()) add({"-append", append});
    }
    if (virtiofs)
        add({"-chardev", "socket,id=vfs,path=" + qemu_escape(spec.virtiofs_socket), "-device",
             "vhost-user-fs-pci,chardev=vfs,tag=hostroot"});
    else if (p.share_host_root)
        add({"-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
             "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"});
    if (p.ssh_port)
        add({"-netdev", "user,id=net0,hostfwd=tcp::" + std::to_string(*p.ssh_port) + "-:22",
             "-device", "virtio-net-pci,netdev=net0,romfile="});
    for (size_t i = 0; i < spec.slots.size(); ++i) {
        const std::string rp = "rp" + std::to_string(i);
        add({"-device", fmt::format("pcie-root-port,id={},bus=pcie.0,chassis={},addr={:x}.0", rp,
                                    i + 1, 0x10 + i)});
        const auto& fns = spec.slots[i].functions;
        for (size_t f = 0; f < fns.size(); ++f) {
            const auto& fn = fns[f];
            std::string d = fn.model;
            if (fn.model == "vfio-pci") d += ",host=" + fn.host.str();
            d += fmt::format(",id=hostdev{}{},bus={},addr=00.{}", i,
                             f ? "-" + std::to_string(f) : "", rp, f);
            if (f == 0 && fns.size() > 1) d += ",multifunction=on";
            add({"-device", d});
        }
    }
    a.insert(a.end(), p.extra_args.begin(), p.extra_args.end());
    return a;
}

} // namespace vfioctl::vm
