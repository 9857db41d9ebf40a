#include "iommu/explain.hpp"

#include "pci/fabric.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <optional>
#include <set>

namespace vfioctl::iommu {

namespace {

// What a rule found in a line: the text of its one capture, if it has one.
struct Match {
    std::string capture;
};

using Fill = std::function<void(const ExplainContext&, const Match&, Explanation&)>;

// A line, and the same line in ASCII lower case for case-insensitive search
// (offsets are the same in both).
struct Line {
    std::string_view text;
    std::string lower;
};

// Finds a message in a line, in time linear in the line; nullopt when it is not there.
using Matcher = std::function<std::optional<Match>(const Line&)>;

struct Rule {
    const char* id;
    Matcher match;
    const char* meaning;
    Fill fill;
};

bool hex(char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}
bool digit(char c) {
    return c >= '0' && c <= '9';
}

// The length of a PCI address ([DDDD:]BB:DD.F) starting at i, or 0.
size_t bdf_at(std::string_view s, size_t i) {
    auto short_at = [&](size_t k) -> size_t {
        if (k + 7 > s.size()) return 0;
        if (hex(s[k]) && hex(s[k + 1]) && s[k + 2] == ':' && hex(s[k + 3]) && hex(s[k + 4]) &&
            s[k + 5] == '.' && s[k + 6] >= '0' && s[k + 6] <= '7')
            return 7;
        return 0;
    };
    if (i + 5 <= s.size() && hex(s[i]) && hex(s[i + 1]) && hex(s[i + 2]) && hex(s[i + 3]) &&
        s[i + 4] == ':')
        if (size_t n = short_at(i + 5)) return n + 5;
    return short_at(i);
}

// The lower-case phrase anywhere in the line.
Matcher contains(const std::string& phrase) {
    return [phrase](const Line& l) -> std::optional<Match> {
        if (l.lower.find(phrase) == std::string::npos) return std::nullopt;
        return Match{};
    };
}

// first, then later in the line then.
Matcher then(const std::string& first, const std::string& then) {
    return [first, then](const Line& l) -> std::optional<Match> {
        size_t a = l.lower.find(first);
        if (a == std::string::npos || l.lower.find(then, a + first.size()) == std::string::npos)
            return std::nullopt;
        return Match{};
    };
}

// Any of the matchers.
Matcher any_of(const std::vector<Matcher>& ms) {
    return [ms](const Line& l) -> std::optional<Match> {
        for (const auto& m : ms)
            if (auto r = m(l)) return r;
        return std::nullopt;
    };
}

// "/dev/vfio/N" and, later in the line, phrase; the capture is N.
Matcher vfio_node_then(const std::string& phrase) {
    return [phrase](const Line& l) -> std::optional<Match> {
        static const std::string node = "/dev/vfio/";
        for (size_t a = l.lower.find(node); a != std::string::npos; a = l.lower.find(node, a + 1)) {
            size_t b = a + node.size(), e = b;
            while (e < l.lower.size() && digit(l.lower[e]))
                ++e;
            if (e == b) continue;
            // The first node followed by digits decides: later ones see less of the line.
            if (l.lower.find(phrase, e) == std::string::npos) return std::nullopt;
            return Match{std::string(l.text.substr(b, e - b))};
        }
        return std::nullopt;
    };
}

// "vfio-pci ADDRESS", then "probe", then "failed with error -22".
std::optional<Match> probe_einval_match(const Line& l) {
    static const std::string head = "vfio-pci ";
    for (size_t a = l.lower.find(head); a != std::string::npos; a = l.lower.find(head, a + 1)) {
        size_t n = bdf_at(l.lower, a + head.size());
        if (!n) continue;
        size_t p = l.lower.find("probe", a + head.size() + n);
        if (p == std::string::npos ||
            l.lower.find("failed with error -22", p + 5) == std::string::npos)
            return std::nullopt;
        return Match{std::string(l.text.substr(a + head.size(), n))};
    }
    return std::nullopt;
}

// "group N is not viable"; the capture is N.
std::optional<Match> not_viable_match(const Line& l) {
    static const std::string tail = " is not viable";
    for (size_t t = l.lower.find(tail); t != std::string::npos; t = l.lower.find(tail, t + 1)) {
        size_t b = t;
        while (b > 0 && digit(l.lower[b - 1]))
            --b;
        if (b == t || b < 6 || l.lower.compare(b - 6, 6, "group ") != 0) continue;
        return Match{std::string(l.text.substr(b, t - b))};
    }
    return std::nullopt;
}

// "can't reserve [mem" or "can't reserve [io"; the capture is mem or io.
std::optional<Match> reserve_match(const Line& l) {
    static const std::string head = "can't reserve [";
    for (size_t a = l.lower.find(head); a != std::string::npos; a = l.lower.find(head, a + 1)) {
        std::string_view rest = std::string_view(l.lower).substr(a + head.size());
        if (rest.substr(0, 3) == "mem")
            return Match{std::string(l.text.substr(a + head.size(), 3))};
        if (rest.substr(0, 2) == "io") return Match{std::string(l.text.substr(a + head.size(), 2))};
    }
    return std::nullopt;
}

// "Property 'vfio-pci.host' doesn't take value 'VALUE'"; the capture is VALUE.
std::optional<Match> bad_host_match(const Line& l) {
    static const std::string head = "property 'vfio-pci.host' doesn't take value '";
    size_t a = l.lower.find(head);
    if (a == std::string::npos) return std::nullopt;
    size_t b = a + head.size();
    size_t e = l.lower.find('\'', b);
    if (e == std::string::npos) return std::nullopt;
    return Match{std::string(l.text.substr(b, e - b))};
}

// The first PCI address in the line, if any. Text shaped like one that is
// none (the "06:48.5" in a timestamp "08:06:48.563014Z") is passed over.
std::optional<pci::PciAddress> find_bdf(std::string_view line) {
    for (size_t i = 0; i < line.size(); ++i) {
        if (!hex(line[i])) continue;
        if (size_t n = bdf_at(line, i)) {
            if (auto a = pci::PciAddress::parse(std::string(line.substr(i, n)))) return *a;
        }
    }
    return std::nullopt;
}

std::string holders_of(const ExplainContext& c, const std::string& node) {
    std::vector<std::string> out;
    for (const auto& h : c.facts.holders)
        if (h.node == node) out.push_back("pid " + std::to_string(h.pid) + " (" + h.comm + ")");
    return util::join(out, ", ");
}

std::string describe_device(const ExplainContext& c, const pci::PciAddress& a) {
    const pci::PciDevice* d = c.inv.find(a);
    if (!d) return a.str() + " does not exist on this host";
    std::string s = a.short_str() + " is " + d->name() + " [" + d->id().str() + "], driver " +
                    d->driver.value_or("none");
    s +=
        d->iommu_group ? ", IOMMU group " + std::to_string(*d->iommu_group) : ", in no IOMMU group";
    return s;
}

// The remedy for an IOMMU that is off, from the diagnosis.
void iommu_off_remedy(const ExplainContext& c, Explanation& e) {
    if (c.iommu.cmdline_fixable) {
        e.remedy.emplace_back(
            "vfioctl iommu enable   (turns the IOMMU on in the boot configuration, with a backup)");
        e.remedy.emplace_back("reboot");
        e.remedy.emplace_back("vfioctl status         (check that passthrough WILL WORK)");
    } else if (!c.iommu.off_steps.empty()) {
        // The firmware setup, or the settings of the VM this runs in.
        e.remedy.insert(e.remedy.end(), c.iommu.off_steps.begin(), c.iommu.off_steps.end());
    } else if (c.iommu.platform == "none") {
        e.remedy.emplace_back("none on this machine: " + c.iommu.off_cause.value_or("?"));
    } else {
        e.remedy.emplace_back("run 'vfioctl status' and look for DMAR or AMD-Vi lines in 'dmesg'");
    }
}

void no_group(const ExplainContext& c, const Match&, Explanation& e) {
    if (!c.iommu.enabled) {
        if (e.device) e.on_this_host.push_back(describe_device(c, *e.device));
        e.on_this_host.push_back("the IOMMU is off on this host: " +
                                 c.iommu.off_cause.value_or("reason unknown"));
        for (const auto& n : c.cmdline.notes)
            e.on_this_host.push_back("note: " + n);
        iommu_off_remedy(c, e);
        return;
    }
    e.on_this_host.push_back("the IOMMU is on here (" + std::to_string(c.iommu.group_count) +
                             " groups)");
    if (e.device) {
        e.on_this_host.push_back(describe_device(c, *e.device));
        const pci::PciDevice* d = c.inv.find(*e.device);
        if (!d)
            e.remedy.emplace_back("check the address with 'vfioctl groups --all'");
        else if (!d->iommu_group)
            e.remedy.emplace_back(
                "this device is outside the IOMMU's scope: check the firmware's DMAR/IVRS "
                "settings; the message was probably logged before the last reboot");
        else
            e.remedy.emplace_back(
                "the device has a group now: the message predates the IOMMU being on; retry");
    } else {
        e.remedy.emplace_back("retry: the IOMMU is on now; 'vfioctl groups' shows the groups");
    }
}

void no_device(const ExplainContext& c, const Match&, Explanation& e) {
    if (e.device) e.on_this_host.push_back(describe_device(c, *e.device));
    std::vector<std::string> gpus;
    for (const auto* g : c.inv.gpus())
        gpus.push_back(g->addr.str() + " [" + g->id().str() + "]");
    if (!gpus.empty()) e.on_this_host.push_back("GPUs on this host: " + util::join(gpus, ", "));
    e.remedy.emplace_back(
        "give QEMU an address that exists: 'vfioctl groups --gpu' lists them (domain included)");
    e.remedy.emplace_back(
        "if the device vanished, look in 'dmesg' for 'fell off the bus' or AER errors");
}

void not_viable(const ExplainContext& c, const Match& m, Explanation& e) {
    auto n = util::parse_dec(m.capture);
    if (n) e.group = static_cast<int>(*n);
    const IommuGroup* g = nullptr;
    for (const auto& x : c.groups)
        if (e.group && x.number == *e.group) g = &x;
    if (!g) {
        e.on_this_host.push_back("there is no IOMMU group " + m.capture + " on this host now");
        e.remedy.emplace_back("'vfioctl groups' lists the groups as they are now");
        return;
    }
    std::vector<std::string> wrong;
    for (const auto& a : g->devices) {
        const pci::PciDevice* d = c.inv.find(a);
        if (!d || d->bridge) continue;
        if (d->driver && *d->driver != "vfio-pci")
            wrong.push_back(a.short_str() + " is on " + *d->driver);
    }
    if (wrong.empty())
        e.on_this_host.push_back("every endpoint of group " + m.capture +
                                 " is on vfio-pci or unbound now");
    else
        e.on_this_host.push_back("group " + m.capture +
                                 " members not on vfio-pci: " + util::join(wrong, "; "));
    auto v = assess(*g, std::nullopt, c.inv, c.facts);
    for (const auto& cu : v.critical)
        e.on_this_host.push_back(cu.addr.short_str() +
                                 " in the same group is host-critical: " + cu.reason());
    if (v.critical.empty())
        e.remedy.push_back(
            "vfioctl bind " + (e.device ? e.device->short_str() : "DEVICE") +
            "   (moves every endpoint of the group to vfio-pci, and 'unbind' gives them back)");
    else
        e.remedy.emplace_back(
            "the group holds a device the host cannot lose: move the card to another slot");
}

void vfio_busy(const ExplainContext& c, const Match& m, Explanation& e) {
    e.group = static_cast<int>(util::parse_dec(m.capture).value_or(0));
    std::string who = holders_of(c, "/dev/vfio/" + m.capture);
    e.on_this_host.push_back(who.empty() ? "no process holds /dev/vfio/" + m.capture + " now"
                                         : "/dev/vfio/" + m.capture + " is held by " + who);
    e.remedy.emplace_back("stop the other VM using the group ('vfioctl vm stop NAME', or end the "
                          "process named above)");
}

void vfio_perm(const ExplainContext&, const Match& m, Explanation& e) {
    e.group = static_cast<int>(util::parse_dec(m.capture).value_or(0));
    e.remedy.emplace_back(
        "run QEMU as root, or give its user the group node: chown USER /dev/vfio/" + m.capture +
        " (a udev rule makes it last)");
    e.remedy.emplace_back(
        "an unprivileged QEMU also needs a locked-memory limit as large as the guest's RAM");
}

void memlock(const ExplainContext&, const Match&, Explanation& e) {
    e.remedy.emplace_back(
        "raise the locked-memory limit to at least the guest's RAM: 'ulimit -l unlimited' in the "
        "shell that starts QEMU, or LimitMEMLOCK=infinity in a systemd unit");
    e.remedy.emplace_back("or run QEMU as root ('vfioctl vm start' does)");
}

void bar_reserve(const ExplainContext& c, const Match&, Explanation& e) {
    if (e.device) {
        e.on_this_host.push_back(describe_device(c, *e.device));
        if (const pci::PciDevice* d = c.inv.find(*e.device); d && d->boot_vga)
            e.on_this_host.push_back(
                "it is the boot VGA: the firmware framebuffer (efifb/simplefb) holds its BAR");
    }
    e.remedy.emplace_back(
        "keep the host's framebuffer off the card: add 'video=efifb:off' (or "
        "'initcall_blacklist=sysfb_init' on 5.15+) to the kernel command line, then reboot");
    e.remedy.emplace_back(
        "see which driver holds the range: grep -i -A3 'PCI Bus' /proc/iomem (as root)");
}

void bad_host(const ExplainContext&, const Match& m, Explanation& e) {
    std::string value = m.capture;
    auto a = pci::PciAddress::parse(value);
    if (a)
        e.on_this_host.push_back("'" + value + "' parses as " + a->str() +
                                 "; QEMU wants exactly that form");
    else
        e.on_this_host.push_back(a.error().message);
    e.remedy.emplace_back(
        "write host=DOMAIN:BUS:DEVICE.FUNCTION, e.g. -device vfio-pci,host=0000:8a:00.0");
}

void container(const ExplainContext& c, const Match&, Explanation& e) {
    if (!c.iommu.enabled) {
        e.on_this_host.push_back("the IOMMU is off: " +
                                 c.iommu.off_cause.value_or("reason unknown"));
        iommu_off_remedy(c, e);
        return;
    }
    if (c.iommu.interrupt_remapping == false &&
        !c.cmdline.allow_unsafe_interrupts.value_or(false)) {
        e.on_this_host.emplace_back(
            "this IOMMU has no interrupt remapping and allow_unsafe_interrupts is off");
        e.remedy.emplace_back(
            "add vfio_iommu_type1.allow_unsafe_interrupts=1 (weakens isolation against "
            "interrupt injection) or use a platform with interrupt remapping");
    }
    for (const auto& mod : c.facts.vfio_modules)
        if (mod.name == "vfio_iommu_type1" && !mod.loaded)
            e.on_this_host.emplace_back("vfio_iommu_type1 is not loaded");
    e.remedy.emplace_back(
        "load the IOMMU backend: modprobe vfio_iommu_type1 ('vfioctl bind' loads it)");
}

void no_models(const ExplainContext& c, const Match&, Explanation& e) {
    for (const auto& mod : c.facts.vfio_modules)
        if (mod.name == "vfio_iommu_type1")
            e.on_this_host.push_back(std::string("vfio_iommu_type1 is ") +
                                     (!mod.available ? "not available for this kernel"
                                      : mod.loaded   ? "loaded"
                                                     : "available but not loaded"));
    if (!c.iommu.enabled)
        e.on_this_host.push_back("the IOMMU is off: " + c.iommu.off_cause.value_or("?"));
    e.remedy.emplace_back("modprobe vfio_iommu_type1 ('vfioctl bind' loads it)");
    if (!c.iommu.enabled) iommu_off_remedy(c, e);
}

void nvrm_in_use(const ExplainContext& c, const Match&, Explanation& e) {
    std::vector<std::string> who;
    for (const auto& h : c.facts.holders)
        if (util::starts_with(h.node, "/dev/nvidia"))
            who.push_back("pid " + std::to_string(h.pid) + " (" + h.comm + ") holds " + h.node);
    e.on_this_host.push_back(who.empty() ? "no process holds an NVIDIA device node now"
                                         : util::join(who, "; "));
    e.remedy.emplace_back(
        "stop what uses the GPU (nvidia-persistenced, a display server, CUDA jobs), then "
        "'vfioctl bind' it; 'vfioctl bind' refuses while such processes exist");
}

void nvrm_no_probe(const ExplainContext& c, const Match&, Explanation& e) {
    std::vector<std::string> owners;
    for (const auto* g : c.inv.gpus())
        if (g->vendor == 0x10de && g->driver && *g->driver != "nvidia")
            owners.push_back(g->addr.short_str() + " is on " + *g->driver);
    if (!owners.empty()) e.on_this_host.push_back(util::join(owners, "; "));
    e.remedy.emplace_back("if the GPU is on vfio-pci for a VM, that is expected; 'vfioctl unbind' "
                          "gives it back to nvidia");
    e.remedy.emplace_back(
        "if nouveau holds it, blacklist nouveau (modprobe.blacklist=nouveau) and reboot");
}

void nvrm_init(const ExplainContext&, const Match&, Explanation& e) {
    e.remedy.emplace_back(
        "inside a VM this usually means the GPU's 64-bit BARs did not fit: give the guest a "
        "large 64-bit MMIO window and enough physical address bits ('vfioctl vm start' sizes them "
        "from the BARs)");
    e.remedy.emplace_back("on the host, look for Xid and AER lines in 'dmesg'");
}

void probe_einval(const ExplainContext& c, const Match& m, Explanation& e) {
    no_group(c, m, e);
}

void unsafe_irq(const ExplainContext& c, const Match&, Explanation& e) {
    e.on_this_host.push_back(std::string("interrupt remapping here: ") +
                             (!c.iommu.interrupt_remapping   ? "not exposed"
                              : *c.iommu.interrupt_remapping ? "supported"
                                                             : "not supported"));
    e.remedy.emplace_back(
        "add vfio_iommu_type1.allow_unsafe_interrupts=1 to the kernel command line (or "
        "options vfio_iommu_type1 allow_unsafe_interrupts=1 in /etc/modprobe.d), knowing that it "
        "weakens isolation");
}

// What the host's PCI tree says about an NVLink fabric, for the rules below.
void fabric_facts(const ExplainContext& c, Explanation& e) {
    auto f = pci::nvlink_fabric(c.inv);
    if (f)
        e.on_this_host.push_back(std::to_string(f->nvswitches.size()) + " NVSwitches (" +
                                 f->generation + ") and " + std::to_string(f->gpus.size()) +
                                 " NVIDIA GPUs on this machine's PCI bus");
    else
        e.on_this_host.emplace_back(
            "no NVSwitch on this machine's PCI bus: in a VM given HGX GPUs without their "
            "NVSwitches, the fabric is the host's or a service VM's Fabric Manager's to set up");
}

void cuda_not_ready(const ExplainContext& c, const Match&, Explanation& e) {
    fabric_facts(c, e);
    e.remedy.emplace_back("'nvidia-smi -q' shows each GPU's Fabric State (Completed when ready) "
                          "and 'systemctl status nvidia-fabricmanager' whether it runs");
    e.remedy.emplace_back(
        "install nvidia-fabricmanager of exactly the driver's version "
        "('nvidia-smi' shows it) and 'systemctl enable --now nvidia-fabricmanager'");
    e.remedy.emplace_back(
        "full passthrough: the VM needs every GPU and every NVSwitch ('vfioctl vm start "
        "--all-gpus --with-nvswitches') and runs Fabric Manager itself; shared NVSwitch mode: the "
        "service VM's Fabric Manager must activate the GPUs' partition before this VM starts");
}

void fm_version(const ExplainContext& c, const Match&, Explanation& e) {
    fabric_facts(c, e);
    e.remedy.emplace_back("install the nvidia-fabricmanager package of the loaded driver's "
                          "version (or the driver of Fabric Manager's), then restart "
                          "nvidia-fabricmanager; a held package version keeps them apart");
}

const std::vector<Rule>& rules() {
    static const std::vector<Rule> table = {
        {"no_iommu_group", contains("no iommu_group found"),
         "VFIO can only take a device that the kernel put in an IOMMU group; this one has none, "
         "almost always because the IOMMU is off",
         no_group},
        {"probe_failed_einval", probe_einval_match,
         "vfio-pci refused the device: without an IOMMU group it cannot take it", probe_einval},
        {"no_such_host_device", contains("no such host device"),
         "QEMU was given a PCI address that has no device in sysfs", no_device},
        {"group_not_viable", not_viable_match,
         "every endpoint of an IOMMU group must be bound to vfio-pci (or to no driver) before any "
         "of them can "
         "be passed through",
         not_viable},
        {"vfio_group_busy", vfio_node_then("device or resource busy"),
         "another process (usually another QEMU) has the IOMMU group open", vfio_busy},
        {"vfio_group_permission", vfio_node_then("permission denied"),
         "the user running QEMU may not open the group's device node", vfio_perm},
        {"map_dma_enomem",
         any_of({then("vfio_map_dma", "cannot allocate memory"), then("vfio_dma_map(", "= -12"),
                 then("vfio_pin_pages", "-12"), contains("rlimit_memlock")}),
         "VFIO pins all guest RAM; the locked-memory limit of the QEMU process is below the "
         "guest's RAM",
         memlock},
        {"bar_cannot_reserve", reserve_match,
         "a BAR of the device is already claimed by another driver, usually the firmware "
         "framebuffer",
         bar_reserve},
        {"bad_host_property", bad_host_match,
         "the host= value given to -device vfio-pci is not a PCI address QEMU accepts", bad_host},
        {"container_set_iommu", contains("failed to set iommu for container"),
         "the VFIO container could not attach an IOMMU backend to the group", container},
        {"no_iommu_models", contains("no available iommu models"),
         "no VFIO IOMMU backend (vfio_iommu_type1) is loaded", no_models},
        {"unsafe_interrupts", contains("no interrupt remapping support"),
         "the IOMMU cannot remap interrupts; vfio refuses to assign devices unless told it is "
         "acceptable",
         unsafe_irq},
        {"nvrm_in_use", then("nvrm:", "non-zero usage count"),
         "the NVIDIA driver was asked to let go of a GPU that processes still use", nvrm_in_use},
        {"nvrm_probe_not_called", then("nvrm:", "probe routine was not called"),
         "another driver owns the NVIDIA GPU, so the nvidia driver did not take it", nvrm_no_probe},
        {"nvrm_init_failed", then("nvrm:", "rminitadapter failed"),
         "the NVIDIA driver could not initialise the GPU", nvrm_init},
        {"cuda_system_not_ready",
         any_of({contains("system not yet initialized"), contains("cudaerrorsystemnotready")}),
         "CUDA error 802: on an NVSwitch system CUDA refuses work until Fabric Manager has set up "
         "the NVLink fabric (it is not running, failed, or is another version than the driver)",
         cuda_not_ready},
        {"fabric_manager_version_mismatch", then("fabric manager", "don't match"),
         "Fabric Manager and the NVIDIA driver are different versions; Fabric Manager refuses to "
         "start, so the NVLink fabric stays down (CUDA error 802)",
         fm_version},
    };
    return table;
}

} // namespace

std::vector<std::string> known_messages() {
    std::vector<std::string> ids;
    for (const auto& r : rules())
        ids.emplace_back(r.id);
    return ids;
}

std::vector<Explanation> explain(std::string_view text, const ExplainContext& ctx) {
    std::vector<Explanation> out;
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& raw : util::split(text, '\n')) {
        std::string line(util::trim(raw));
        if (line.empty()) continue;
        const Line l{line, util::to_lower(line)};
        for (const auto& r : rules()) {
            auto m = r.match(l);
            if (!m) continue;
            Explanation e;
            e.id = r.id;
            e.matched = line;
            e.meaning = r.meaning;
            e.device = find_bdf(line);
            if (!seen.insert({e.id, e.device ? e.device->str() : ""}).second) break;
            r.fill(ctx, *m, e);
            out.push_back(std::move(e));
            break; // one explanation per line
        }
    }
    return out;
}

} // namespace vfioctl::iommu
