#include "host/tree.hpp"
#include "pci/device.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <iterator>
#include <map>
#include <optional>
#include <sys/stat.h>

extern "C" {
#include <pci/pci.h>
}

namespace vfioctl::pci {

namespace {

// libpci reports fatal errors through a callback that must not return; we
// jump back to enumerate() and turn it into an Error.
thread_local std::jmp_buf* t_jump = nullptr;
thread_local std::string t_last_error;
thread_local std::vector<std::string>* t_warnings = nullptr;

// libpci declares its error hook noreturn as a GNU attribute, part of the
// pointer's type for clang ([[noreturn]] is not).
__attribute__((noreturn)) void on_error(char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    (void)std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    t_last_error = buf;
    if (t_jump) std::longjmp(*t_jump, 1);
    std::abort();
}

void on_warning(char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    (void)std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (t_warnings) t_warnings->push_back(std::string("libpci: ") + buf);
}

void on_debug(char*, ...) {}

struct CapName {
    int id;
    const char* name;
};
constexpr CapName k_caps[] = {{PCI_CAP_ID_PM, "Power Management"},
                              {PCI_CAP_ID_AGP, "AGP"},
                              {PCI_CAP_ID_VPD, "VPD"},
                              {PCI_CAP_ID_MSI, "MSI"},
                              {PCI_CAP_ID_PCIX, "PCI-X"},
                              {PCI_CAP_ID_VNDR, "Vendor Specific"},
                              {PCI_CAP_ID_SSVID, "Subsystem ID"},
                              {PCI_CAP_ID_EXP, "PCIe"},
                              {PCI_CAP_ID_MSIX, "MSI-X"},
                              {PCI_CAP_ID_AF, "PCI Advanced Features"}};
constexpr CapName k_ext_caps[] = {{PCI_EXT_CAP_ID_AER, "AER"},
                                  {PCI_EXT_CAP_ID_DSN, "Device Serial Number"},
                                  {PCI_EXT_CAP_ID_ACS, "ACS"},
                                  {PCI_EXT_CAP_ID_ARI, "ARI"},
                                  {PCI_EXT_CAP_ID_ATS, "ATS"},
                                  {PCI_EXT_CAP_ID_SRIOV, "SR-IOV"},
                                  {PCI_EXT_CAP_ID_REBAR, "Resizable BAR"},
                                  {PCI_EXT_CAP_ID_PASID, "PASID"},
                                  {PCI_EXT_CAP_ID_PRI, "PRI"},
                                  {PCI_EXT_CAP_ID_LTR, "LTR"}};

// Runs step(ctx), in which libpci may call its fatal error handler. That
// handler longjmps back here, past step's frames, so step and ctx hold plain
// data only: C++ does not allow jumping over destructors. False after a
// fatal error (the message is in t_last_error).
template <typename Ctx> bool guarded(void (*step)(Ctx&), Ctx& ctx) {
    std::jmp_buf jump;
    if (setjmp(jump) != 0) {
        t_jump = nullptr;
        return false;
    }
    t_jump = &jump;
    step(ctx);
    t_jump = nullptr;
    return true;
}

// What libpci says about one function's identity.
struct RawIdent {
    pci_dev* p;
    uint8_t header[64];
    bool config_ok;
};

// Names from pci.ids (or the udev hwdb) for one function.
struct RawNames {
    pci_access* acc;
    int vendor, device, class_code, subsys_vendor, subsys_device;
    bool subsys;
    char vendor_name[256], device_name[256], class_name[256], subsys_name[256];
};

// Capabilities and BARs of one function.
struct RawDetail {
    pci_dev* p;
    int nbars;
    bool caps[std::size(k_caps)];
    bool ext_caps[std::size(k_ext_caps)];
    bool acs;
    uint64_t size[6];
    uint32_t bar[6];
};

void copy_name(char* out, size_t n, const char* name) {
    (void)std::snprintf(out, n, "%s", name ? name : "");
}

// The parent bridge from the canonical sysfs path: the component before ours
// that is itself a PCI address.
std::optional<PciAddress> parent_from_path(const std::string& path) {
    auto parts = util::split(path, '/');
    if (parts.size() < 2) return std::nullopt;
    for (size_t i = parts.size() - 1; i-- > 0;) {
        auto a = PciAddress::parse(parts[i]);
        if (a && parts[i].size() == 12) return a.value();
    }
    return std::nullopt;
}

// libpci takes the kernel's vendor, device and class files through strtol,
// so an empty or garbage file reads as 0: say so, and take the value from
// the config header when that can be read. A header shorter than 64 bytes is
// reported too (libpci then reads every register as all ones).
void check_identity(const host::Tree& host, const uint8_t* header, bool config_ok, PciDevice& d,
                    std::vector<std::string>& warnings) {
    const std::string base = "/sys/bus/pci/devices/" + d.addr.str();
    if (!config_ok)
        warnings.push_back(d.addr.str() +
                           ": config space is unreadable or shorter than the 64-byte header; "
                           "its BARs and capabilities are unknown");
    const uint16_t cfg_vendor = static_cast<uint16_t>(header[0] | header[1] << 8);
    const uint16_t cfg_device = static_cast<uint16_t>(header[2] | header[3] << 8);
    const uint16_t cfg_class = static_cast<uint16_t>(header[0x0b] << 8 | header[0x0a]);
    const bool header_valid = config_ok && cfg_vendor != 0xffff && cfg_vendor != 0;
    // The common case: the attributes libpci read agree with the header.
    if (header_valid && d.vendor == cfg_vendor && d.device == cfg_device &&
        d.class_code == cfg_class)
        return;
    for (const char* name : {"vendor", "device", "class"}) {
        auto raw = host.attr(base + "/" + name);
        if (raw && util::parse_hex(*raw)) continue;
        std::string what = d.addr.str() + ": " + name + " " +
                           (raw ? (raw->empty() ? std::string("is empty") : "holds '" + *raw + "'")
                                : std::string("cannot be read"));
        if (!header_valid) {
            warnings.push_back(what + "; the device's identity is unknown");
            continue;
        }
        warnings.push_back(what + "; using the config header instead");
        if (name == std::string_view("vendor"))
            d.vendor = cfg_vendor;
        else if (name == std::string_view("device"))
            d.device = cfg_device;
        else {
            d.class_code = cfg_class;
            d.prog_if = header[0x09];
        }
    }
}

void read_host_side(const host::Tree& host, const host::Dir* bus, PciDevice& d,
                    std::vector<std::string>& warnings) {
    const std::string base = "/sys/bus/pci/devices/" + d.addr.str();
    auto dir = host.open_dir(base);
    if (!dir) {
        warnings.push_back(d.addr.str() + ": " + dir.error().describe());
        return;
    }
    d.driver = dir->link_name("driver");
    if (auto t = dir->read_link("iommu_group")) {
        const std::string g = t->substr(t->rfind('/') + 1);
        // Group numbers as read_groups takes them: a bigger one wrapped in the int.
        if (auto n = util::parse_dec(g); n && *n <= 1'000'000) {
            d.iommu_group = static_cast<int>(*n);
        } else {
            warnings.push_back(d.addr.str() + ": iommu_group link names '" + g + "', not a number");
        }
    } else if (t.error().errnum != ENOENT) {
        // No entry is no group (the IOMMU is off); an entry that is no
        // readable link is a group that cannot be read.
        d.iommu_group_problem =
            "cannot read " + base + "/iommu_group (" + t.error().describe() + ")";
    }
    // An override matters on devices that vfio-pci holds or that wait unbound.
    const bool override_matters = !d.driver || *d.driver == "vfio-pci";
    if (auto o = override_matters ? dir->attr("driver_override") : std::nullopt;
        o && *o != "(null)" && !o->empty())
        d.driver_override = *o;
    if (auto v = d.is_gpu() ? dir->attr("boot_vga") : std::nullopt) {
        if (*v == "1")
            d.boot_vga = true;
        else if (*v != "0")
            warnings.push_back(d.addr.str() + ": boot_vga holds '" + *v + "'");
    }
    if (d.is_gpu())
        if (auto drm = host.list(base + "/drm"))
            for (const auto& n : *drm)
                if (util::starts_with(n, "card") || util::starts_with(n, "renderD"))
                    d.drm_nodes.push_back(n);
    // The bus link is relative ("../../../devices/pci0000:00/..."): resolving
    // it lexically needs no filesystem walk.
    if (auto t = bus ? bus->read_link(d.addr.str().c_str()) : host.read_link(base)) {
        d.sysfs_path =
            (std::filesystem::path("/sys/bus/pci/devices") / *t).lexically_normal().string();
        d.parent = parent_from_path(d.sysfs_path);
    }
}

// The files libpci opens itself (plain open(2), links followed) for a
// device under /sys/bus/pci/devices.
constexpr const char* k_libpci_files[] = {"vendor",           "device",   "class",
                                          "config",           "resource", "irq",
                                          "revision",         "label",    "subsystem_vendor",
                                          "subsystem_device", "numa_node"};

// Why libpci must not read device `name` of a recorded tree: its directory
// leads out of the tree (an absolute link, or '..' past the root) or is no
// directory, or a file libpci opens is no regular file (a link out, a FIFO
// that blocks the open for ever, a device node). nullopt when it may.
// The slow, general answer: every link resolved by std::filesystem.
std::optional<std::string> libpci_hazard_slow(const host::Tree& host, const std::string& name) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path root = fs::canonical(host.root(), ec);
    if (ec) return std::nullopt;
    const fs::path dir = fs::canonical(host.path("/sys/bus/pci/devices/" + name), ec);
    if (ec) return std::nullopt; // dangling: libpci finds no files and says so
    const std::string r = root.string() + "/", d = dir.string();
    if (d.compare(0, r.size(), r) != 0) return "its directory leads out of the tree (to " + d + ")";
    if (!fs::is_directory(dir, ec)) return "it is not a directory";
    for (const char* f : k_libpci_files) {
        struct stat st {};
        if (::lstat((dir / f).c_str(), &st) != 0) continue;
        if (S_ISLNK(st.st_mode)) {
            const fs::path to = fs::canonical(dir / f, ec);
            if (ec) continue; // dangling: nothing to read
            if (to.string().compare(0, r.size(), r) != 0)
                return std::string(f) + " leads out of the tree (to " + to.string() + ")";
            if (::stat(to.c_str(), &st) != 0) continue;
        }
        // A directory reads as an error, which libpci reads as one; a FIFO or a device node does
        // not.
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
            return std::string(f) + " is not a regular file";
    }
    return std::nullopt;
}

// The same answer in a few system calls a device for the common tree: the
// bus entry is a relative link through real directories (each checked once
// and remembered), and the device's files are regular files (one fstatat
// each, links not followed). Anything else takes the slow answer.
class HazardCheck {
  public:
    explicit HazardCheck(const host::Tree& host)
        : m_host(host), m_bus(host.open_dir("/sys/bus/pci/devices")) {
        std::error_code ec;
        m_root = std::filesystem::canonical(host.root(), ec).string();
    }

    std::optional<std::string> operator()(const std::string& name) {
        if (m_root.empty() || !m_bus || !real_dir("sys/bus/pci/devices"))
            return libpci_hazard_slow(m_host, name);
        auto t = m_bus->read_link(name.c_str());
        if (!t || t->empty() || (*t)[0] == '/') return libpci_hazard_slow(m_host, name);
        const std::string rel =
            (std::filesystem::path("sys/bus/pci/devices") / *t).lexically_normal().string();
        if (rel.empty() || rel == "." || rel.compare(0, 2, "..") == 0 || !real_dir(rel))
            return libpci_hazard_slow(m_host, name);
        // What each of libpci's files is, without following links.
        const int dfd =
            ::open((m_root + "/" + rel).c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) return libpci_hazard_slow(m_host, name);
        bool plain = true;
        for (const char* f : k_libpci_files) {
            struct stat st {};
            if (::fstatat(dfd, f, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode) &&
                !S_ISDIR(st.st_mode))
                plain = false;
        }
        ::close(dfd);
        return plain ? std::nullopt : libpci_hazard_slow(m_host, name);
    }

  private:
    // rel ("sys/devices/pci0000:00") is a directory, and so is every
    // directory above it up to the root, none of them a link.
    bool real_dir(const std::string& rel) {
        if (rel.empty()) return true;
        if (auto it = m_real.find(rel); it != m_real.end()) return it->second;
        const auto slash = rel.rfind('/');
        bool ok = real_dir(slash == std::string::npos ? std::string() : rel.substr(0, slash));
        struct stat st {};
        ok = ok && ::lstat((m_root + "/" + rel).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
        m_real.emplace(rel, ok);
        return ok;
    }

    const host::Tree& m_host;
    std::string m_root;
    Result<host::Dir> m_bus;
    std::map<std::string, bool> m_real;
};

// Takes the hazardous devices out of libpci's list before it reads them,
// with a warning each; their IOMMU groups keep them as unknown members.
void leave_out_hazards(const host::Tree& host, pci_access* acc,
                       std::vector<std::string>& warnings) {
    HazardCheck libpci_hazard(host);
    for (pci_dev** at = &acc->devices; *at;) {
        pci_dev* p = *at;
        const std::string name =
            PciAddress{static_cast<uint32_t>(p->domain), p->bus, p->dev, p->func}.str();
        if (auto why = libpci_hazard(name)) {
            warnings.push_back(name + ": left out: " + *why);
            *at = p->next;
            pci_free_dev(p);
            continue;
        }
        at = &p->next;
    }
}

} // namespace

const PciDevice* Inventory::find(const PciAddress& a) const {
    auto it = std::lower_bound(devices.begin(), devices.end(), a,
                               [](const PciDevice& d, const PciAddress& x) { return d.addr < x; });
    return it != devices.end() && it->addr == a ? &*it : nullptr;
}

std::vector<const PciDevice*> Inventory::find(const PciId& id) const {
    std::vector<const PciDevice*> out;
    for (const auto& d : devices)
        if (d.id() == id) out.push_back(&d);
    return out;
}

std::vector<const PciDevice*> Inventory::gpus() const {
    std::vector<const PciDevice*> out;
    for (const auto& d : devices)
        if (d.is_gpu()) out.push_back(&d);
    return out;
}

bool Inventory::is_gpu_companion(const PciDevice& d) const {
    if (d.is_gpu() || d.bridge) return false;
    // Functions of one slot are contiguous in the sorted list.
    auto it = std::lower_bound(devices.begin(), devices.end(), d.addr,
                               [](const PciDevice& x, const PciAddress& a) {
                                   return PciAddress{x.addr.domain, x.addr.bus, x.addr.dev, 0} <
                                          PciAddress{a.domain, a.bus, a.dev, 0};
                               });
    for (; it != devices.end() && it->addr.same_slot(d.addr); ++it)
        if (it->is_gpu()) return true;
    return false;
}

Result<Inventory> enumerate(const host::Tree& host) {
    if (!host.is_dir("/sys/bus/pci/devices"))
        return Error{"no PCI devices to read", host.path("/sys/bus/pci/devices").string(),
                     "--root must name a host tree (as written by 'vfioctl snapshot')", 0};
    Inventory inv;
    pci_access* acc = pci_alloc();
    acc->error = on_error;
    acc->warning = on_warning;
    acc->debug = on_debug;
    acc->method = PCI_ACCESS_SYS_BUS_PCI;
    std::string sysfs = host.path("/sys/bus/pci").string();
    pci_set_param(acc, const_cast<char*>("sysfs.path"), sysfs.data());

    t_warnings = &inv.warnings;
    bool tainted = false;
    // libpci's state is unknown after a fatal error: leak it rather than free twice.
    auto failed = [&]() -> Result<Inventory> {
        t_warnings = nullptr;
        return Error{"libpci failed: " + t_last_error, sysfs, {}, 0};
    };
    if (!guarded<pci_access*>(
            [](pci_access*& a) {
                pci_init(a);
                pci_scan_bus(a);
            },
            acc))
        return failed();
    if (!host.is_live()) leave_out_hazards(host, acc, inv.warnings);
    for (pci_dev* p = acc->devices; p; p = p->next) {
        // One read of the standard header serves the identity check and the header type.
        RawIdent raw{p, {}, false};
        if (!guarded<RawIdent>(
                [](RawIdent& r) {
                    pci_fill_info(r.p, PCI_FILL_IDENT | PCI_FILL_CLASS);
                    r.config_ok = pci_read_block(r.p, 0, r.header, sizeof r.header) != 0;
                },
                raw))
            return failed();
        const uint8_t* header = raw.header;
        const bool config_ok = raw.config_ok;
        PciDevice d;
        d.addr = {static_cast<uint32_t>(p->domain), p->bus, p->dev, p->func};
        d.vendor = p->vendor_id;
        d.device = p->device_id;
        d.class_code = p->device_class;
        check_identity(host, header, config_ok, d, inv.warnings);
        // Revision, programming interface and subsystem IDs from the same
        // header, rather than three more attribute files.
        const uint8_t htype = config_ok ? header[PCI_HEADER_TYPE] & 0x7f : 0;
        if (config_ok) {
            d.revision = header[PCI_REVISION_ID];
            d.prog_if = header[PCI_CLASS_PROG];
            if (htype == PCI_HEADER_TYPE_NORMAL) {
                d.subsys_vendor = static_cast<uint16_t>(header[PCI_SUBSYSTEM_VENDOR_ID] |
                                                        header[PCI_SUBSYSTEM_VENDOR_ID + 1] << 8);
                d.subsys_device = static_cast<uint16_t>(header[PCI_SUBSYSTEM_ID] |
                                                        header[PCI_SUBSYSTEM_ID + 1] << 8);
            }
        }
        RawNames names{acc,
                       d.vendor,
                       d.device,
                       d.class_code,
                       d.subsys_vendor,
                       d.subsys_device,
                       d.subsys_vendor && d.subsys_vendor != 0xffff,
                       {},
                       {},
                       {},
                       {}};
        if (!guarded<RawNames>(
                [](RawNames& n) {
                    char buf[256];
                    copy_name(n.vendor_name, sizeof n.vendor_name,
                              pci_lookup_name(n.acc, buf, sizeof buf, PCI_LOOKUP_VENDOR, n.vendor));
                    copy_name(n.device_name, sizeof n.device_name,
                              pci_lookup_name(n.acc, buf, sizeof buf, PCI_LOOKUP_DEVICE, n.vendor,
                                              n.device));
                    copy_name(
                        n.class_name, sizeof n.class_name,
                        pci_lookup_name(n.acc, buf, sizeof buf, PCI_LOOKUP_CLASS, n.class_code));
                    if (n.subsys)
                        copy_name(n.subsys_name, sizeof n.subsys_name,
                                  pci_lookup_name(
                                      n.acc, buf, sizeof buf,
                                      PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE,
                                      n.vendor, n.device, n.subsys_vendor, n.subsys_device));
                },
                names))
            return failed();
        d.vendor_name = names.vendor_name;
        d.device_name = names.device_name;
        d.class_name = names.class_name;
        d.subsys_name = names.subsys_name;
        d.bridge = htype == PCI_HEADER_TYPE_BRIDGE || htype == PCI_HEADER_TYPE_CARDBUS ||
                   d.class_code == 0x0604 || d.class_code == 0x0609;
        // Capabilities and BARs cost a walk of the config space and the
        // resource file: read them for GPUs, which VMs and verify size from them.
        if (!d.is_gpu()) {
            inv.devices.push_back(std::move(d));
            continue;
        }
        RawDetail detail{
            p,     htype == PCI_HEADER_TYPE_NORMAL ? 6 : (htype == PCI_HEADER_TYPE_BRIDGE ? 2 : 0),
            {},    {},
            false, {},
            {}};
        if (!guarded<RawDetail>(
                [](RawDetail& r) {
                    pci_fill_info(r.p, PCI_FILL_BASES | PCI_FILL_SIZES | PCI_FILL_IO_FLAGS |
                                           PCI_FILL_CAPS | PCI_FILL_EXT_CAPS);
                    for (size_t i = 0; i < std::size(k_caps); ++i)
                        r.caps[i] = pci_find_cap(r.p, k_caps[i].id, PCI_CAP_NORMAL) != nullptr;
                    for (size_t i = 0; i < std::size(k_ext_caps); ++i)
                        r.ext_caps[i] =
                            pci_find_cap(r.p, k_ext_caps[i].id, PCI_CAP_EXTENDED) != nullptr;
                    r.acs = pci_find_cap(r.p, PCI_EXT_CAP_ID_ACS, PCI_CAP_EXTENDED) != nullptr;
                    for (int i = 0; i < r.nbars; ++i) {
                        r.size[i] = r.p->size[i];
                        // The BAR register in config space says what the region is.
                        if (r.size[i]) r.bar[i] = pci_read_long(r.p, PCI_BASE_ADDRESS_0 + 4 * i);
                    }
                },
                detail)) {
            // One device's garbage (a resource file libpci cannot parse)
            // costs that device's details, not the whole listing.
            inv.warnings.push_back(d.addr.str() + ": libpci: " + t_last_error +
                                   "; listed without its BARs and capabilities");
            tainted = true;
            inv.devices.push_back(std::move(d));
            continue;
        }
        for (size_t i = 0; i < std::size(k_caps); ++i)
            if (detail.caps[i]) d.capabilities.emplace_back(k_caps[i].name);
        for (size_t i = 0; i < std::size(k_ext_caps); ++i)
            if (detail.ext_caps[i]) d.capabilities.emplace_back(k_ext_caps[i].name);
        d.has_acs = detail.acs;
        for (int i = 0; i < detail.nbars; ++i) {
            if (detail.size[i] == 0) continue;
            Bar b;
            b.index = i;
            b.size = detail.size[i];
            const uint32_t flags = detail.bar[i];
            b.is_io = flags & PCI_BASE_ADDRESS_SPACE_IO;
            if (!b.is_io) {
                b.is_64bit =
                    (flags & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64;
                b.prefetchable = flags & PCI_BASE_ADDRESS_MEM_PREFETCH;
            }
            d.bars.push_back(b);
        }
        inv.devices.push_back(std::move(d));
    }
    t_warnings = nullptr;
    // After a fatal error that was caught, libpci's state is unknown: leak
    // it rather than free twice.
    if (!tainted) pci_cleanup(acc);

    std::sort(inv.devices.begin(), inv.devices.end(),
              [](const PciDevice& a, const PciDevice& b) { return a.addr < b.addr; });
    // One open bus directory for every device's link (not a walk per device).
    auto bus = host.open_dir("/sys/bus/pci/devices");
    for (auto& d : inv.devices)
        read_host_side(host, bus ? &*bus : nullptr, d, inv.warnings);
    return inv;
}

} // namespace vfioctl::pci
