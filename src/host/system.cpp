#include "host/system.hpp"

#include "host/unique_fd.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <fcntl.h>
#include <filesystem>
#include <ifaddrs.h>
#include <map>
#include <net/if.h>
#include <netinet/in.h>
#include <set>
#include <unistd.h>

namespace vfioctl::host {

namespace {

// The last path component that is a full PCI address: the device a sysfs
// path (a block device, a net device) hangs off.
std::optional<pci::PciAddress> pci_owner(const std::string& sysfs_path) {
    std::optional<pci::PciAddress> found;
    for (const auto& part : util::split(sysfs_path, '/')) {
        if (part.size() != 12) continue;
        if (auto a = pci::PciAddress::parse(part)) found = *a;
    }
    return found;
}

// PCI devices behind a block device, following dm/md "slaves".
void block_owners(const Tree& host, const std::string& sysblock, std::set<pci::PciAddress>& out,
                  int depth = 0) {
    if (depth > 8) return;
    auto path = host.resolve(sysblock);
    if (!path) return;
    if (auto a = pci_owner(*path)) {
        out.insert(*a);
        return;
    }
    // A partition's slaves live on its parent disk; dm and md list theirs.
    std::string dir = *path;
    for (int i = 0; i < 2; ++i) {
        if (auto slaves = host.list(dir + "/slaves")) {
            for (const auto& s : *slaves)
                block_owners(host, "/sys/class/block/" + s, out, depth + 1);
            return;
        }
        dir = dir.substr(0, dir.rfind('/'));
    }
}

// PCI devices behind a network interface, following bridges and bonds.
void net_owners(const Tree& host, const std::string& iface, std::set<pci::PciAddress>& out,
                int depth = 0) {
    if (depth > 8) return;
    const std::string base = "/sys/class/net/" + iface;
    if (auto dev = host.resolve(base + "/device")) {
        if (auto a = pci_owner(*dev)) out.insert(*a);
        return;
    }
    if (auto members = host.list(base + "/brif"))
        for (const auto& m : *members)
            net_owners(host, m, out, depth + 1);
    if (auto entries = host.list(base))
        for (const auto& e : *entries)
            if (util::starts_with(e, "lower_")) net_owners(host, e.substr(6), out, depth + 1);
}

// The interfaces default routes leave through. problem is set, in words,
// when /proc/net/route cannot be read or is not a routing table: then
// nothing here says which interface carries the default route.
std::vector<std::string> default_route_ifaces(const Tree& host,
                                              std::optional<std::string>& problem) {
    auto v4 = host.read("/proc/net/route");
    auto v6 = host.read("/proc/net/ipv6_route");
    DefaultRoutes r = parse_default_routes(v4 ? std::string_view(*v4) : std::string_view(),
                                           v6 ? std::string_view(*v6) : std::string_view());
    problem = r.problem;
    if (!v4) problem = "cannot read /proc/net/route (" + v4.error().describe() + ")";
    return r.ifaces;
}

// "\040" style escapes in mountinfo fields.
std::string unescape_mount(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\') {
            int v = 0;
            bool ok = true;
            for (size_t k = 1; k <= 3; ++k) {
                if (i + k >= s.size() || s[i + k] < '0' || s[i + k] > '7') {
                    ok = false;
                    break;
                }
                v = v * 8 + (s[i + k] - '0');
            }
            if (ok) {
                out += static_cast<char>(v);
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

} // namespace

std::vector<MountRec> parse_mountinfo(std::string_view text) {
    std::vector<MountRec> out;
    for (const auto& line : util::split(text, '\n')) {
        auto fields = util::split_ws(line);
        if (fields.size() < 10) continue;
        auto dash = std::find(fields.begin(), fields.end(), "-");
        if (dash == fields.end() || dash + 2 >= fields.end()) continue;
        MountRec m;
        m.majmin = fields[2];
        m.root = unescape_mount(fields[3]);
        m.mountpoint = unescape_mount(fields[4]);
        m.fstype = *(dash + 1);
        m.source = unescape_mount(*(dash + 2));
        if (dash + 3 < fields.end()) m.options = *(dash + 3);
        out.push_back(std::move(m));
    }
    return out;
}

DefaultRoutes parse_default_routes(std::string_view route, std::string_view ipv6_route) {
    DefaultRoutes out;
    std::set<std::string> ifaces;
    // A kernel with no IPv4 main table (no address ever configured)
    // prints nothing at all, not even the header (fib_route_seq_start
    // returns NULL): an empty file is "no IPv4 routes", a fact.
    auto lines = util::split(route, '\n');
    auto head = lines.empty() ? std::vector<std::string>{} : util::split_ws(lines[0]);
    if (!route.empty() && (head.size() < 8 || head[0] != "Iface" || head[1] != "Destination"))
        out.problem = "/proc/net/route has no routing table header";
    for (size_t i = 1; i < lines.size() && !out.problem; ++i) {
        auto f = util::split_ws(lines[i]);
        if (f.empty()) continue;
        if (f.size() < 8 || f[1].size() != 8 || f[7].size() != 8 || !util::parse_hex(f[1]) ||
            !util::parse_hex(f[7])) {
            out.problem = "line " + std::to_string(i + 1) + " of /proc/net/route is not a route";
            break;
        }
        if (f[1] == "00000000" && f[7] == "00000000") ifaces.insert(f[0]);
    }
    auto v6 = util::split(ipv6_route, '\n');
    for (size_t i = 0; i < v6.size() && !out.problem; ++i) {
        auto f = util::split_ws(v6[i]);
        if (f.empty()) continue;
        if (f.size() < 10 || f[0].size() != 32 ||
            !std::all_of(f[0].begin(), f[0].end(),
                         [](unsigned char c) { return std::isxdigit(c) != 0; })) {
            out.problem =
                "line " + std::to_string(i + 1) + " of /proc/net/ipv6_route is not a route";
            break;
        }
        if (f[0] == std::string(32, '0') && f[1] == "00" && f[9] != "lo") ifaces.insert(f[9]);
    }
    out.ifaces.assign(ifaces.begin(), ifaces.end());
    return out;
}

namespace {

// The PCI device behind a virtio filesystem's tag (9p mount_tag, virtiofs tag).
void tag_owners(const Tree& host, const std::string& tag, std::set<pci::PciAddress>& out) {
    if (auto devs = host.list("/sys/bus/virtio/devices"))
        for (const auto& d : *devs)
            if (host.attr("/sys/bus/virtio/devices/" + d + "/mount_tag").value_or("") == tag)
                if (auto p = host.resolve("/sys/bus/virtio/devices/" + d))
                    if (auto a = pci_owner(*p)) out.insert(*a);
    if (auto fss = host.list("/sys/fs/virtiofs"))
        for (const auto& n : *fss)
            if (host.attr("/sys/fs/virtiofs/" + n + "/tag").value_or("") == tag)
                if (auto p = host.resolve("/sys/fs/virtiofs/" + n + "/device"))
                    if (auto a = pci_owner(*p)) out.insert(*a);
}

// Every virtio filesystem tag the host has, for roots whose layers are hidden.
std::vector<std::string> virtio_tags(const Tree& host) {
    std::vector<std::string> tags;
    if (auto devs = host.list("/sys/bus/virtio/devices"))
        for (const auto& d : *devs)
            if (auto t = host.attr("/sys/bus/virtio/devices/" + d + "/mount_tag"))
                tags.push_back(*t);
    if (auto fss = host.list("/sys/fs/virtiofs"))
        for (const auto& n : *fss)
            if (auto t = host.attr("/sys/fs/virtiofs/" + n + "/tag")) tags.push_back(*t);
    return tags;
}

const MountRec* mount_holding(const std::vector<MountRec>& mounts, const std::string& path) {
    const MountRec* best = nullptr;
    for (const auto& m : mounts) {
        const std::string& mp = m.mountpoint;
        bool under =
            path == mp || (util::starts_with(path, mp) && (mp == "/" || path[mp.size()] == '/'));
        if (under && (!best || mp.size() > best->mountpoint.size())) best = &m;
    }
    return best;
}

// The PCI devices a mount lives on: block devices, virtio filesystem tags,
// and the layers of an overlay.
void mount_owners(const Tree& host, const std::vector<MountRec>& mounts, const MountRec& m,
                  std::set<pci::PciAddress>& out, int depth = 0) {
    if (depth > 4) return;
    if (!util::starts_with(m.majmin, "0:")) block_owners(host, "/sys/dev/block/" + m.majmin, out);
    if (out.empty() && util::starts_with(m.source, "/dev/"))
        block_owners(host, "/sys/class/block/" + m.source.substr(m.source.rfind('/') + 1), out);
    if (m.fstype == "9p" || m.fstype == "virtiofs") tag_owners(host, m.source, out);
    if (m.fstype == "overlay") {
        for (const auto& opt : util::split(m.options, ',')) {
            std::string dirs;
            if (util::starts_with(opt, "lowerdir=") || util::starts_with(opt, "upperdir="))
                dirs = opt.substr(9);
            for (const auto& dir : util::split(dirs, ':')) {
                if (dir.empty()) continue;
                const MountRec* layer = mount_holding(mounts, dir);
                if (layer && layer != &m && layer->mountpoint != m.mountpoint)
                    mount_owners(host, mounts, *layer, out, depth + 1);
            }
        }
    }
}

// Filesystems that live in memory: a root on one of them is on no device.
bool in_memory(const std::string& fstype) {
    return fstype == "tmpfs" || fstype == "ramfs" || fstype == "rootfs";
}

// Returns, in words, why the root filesystem's device cannot be
// established; nullopt when it was (or when / lives in memory).
std::optional<std::string> read_mounts(const Tree& host, SystemFacts& f) {
    auto r = host.read("/proc/self/mountinfo");
    if (!r) return "cannot read /proc/self/mountinfo (" + r.error().describe() + ")";
    const auto mounts = parse_mountinfo(*r);
    std::set<std::pair<pci::PciAddress, std::string>> seen;
    std::set<std::string> visible_tags;
    bool root_found = false;
    const MountRec* root = nullptr;
    for (const auto& m : mounts) {
        // A tag seen only through bind mounts of subdirectories may still be
        // the hidden root's layer; only a whole mount accounts for it.
        if ((m.fstype == "9p" || m.fstype == "virtiofs") && m.root == "/")
            visible_tags.insert(m.source);
        std::set<pci::PciAddress> owners;
        mount_owners(host, mounts, m, owners);
        if (m.mountpoint == "/") root = &m;
        for (const auto& a : owners) {
            if (m.mountpoint == "/") {
                root_found = true;
                f.critical.push_back({a, CriticalKind::root_filesystem, m.source});
            } else if (seen.insert({a, m.mountpoint}).second) {
                DeviceUse u;
                u.addr = a;
                u.kind = InUseKind::mount;
                u.mountpoint = m.mountpoint;
                u.source = m.source;
                f.in_use.push_back(std::move(u));
            }
        }
    }
    // A root overlay whose layers are mounted outside this process's view
    // (a chroot, a container): the virtio filesystems not mounted in view
    // are the candidates, and refusing them is the safe side.
    if (root && !root_found && root->fstype == "overlay") {
        for (const auto& tag : virtio_tags(host)) {
            if (visible_tags.count(tag)) continue;
            std::set<pci::PciAddress> owners;
            tag_owners(host, tag, owners);
            for (const auto& a : owners) {
                root_found = true;
                f.critical.push_back({a, CriticalKind::root_filesystem,
                                      "overlay; its layer is probably virtio tag " + tag});
            }
        }
    }
    if (root_found) return std::nullopt;
    if (mounts.empty())
        return r->empty() ? std::string("/proc/self/mountinfo is empty")
                          : std::string("/proc/self/mountinfo holds no line that can be parsed");
    if (!root) return std::string("/proc/self/mountinfo has no line for / that can be parsed");
    if (in_memory(root->fstype)) return std::nullopt;
    return "/ is " + root->fstype + " on " + root->source +
           ", which cannot be traced to a PCI device";
}

} // namespace

std::map<std::string, std::vector<std::string>> interface_addresses(const Tree& host) {
    std::map<std::string, std::vector<std::string>> out;
    if (!host.is_live()) {
        for (const auto& line : util::split(host.read(k_recorded_addresses).value_or(""), '\n')) {
            auto words = util::split_ws(line);
            if (words.size() == 2) out[words[0]].push_back(words[1]);
        }
        return out;
    }
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return out;
    for (ifaddrs* a = list; a; a = a->ifa_next) {
        if (!a->ifa_addr || !a->ifa_name) continue;
        char text[INET6_ADDRSTRLEN] = {};
        if (a->ifa_addr->sa_family == AF_INET) {
            ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr, text,
                        sizeof text);
        } else if (a->ifa_addr->sa_family == AF_INET6) {
            const auto* in6 = &reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr;
            if (IN6_IS_ADDR_LINKLOCAL(in6)) continue;
            ::inet_ntop(AF_INET6, in6, text, sizeof text);
        } else {
            continue;
        }
        out[a->ifa_name].push_back(text);
    }
    ::freeifaddrs(list);
    return out;
}

namespace {

// Returns, in words, why the default route's interfaces cannot be
// established; nullopt when they were.
std::optional<std::string> read_network(const Tree& host, SystemFacts& f) {
    std::optional<std::string> problem;
    for (const auto& iface : default_route_ifaces(host, problem)) {
        std::set<pci::PciAddress> owners;
        net_owners(host, iface, owners);
        for (const auto& a : owners)
            f.critical.push_back({a, CriticalKind::default_route, iface});
    }
    // In use: administratively up (IFF_UP) with an address; an interface
    // that is up with no address (or only an IPv6 link-local one) carries
    // nothing. Without the flags (an old recording), operstate stands in.
    const auto addresses = interface_addresses(host);
    if (auto ifaces = host.list("/sys/class/net")) {
        for (const auto& i : *ifaces) {
            const std::string dir = "/sys/class/net/" + i;
            bool up;
            if (auto flags = host.attr(dir + "/flags"); flags && util::parse_hex(*flags))
                up = (*util::parse_hex(*flags) & IFF_UP) != 0;
            else
                up = host.attr(dir + "/operstate").value_or("") == "up";
            auto it = addresses.find(i);
            if (!up || it == addresses.end() || it->second.empty()) continue;
            std::set<pci::PciAddress> owners;
            net_owners(host, i, owners);
            for (const auto& a : owners) {
                DeviceUse u;
                u.addr = a;
                u.kind = InUseKind::interface_up_with_address;
                u.interface = i;
                u.addresses = it->second;
                f.in_use.push_back(std::move(u));
            }
        }
    }
    return problem;
}

// PCI functions whose base class (the class code's top byte) is base_class.
std::vector<pci::PciAddress> devices_of_class(const Tree& host, unsigned base_class) {
    std::vector<pci::PciAddress> out;
    if (auto devs = host.list("/sys/bus/pci/devices"))
        for (const auto& d : *devs)
            if (auto a = pci::PciAddress::parse(d))
                if (auto cls = host.attr_hex("/sys/bus/pci/devices/" + d + "/class");
                    cls && (*cls >> 16) == base_class)
                    out.push_back(*a);
    return out;
}

// Every PCI function that may hold the root filesystem when mountinfo
// cannot say which does: storage controllers (base class 01), the devices
// behind every block device (a USB bridge, a virtio block device: class 00
// or 0c), and the devices behind every virtio filesystem tag (virtio-9p is
// class 0002, not storage).
std::vector<pci::PciAddress> possible_root_holders(const Tree& host) {
    std::set<pci::PciAddress> out;
    for (const auto& a : devices_of_class(host, 0x01))
        out.insert(a);
    if (auto blocks = host.list("/sys/class/block"))
        for (const auto& b : *blocks)
            block_owners(host, "/sys/class/block/" + b, out);
    for (const auto& tag : virtio_tags(host))
        tag_owners(host, tag, out);
    return {out.begin(), out.end()};
}

// Whether the IOMMU groups directory the kernel publishes, when it exists,
// can be listed. Each device's own iommu_group link is read once, by the PCI
// enumeration (PciDevice::iommu_group_problem), and whether the groups'
// listings and the links agree is read_groups' check: cli::load_host joins
// both into SystemFacts::groups_unreadable.
std::optional<std::string> groups_problem(const Tree& host) {
    const std::string dir = "/sys/kernel/iommu_groups";
    if (host.exists(dir) || host.is_link(dir)) {
        auto l = host.list(dir);
        if (!l) return "cannot list " + dir + " (" + l.error().describe() + ")";
    }
    return std::nullopt;
}

void read_console(const Tree& host, SystemFacts& f) {
    auto fbs = host.list("/sys/class/graphics");
    if (!fbs) return;
    for (const auto& fb : *fbs) {
        if (!util::starts_with(fb, "fb")) continue;
        if (auto dev = host.resolve("/sys/class/graphics/" + fb + "/device"))
            if (auto a = pci_owner(*dev)) f.critical.push_back({*a, CriticalKind::console, fb});
    }
}

void read_modules(const Tree& host, SystemFacts& f) {
    const std::string dir = "/lib/modules/" + f.kernel_release;
    std::set<std::string> available, builtin, loaded;
    auto norm = [](const std::string& path) {
        std::string name = path.substr(path.rfind('/') + 1);
        name = name.substr(0, name.find(".ko"));
        std::replace(name.begin(), name.end(), '-', '_');
        return name;
    };
    if (auto dep = host.read(dir + "/modules.dep")) {
        for (const auto& line : util::split(*dep, '\n')) {
            size_t colon = line.find(':');
            if (colon != std::string::npos) available.insert(norm(line.substr(0, colon)));
        }
        f.module_list = true;
    }
    if (auto b = host.read(dir + "/modules.builtin"))
        for (const auto& line : util::split(*b, '\n'))
            if (!line.empty()) builtin.insert(norm(line));
    if (auto m = host.read("/proc/modules"))
        for (const auto& line : util::split(*m, '\n'))
            if (auto w = util::split_ws(line); !w.empty()) loaded.insert(w[0]);
    for (const auto& name : vfio_module_names()) {
        ModuleState s;
        s.name = name;
        s.builtin = builtin.count(name) > 0;
        s.available = s.builtin || available.count(name) > 0;
        s.loaded = s.builtin || loaded.count(name) > 0 ||
                   host.attr("/sys/module/" + name + "/initstate").value_or("") == "live";
        f.vfio_modules.push_back(s);
    }
}

void read_kvm(const Tree& host, SystemFacts& f) {
    f.kvm = read_kvm_state(host, f.cpu.vmx || f.cpu.svm);
}

void read_holders(const Tree& host, SystemFacts& f) {
    auto procs = host.list("/proc");
    if (!procs) return;
    for (const auto& pid : *procs) {
        auto n = util::parse_dec(pid);
        if (!n) continue;
        const std::string fddir = "/proc/" + pid + "/fd";
        auto fds = host.list(fddir);
        if (!fds) continue;
        std::set<std::string> nodes;
        for (const auto& fd : *fds) {
            auto t = host.read_link(fddir + "/" + fd);
            if (!t) continue;
            const std::string& node = *t;
            if (util::starts_with(node, "/dev/nvidia") || util::starts_with(node, "/dev/dri/") ||
                util::starts_with(node, "/dev/vfio/"))
                nodes.insert(node);
        }
        if (nodes.empty()) continue;
        std::string comm = host.attr("/proc/" + pid + "/comm").value_or("?");
        for (const auto& node : nodes)
            f.holders.push_back({static_cast<int>(*n), comm, node});
    }
}

void read_nvidia_minors(const Tree& host, SystemFacts& f) {
    auto gpus = host.list("/proc/driver/nvidia/gpus");
    if (!gpus) return;
    for (const auto& bdf : *gpus) {
        auto info = host.read("/proc/driver/nvidia/gpus/" + bdf + "/information");
        if (!info) continue;
        for (const auto& line : util::split(*info, '\n')) {
            if (!util::starts_with(line, "Device Minor:")) continue;
            auto minor = util::trim(std::string_view(line).substr(13));
            auto a = pci::PciAddress::parse(bdf);
            if (a) f.nvidia_minors["/dev/nvidia" + std::string(minor)] = a->str();
        }
    }
}

} // namespace

const char* critical_kind_id(CriticalKind k) {
    switch (k) {
    case CriticalKind::root_filesystem:
        return "root_filesystem";
    case CriticalKind::default_route:
        return "default_route";
    case CriticalKind::console:
        return "console";
    case CriticalKind::boot_vga:
        return "boot_vga";
    case CriticalKind::unknown_root:
        return "unknown_root";
    case CriticalKind::unknown_route:
        return "unknown_route";
    }
    return "?";
}

bool force_overrides(CriticalKind k) {
    return k != CriticalKind::root_filesystem && k != CriticalKind::unknown_root;
}

std::string CriticalUse::reason() const {
    switch (kind) {
    case CriticalKind::root_filesystem:
        return "root filesystem (" + detail + ")";
    case CriticalKind::default_route:
        return "default route via " + detail;
    case CriticalKind::console:
        return "console framebuffer " + detail;
    case CriticalKind::boot_vga:
        return "boot VGA (the host's console)";
    case CriticalKind::unknown_root:
        return "possibly the root filesystem's storage controller: " + detail +
               " (check by hand with 'findmnt /' and 'lsblk -o NAME,MAJ:MIN,MOUNTPOINT')";
    case CriticalKind::unknown_route:
        return "possibly the default route's network controller: " + detail +
               " (check by hand with 'ip route show default')";
    }
    return detail;
}

const char* in_use_kind_id(InUseKind k) {
    switch (k) {
    case InUseKind::mount:
        return "mount";
    case InUseKind::interface_up_with_address:
        return "interface_up_with_address";
    case InUseKind::holder_process:
        return "holder_process";
    }
    return "?";
}

std::string DeviceUse::what() const {
    switch (kind) {
    case InUseKind::mount:
        return "mounted " + mountpoint + " (" + source + ")";
    case InUseKind::interface_up_with_address:
        return "interface " + interface + " is up with address " + util::join(addresses, ", ");
    case InUseKind::holder_process:
        return "pid " + std::to_string(pid) + " (" + comm + ") holds " + node;
    }
    return "?";
}

const std::vector<std::string>& vfio_module_names() {
    static const std::vector<std::string> names = {"vfio", "vfio_iommu_type1", "vfio_pci_core",
                                                   "vfio_pci"};
    return names;
}

const std::vector<std::string>& recorded_programs() {
    static const std::vector<std::string> names = {"qemu-system-x86_64",
                                                   "docker",
                                                   "podman",
                                                   "nvidia-ctk",
                                                   "nvidia-container-runtime",
                                                   "nvidia-container-toolkit",
                                                   "nvidia-smi",
                                                   "update-grub",
                                                   "grub-mkconfig",
                                                   "grubby",
                                                   "bootctl",
                                                   "kernel-install",
                                                   "kernelstub",
                                                   "proxmox-boot-tool"};
    return names;
}

CpuInfo parse_cpuinfo(std::string_view text) {
    CpuInfo c;
    for (const auto& line : util::split(text, '\n')) {
        if (line.empty()) break; // first processor only
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto key = util::trim(std::string_view(line).substr(0, colon));
        auto val = util::trim(std::string_view(line).substr(colon + 1));
        if (key == "vendor_id")
            c.vendor = std::string(val);
        else if (key == "address sizes") {
            // "46 bits physical, 57 bits virtual"
            const auto words = util::split_ws(val);
            if (words.size() >= 3 && words[1] == "bits" && util::starts_with(words[2], "physical"))
                if (auto n = util::parse_dec(words[0]); n && *n > 0 && *n <= 64)
                    c.phys_bits = static_cast<int>(*n);
        } else if (key == "flags") {
            for (const auto& fl : util::split_ws(val)) {
                if (fl == "vmx")
                    c.vmx = true;
                else if (fl == "svm")
                    c.svm = true;
                else if (fl == "hypervisor")
                    c.hypervisor = true;
            }
        }
    }
    return c;
}

KvmState read_kvm_state(const Tree& host, bool cpu_virt) {
    KvmState k;
    k.present = host.exists("/dev/kvm");
    if (host.exists("/sys/module/kvm_pvm"))
        k.backend = "kvm_pvm";
    else if (host.exists("/sys/module/kvm_intel"))
        k.backend = "kvm_intel";
    else if (host.exists("/sys/module/kvm_amd"))
        k.backend = "kvm_amd";
    if (!k.present) {
        k.reason = "/dev/kvm does not exist";
        if (!cpu_virt) k.reason += " and the CPU shows neither vmx nor svm";
        return k;
    }
    if (k.backend == "kvm_pvm") {
        k.reason = "/dev/kvm is provided by kvm_pvm (PVM): ordinary guest kernels hang under it";
        return k;
    }
    if (k.backend.empty()) {
        k.reason = "/dev/kvm exists but neither kvm_intel nor kvm_amd is loaded";
        return k;
    }
    // As QEMU opens it; a recorded tree's /dev/kvm is a plain file and says
    // nothing about this user's access.
    if (host.is_live()) {
        const UniqueFd fd(host.open("/dev/kvm", O_RDWR));
        if (!fd) {
            k.reason = "/dev/kvm cannot be opened read-write by this user";
            return k;
        }
    }
    k.usable = true;
    return k;
}

SystemFacts read_system(const Tree& host, bool devices_only) {
    SystemFacts f;
    f.kernel_release = host.attr("/proc/sys/kernel/osrelease").value_or("");
    if (f.kernel_release.empty())
        f.warnings.push_back("cannot read the kernel release (/proc/sys/kernel/osrelease)");
    if (auto c = host.read("/proc/cmdline"))
        f.cmdline = std::string(util::trim(*c));
    else
        f.warnings.push_back("cannot read the kernel command line (/proc/cmdline)");
    if (auto c = host.read("/proc/cpuinfo")) f.cpu = parse_cpuinfo(*c);
    f.virt = read_virt(host, f.cpu.hypervisor);
    f.acpi_dmar = host.exists("/sys/firmware/acpi/tables/DMAR");
    f.acpi_ivrs = host.exists("/sys/firmware/acpi/tables/IVRS");
    if (auto units = host.list("/sys/class/iommu")) f.iommu_units = *units;
    for (const auto& u : f.iommu_units) {
        if (auto ecap = host.attr_hex("/sys/class/iommu/" + u + "/intel-iommu/ecap")) {
            bool ir = (*ecap >> 3) & 1;
            f.interrupt_remapping = f.interrupt_remapping.value_or(true) && ir;
        }
    }
    if (auto cfg = host.read("/boot/config-" + f.kernel_release)) {
        if (cfg->find("\nCONFIG_INTEL_IOMMU_DEFAULT_ON=y") != std::string::npos)
            f.kernel_intel_iommu_default_on = true;
        else if (cfg->find("CONFIG_INTEL_IOMMU") != std::string::npos)
            f.kernel_intel_iommu_default_on = false;
    }
    read_modules(host, f);
    f.dev_vfio = host.exists("/dev/vfio/vfio");
    read_kvm(host, f);
    if (!devices_only) {
        f.qemu_path = host.find_program("qemu-system-x86_64");
        if (f.qemu_path) f.qemu_version = host.program_version("qemu-system-x86_64");
    }
    read_holders(host, f);
    read_nvidia_minors(host, f);
    if (auto why = read_mounts(host, f)) {
        // Any storage controller may hold /: each is refused, never forced.
        f.root_unknown = *why;
        f.warnings.push_back(
            *why +
            ": every storage controller, block device and virtio filesystem is treated as holding "
            "the root filesystem");
        for (const auto& a : possible_root_holders(host))
            f.critical.push_back({a, CriticalKind::unknown_root, *why});
    }
    if (auto why = read_network(host, f)) {
        f.route_unknown = *why;
        f.warnings.push_back(*why +
                             ": every network controller is treated as carrying the default route");
        for (const auto& a : devices_of_class(host, 0x02))
            f.critical.push_back({a, CriticalKind::unknown_route, *why});
    }
    f.groups_unreadable = groups_problem(host);
    if (f.groups_unreadable)
        f.warnings.push_back(*f.groups_unreadable + ": IOMMU group membership is unknown");
    read_console(host, f);
    if (devices_only) return f;
    for (const char* rt : {"docker", "podman"})
        if (host.find_program(rt)) f.container_runtimes.emplace_back(rt);
    for (const char* p : {"nvidia-ctk", "nvidia-container-runtime", "nvidia-container-toolkit"})
        if (host.find_program(p)) f.container_gpu_support = true;
    return f;
}

} // namespace vfioctl::host
