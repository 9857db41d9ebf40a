#include "host/snapshot.hpp"

#include "host/numa.hpp"
#include "host/system.hpp"
#include "host/virt.hpp"
#include "util/strings.hpp"

#include <fstream>
#include <set>
#include <system_error>

namespace vfioctl::host {

namespace {

namespace fs = std::filesystem;

// Attributes of a PCI function that vfioctl or libpci read.
const char* const k_pci_attrs[] = {"vendor",
                                   "device",
                                   "class",
                                   "subsystem_vendor",
                                   "subsystem_device",
                                   "revision",
                                   "irq",
                                   "numa_node",
                                   "enable",
                                   "boot_vga",
                                   "driver_override",
                                   "resource",
                                   "config",
                                   "modalias",
                                   "local_cpulist",
                                   "label",
                                   "current_link_speed",
                                   "current_link_width",
                                   "max_link_speed",
                                   "max_link_width",
                                   "reset_method",
                                   "d3cold_allowed",
                                   "power_state",
                                   "aer_dev_correctable",
                                   "aer_dev_nonfatal",
                                   "aer_dev_fatal"};

class Recorder {
  public:
    Recorder(const Tree& src, fs::path dest) : m_src(src), m_dest(std::move(dest)) {}

    SnapshotStats stats;

    // Creates the directory for host path p.
    void dir(const std::string& p) {
        std::error_code ec;
        if (fs::create_directories(out(p), ec)) ++stats.dirs;
    }

    // Copies a regular file's bytes (up to max), when it can be read.
    bool file(const std::string& p, size_t max = 4u << 20) {
        auto data = m_src.read(p);
        if (!data) {
            if (m_src.exists(p)) stats.skipped.push_back(p + ": " + data.error().describe());
            return false;
        }
        if (data->size() > max) data->resize(max);
        return write(p, *data);
    }

    // Writes content as the file at host path p.
    bool write(const std::string& p, const std::string& content) {
        dir(parent(p));
        std::ofstream f(out(p), std::ios::binary | std::ios::trunc);
        f << content;
        if (!f) {
            stats.skipped.push_back(p + ": cannot write the copy");
            return false;
        }
        ++stats.files;
        stats.bytes += content.size();
        return true;
    }

    // An empty file standing for something whose name is the fact (a device
    // node, a firmware table, a program).
    void marker(const std::string& p) { write(p, ""); }

    // Copies a symlink as a link with the same target text; returns the host
    // path it resolves to, when it does.
    std::optional<std::string> link(const std::string& p) {
        auto t = m_src.read_link(p);
        if (!t) return std::nullopt;
        dir(parent(p));
        std::error_code ec;
        fs::create_symlink(*t, out(p), ec);
        if (!ec) ++stats.links;
        auto r = m_src.resolve(p);
        return r ? std::optional(*r) : std::nullopt;
    }

    // Entry names of a directory on the source, empty when unreadable.
    std::vector<std::string> list(const std::string& p) { return m_src.list(p).value_or({}); }

  private:
    static std::string parent(const std::string& p) { return p.substr(0, p.rfind('/')); }
    fs::path out(const std::string& p) const { return m_dest / fs::path(p).relative_path(); }

    const Tree& m_src;
    fs::path m_dest;
};

// /lib, /bin, /sbin and /lib64 as links into /usr where the host has them
// so (Debian 12's merged /usr), before anything is recorded under them:
// else /lib/modprobe.d and /usr/lib/modprobe.d would be two directories in
// the snapshot, where the host has one. Only a relative target inside /usr
// is copied: the snapshot's own writes go through these links.
void record_usr_merge(const Tree& src, Recorder& r) {
    for (const char* p : {"/lib", "/bin", "/sbin", "/lib64"}) {
        auto t = src.read_link(p);
        if (!t || !util::starts_with(*t, "usr/") || t->find("..") != std::string::npos) continue;
        r.dir("/" + *t); // not dangling: what is recorded under it goes there
        r.link(p);
    }
}

void record_pci(const Tree& src, Recorder& r) {
    for (const auto& bdf : r.list("/sys/bus/pci/devices")) {
        auto target = r.link("/sys/bus/pci/devices/" + bdf);
        if (!target) continue;
        r.dir(*target);
        for (const char* a : k_pci_attrs)
            if (src.exists(*target + "/" + a)) r.file(*target + "/" + a);
        if (auto drv = r.link(*target + "/driver")) r.dir(*drv);
        r.link(*target + "/iommu_group");
        for (const auto& n : r.list(*target + "/drm"))
            if (util::starts_with(n, "card") || util::starts_with(n, "renderD"))
                r.dir(*target + "/drm/" + n);
    }
    r.dir("/sys/bus/pci/drivers");
    for (const auto& d : r.list("/sys/bus/pci/drivers"))
        r.dir("/sys/bus/pci/drivers/" + d);
}

void record_iommu(Recorder& r) {
    r.dir("/sys/kernel/iommu_groups");
    for (const auto& g : r.list("/sys/kernel/iommu_groups")) {
        const std::string base = "/sys/kernel/iommu_groups/" + g;
        r.dir(base + "/devices");
        r.file(base + "/type");
        r.file(base + "/reserved_regions");
        for (const auto& d : r.list(base + "/devices"))
            r.link(base + "/devices/" + d);
    }
    // Which hypervisor this runs under (no serial numbers or UUIDs).
    for (const char* a : k_dmi_attrs)
        r.file(std::string("/sys/class/dmi/id/") + a);
    r.file("/sys/hypervisor/type");
    r.dir("/sys/class/iommu");
    for (const auto& u : r.list("/sys/class/iommu")) {
        auto t = r.link("/sys/class/iommu/" + u);
        if (!t) continue;
        r.dir(*t);
        for (const char* a : {"intel-iommu/cap", "intel-iommu/ecap", "intel-iommu/version",
                              "amd-iommu/cap", "amd-iommu/features"})
            r.file(*t + "/" + a);
    }
    for (const auto& t : r.list("/sys/firmware/acpi/tables"))
        if (t != "data" && t != "dynamic") r.marker("/sys/firmware/acpi/tables/" + t);
}

void record_modules(const Tree& src, Recorder& r, const std::string& release) {
    for (const auto& m : r.list("/sys/module")) {
        if (!(util::starts_with(m, "vfio") || util::starts_with(m, "kvm") ||
              util::starts_with(m, "nvidia") || m == "nouveau" || m == "amdgpu" || m == "i915" ||
              m == "irqbypass"))
            continue;
        r.dir("/sys/module/" + m);
        r.file("/sys/module/" + m + "/initstate");
    }
    r.file("/proc/modules");
    const std::string dir = "/lib/modules/" + release;
    // Only the lines vfioctl asks about: the whole lists are megabytes.
    for (const char* list : {"/modules.dep", "/modules.builtin"}) {
        auto text = src.read(dir + list);
        if (!text) continue;
        std::string kept;
        for (const auto& line : util::split(*text, '\n'))
            if (line.find("vfio") != std::string::npos || line.find("kvm") != std::string::npos ||
                line.find("irqbypass") != std::string::npos)
                kept += line + "\n";
        r.write(dir + list, kept);
    }
    if (auto cfg = src.read("/boot/config-" + release)) {
        std::string kept;
        for (const auto& line : util::split(*cfg, '\n'))
            if (line.find("IOMMU") != std::string::npos || line.find("VFIO") != std::string::npos)
                kept += line + "\n";
        r.write("/boot/config-" + release, kept);
    }
}

void record_block_and_net(const Tree& src, Recorder& r) {
    auto block_target = [&](const std::optional<std::string>& t) {
        if (!t) return;
        r.dir(*t);
        for (const auto& s : r.list(*t + "/slaves"))
            r.dir(*t + "/slaves/" + s);
        std::string disk = t->substr(0, t->rfind('/'));
        for (const auto& s : r.list(disk + "/slaves"))
            r.dir(disk + "/slaves/" + s);
    };
    for (const auto& b : r.list("/sys/dev/block"))
        block_target(r.link("/sys/dev/block/" + b));
    for (const auto& b : r.list("/sys/class/block"))
        block_target(r.link("/sys/class/block/" + b));
    for (const auto& i : r.list("/sys/class/net")) {
        auto t = r.link("/sys/class/net/" + i);
        if (!t) continue;
        r.dir(*t);
        r.file(*t + "/operstate");
        r.file(*t + "/flags");
        r.link(*t + "/device");
        for (const auto& m : r.list(*t + "/brif"))
            r.dir(*t + "/brif/" + m);
        for (const auto& e : r.list(*t))
            if (util::starts_with(e, "lower_")) r.link(*t + "/" + e);
    }
    std::string addresses;
    for (const auto& [iface, addrs] : interface_addresses(src))
        for (const auto& a : addrs)
            addresses += iface + " " + a + "\n";
    r.write(k_recorded_addresses, addresses);
    for (const auto& v : r.list("/sys/bus/virtio/devices")) {
        auto t = r.link("/sys/bus/virtio/devices/" + v);
        if (t) r.file(*t + "/mount_tag");
    }
    for (const auto& n : r.list("/sys/fs/virtiofs")) {
        r.file("/sys/fs/virtiofs/" + n + "/tag");
        r.link("/sys/fs/virtiofs/" + n + "/device");
    }
    for (const auto& fb : r.list("/sys/class/graphics")) {
        if (!util::starts_with(fb, "fb")) continue;
        if (auto t = r.link("/sys/class/graphics/" + fb)) {
            r.dir(*t);
            r.link(*t + "/device");
        }
    }
}

void record_proc(const Tree& src, Recorder& r) {
    // boot_id: status names the boot, and the journal's entries are judged
    // against it (this boot's or an earlier one's).
    for (const char* p : {"/proc/cmdline", "/proc/cpuinfo", "/proc/sys/kernel/osrelease",
                          "/proc/sys/kernel/random/boot_id", "/proc/self/mountinfo",
                          "/proc/net/route", "/proc/net/ipv6_route"})
        r.file(p);
    for (const auto& g : r.list("/proc/driver/nvidia/gpus"))
        r.file("/proc/driver/nvidia/gpus/" + g + "/information");
    // Holders: only descriptors on the device nodes vfioctl cares about, and
    // the command name; nothing else of the process.
    for (const auto& pid : r.list("/proc")) {
        if (!util::parse_dec(pid)) continue;
        const std::string fddir = "/proc/" + pid + "/fd";
        bool any = false;
        for (const auto& fd : r.list(fddir)) {
            auto t = src.read_link(fddir + "/" + fd);
            if (!t) continue;
            if (util::starts_with(*t, "/dev/nvidia") || util::starts_with(*t, "/dev/dri/") ||
                util::starts_with(*t, "/dev/vfio/")) {
                r.link(fddir + "/" + fd);
                any = true;
            }
        }
        if (any) r.file("/proc/" + pid + "/comm");
    }
}

void record_dev(const Tree& src, Recorder& r) {
    if (src.exists("/dev/kvm")) r.marker("/dev/kvm");
    for (const auto& v : r.list("/dev/vfio"))
        r.marker("/dev/vfio/" + v);
    for (const auto& d : r.list("/dev/dri"))
        r.marker("/dev/dri/" + d);
    for (const auto& d : r.list("/dev"))
        if (util::starts_with(d, "nvidia")) r.marker("/dev/" + d);
}

void record_boot_config(Recorder& r) {
    r.file("/etc/default/grub");
    for (const auto& f : r.list("/etc/default/grub.d"))
        if (f.size() > 4 && f.substr(f.size() - 4) == ".cfg") r.file("/etc/default/grub.d/" + f);
    r.file("/etc/kernel/cmdline");
    for (const auto& f : r.list("/boot/loader/entries"))
        r.file("/boot/loader/entries/" + f);
}

// Persistent bindings: vfioctl's and driverctl's entries, every modprobe.d
// directory (vfio-pci ids=, softdep), and whether the boot hooks that apply
// vfioctl's entries are installed and enabled ('bind --persistent' checks).
void record_persistent(Recorder& r) {
    for (const char* dir : {"/etc/vfioctl/bind.d", "/etc/driverctl.d"})
        for (const auto& f : r.list(dir))
            r.file(std::string(dir) + "/" + f);
    for (const char* dir : {"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
                            "/lib/modprobe.d", "/usr/lib/modprobe.d"})
        for (const auto& f : r.list(dir))
            if (f.size() > 5 && f.substr(f.size() - 5) == ".conf")
                r.file(std::string(dir) + "/" + f);
    for (const char* p :
         {"/etc/udev/rules.d/61-vfioctl.rules", "/lib/udev/rules.d/61-vfioctl.rules",
          "/usr/lib/udev/rules.d/61-vfioctl.rules", "/lib/systemd/system/vfioctl-bind.service",
          "/usr/lib/systemd/system/vfioctl-bind.service"})
        r.file(p);
    for (const char* p : {"/etc/systemd/system/vfioctl-bind.service",
                          "/etc/systemd/system/sysinit.target.wants/vfioctl-bind.service"})
        if (!r.link(p)) r.file(p);
}

// NUMA nodes (cpulist, meminfo, huge pages per size), the host's huge
// pages, /proc/meminfo and the locked-memory limit of the process that
// records: what 'status' and 'vm start' place a VM by.
void record_numa(const Tree& src, Recorder& r) {
    for (const auto& p : numa_files(src)) {
        if (p == "/proc/self/mountinfo") continue; // record_proc has it
        if (p == "/.vfioctl/memlock" && src.is_live()) {
            if (auto text = memlock_record(live_memlock()); !text.empty()) r.write(p, text);
            continue;
        }
        r.file(p);
    }
}

void record_programs(const Tree& src, Recorder& r) {
    for (const auto& prog : recorded_programs()) {
        auto path = src.find_program(prog);
        if (!path) continue;
        r.marker(*path);
        if (prog == "qemu-system-x86_64")
            if (auto v = src.program_version(prog))
                r.write("/.vfioctl/versions/" + prog, *v + "\n");
    }
}

} // namespace

Result<SnapshotStats> snapshot(const Tree& src, const fs::path& dest,
                               const std::function<void(const std::string&)>& progress) {
    std::error_code ec;
    if (fs::exists(dest, ec)) {
        if (!fs::is_directory(dest, ec))
            return Error{"snapshot target exists and is not a directory", dest.string(),
                         "give a new directory name", 0};
        if (!fs::is_empty(dest, ec))
            return Error{"snapshot target is not empty", dest.string(),
                         "give a new or empty directory; nothing was written", 0};
    }
    fs::create_directories(dest, ec);
    if (ec) return system_error("cannot create the snapshot directory", dest.string(), ec.value());
    auto say = [&](const std::string& s) {
        if (progress) progress(s);
    };
    Recorder r(src, dest);
    const std::string release = src.attr("/proc/sys/kernel/osrelease").value_or("");
    record_usr_merge(src, r);
    say("PCI devices");
    record_pci(src, r);
    say("IOMMU groups, units and firmware tables");
    record_iommu(r);
    say("modules");
    record_modules(src, r, release);
    say("block devices, network interfaces, framebuffers");
    record_block_and_net(src, r);
    say("kernel, CPU, mounts, routes, device holders");
    record_proc(src, r);
    record_dev(src, r);
    say("NUMA nodes, huge pages, locked-memory limit");
    record_numa(src, r);
    say("boot configuration and programs");
    record_boot_config(r);
    say("persistent bindings");
    record_persistent(r);
    record_programs(src, r);
    r.write("/.vfioctl/snapshot",
            "vfioctl snapshot\nversion " VFIOCTL_VERSION "\nsource " + src.root().string() + "\n");
    return r.stats;
}

} // namespace vfioctl::host
