#include "iommu/explain.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <functional>
#include <regex>
#include <set>

namespace vfioctl::iommu {

namespace {

using Fill = std::function<void(const ExplainContext&, const std::smatch&, Explanation&)>;

struct Rule {
    const char* id;
    std::regex pattern;
    const char* meaning;
    Fill fill;
};

const char* const k_bdf = R"(((?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]))";

std::regex rx(const std::string& s) { return std::regex(s, std::regex::icase | std::regex::optimize); }

// The first PCI address in the line, if any.
std::optional<pci::PciAddress> find_bdf(const std::string& line) {
    static const std::regex bdf(k_bdf);
    std::smatch m;
    if (!std::regex_search(line, m, bdf)) return std::nullopt;
    auto a = pci::PciAddress::parse(m[1].str());
    return a ? std::optional(*a) : std::nullopt;
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
    s += d->iommu_group ? ", IOMMU group " + std::to_string(*d->iommu_group) : ", in no IOMMU group";
    return s;
}

// The remedy for an IOMMU that is off, from the diagnosis.
void iommu_off_remedy(const ExplainContext& c, Explanation& e) {
    if (c.iommu.cmdline_fixable) {
        e.remedy.emplace_back("vfioctl iommu enable   (turns the IOMMU on in the boot configuration, with a backup)");
        e.remedy.emplace_back("reboot");
        e.remedy.emplace_back("vfioctl status         (check that passthrough WILL WORK)");
    } else if (c.iommu.platform == "none") {
        e.remedy.emplace_back("enable VT-d (Intel) or AMD-Vi (AMD) in the firmware setup, then boot and run 'vfioctl status'");
    } else {
        e.remedy.emplace_back("run 'vfioctl status' and look for DMAR or AMD-Vi lines in 'dmesg'");
    }
}

void no_group(const ExplainContext& c, const std::smatch&, Explanation& e) {
    if (!c.iommu.enabled) {
        if (e.device) e.on_this_host.push_back(describe_device(c, *e.device));
        e.on_this_host.push_back("the IOMMU is off on this host: " + c.iommu.off_cause.value_or("reason unknown"));
        for (const auto& n : c.cmdline.notes) e.on_this_host.push_back("note: " + n);
        iommu_off_remedy(c, e);
        return;
    }
    e.on_this_host.push_back("the IOMMU is on here (" + std::to_string(c.iommu.group_count) + " groups)");
    if (e.device) {
        e.on_this_host.push_back(describe_device(c, *e.device));
        const pci::PciDevice* d = c.inv.find(*e.device);
        if (!d) e.remedy.emplace_back("check the address with 'vfioctl groups --all'");
        else if (!d->iommu_group)
            e.remedy.emplace_back("this device is outside the IOMMU's scope: check the firmware's DMAR/IVRS "
                                  "settings; the message was probably logged before the last reboot");
        else e.remedy.emplace_back("the device has a group now: the message predates the IOMMU being on; retry");
    } else {
        e.remedy.emplace_back("retry: the IOMMU is on now; 'vfioctl groups' shows the groups");
    }
}

void no_device(const ExplainContext& c, const std::smatch&, Explanation& e) {
    if (e.device) e.on_this_host.push_back(describe_device(c, *e.device));
    std::vector<std::string> gpus;
    for (const auto* g : c.inv.gpus()) gpus.push_back(g->addr.str() + " [" + g->id().str() + "]");
    if (!gpus.empty()) e.on_this_host.push_back("GPUs on this host: " + util::join(gpus, ", "));
    e.remedy.emplace_back("give QEMU an address that exists: 'vfioctl groups --gpu' lists them (domain included)");
    e.remedy.emplace_back("if the device vanished, look in 'dmesg' for 'fell off the bus' or AER errors");
}

void not_viable(const ExplainContext& c, const std::smatch& m, Explanation& e) {
    auto n = util::parse_dec(m[1].str());
    if (n) e.group = static_cast<int>(*n);
    const IommuGroup* g = nullptr;
    for (const auto& x : c.groups)
        if (e.group && x.number == *e.group) g = &x;
    if (!g) {
        e.on_this_host.push_back("there is no IOMMU group " + m[1].str() + " on this host now");
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
    if (wrong.empty()) e.on_this_host.push_back("every endpoint of group " + m[1].str() + " is on vfio-pci or unbound now");
    else e.on_this_host.push_back("group " + m[1].str() + " members not on vfio-pci: " + util::join(wrong, "; "));
    auto v = assess(*g, std::nullopt, c.inv, c.facts);
    for (const auto& cu : v.critical)
        e.on_this_host.push_back(cu.addr.short_str() + " in the same group is host-critical: " + cu.reason());
    if (v.critical.empty())
        e.remedy.push_back("vfioctl bind " + (e.device ? e.device->short_str() : "DEVICE") +
                           "   (moves every endpoint of the group to vfio-pci, and 'unbind' gives them back)");
    else
        e.remedy.emplace_back("the group holds a device the host cannot lose: move the card to another slot");
}

void vfio_busy(const ExplainContext& c, const std::smatch& m, Explanation& e) {
    e.group = static_cast<int>(util::parse_dec(m[1].str()).value_or(0));
    std::string who = holders_of(c, "/dev/vfio/" + m[1].str());
    e.on_this_host.push_back(who.empty() ? "no process holds /dev/vfio/" + m[1].str() + " now"
                                         : "/dev/vfio/" + m[1].str() + " is held by " + who);
    e.remedy.emplace_back("stop the other VM using the group ('vfioctl vm stop NAME', or end the process named above)");
}

void vfio_perm(const ExplainContext&, const std::smatch& m, Explanation& e) {
    e.group = static_cast<int>(util::parse_dec(m[1].str()).value_or(0));
    e.remedy.emplace_back("run QEMU as root, or give its user the group node: chown USER /dev/vfio/" + m[1].str() +
                          " (a udev rule makes it last)");
    e.remedy.emplace_back("an unprivileged QEMU also needs a locked-memory limit as large as the guest's RAM");
}

void memlock(const ExplainContext&, const std::smatch&, Explanation& e) {
    e.remedy.emplace_back("raise the locked-memory limit to at least the guest's RAM: 'ulimit -l unlimited' in the "
                          "shell that starts QEMU, or LimitMEMLOCK=infinity in a systemd unit");
    e.remedy.emplace_back("or run QEMU as root ('vfioctl vm start' does)");
}

void bar_reserve(const ExplainContext& c, const std::smatch&, Explanation& e) {
    if (e.device) {
        e.on_this_host.push_back(describe_device(c, *e.device));
        if (const pci::PciDevice* d = c.inv.find(*e.device); d && d->boot_vga)
            e.on_this_host.push_back("it is the boot VGA: the firmware framebuffer (efifb/simplefb) holds its BAR");
    }
    e.remedy.emplace_back("keep the host's framebuffer off the card: add 'video=efifb:off' (or "
                          "'initcall_blacklist=sysfb_init' on 5.15+) to the kernel command line, then reboot");
    e.remedy.emplace_back("see which driver holds the range: grep -i -A3 'PCI Bus' /proc/iomem (as root)");
}

void bad_host(const ExplainContext&, const std::smatch& m, Explanation& e) {
    std::string value = m[1].str();
    auto a = pci::PciAddress::parse(value);
    if (a) e.on_this_host.push_back("'" + value + "' parses as " + a->str() + "; QEMU wants exactly that form");
    else e.on_this_host.push_back(a.error().message);
    e.remedy.emplace_back("write host=DOMAIN:BUS:DEVICE.FUNCTION, e.g. -device vfio-pci,host=0000:8a:00.0");
}

void container(const ExplainContext& c, const std::smatch&, Explanation& e) {
    if (!c.iommu.enabled) {
        e.on_this_host.push_back("the IOMMU is off: " + c.iommu.off_cause.value_or("reason unknown"));
        iommu_off_remedy(c, e);
        return;
    }
    if (c.iommu.interrupt_remapping == false && !c.cmdline.allow_unsafe_interrupts.value_or(false)) {
        e.on_this_host.emplace_back("this IOMMU has no interrupt remapping and allow_unsafe_interrupts is off");
        e.remedy.emplace_back("add vfio_iommu_type1.allow_unsafe_interrupts=1 (weakens isolation against "
                              "interrupt injection) or use a platform with interrupt remapping");
    }
    for (const auto& mod : c.facts.vfio_modules)
        if (mod.name == "vfio_iommu_type1" && !mod.loaded)
            e.on_this_host.emplace_back("vfio_iommu_type1 is not loaded");
    e.remedy.emplace_back("load the IOMMU backend: modprobe vfio_iommu_type1 ('vfioctl bind' loads it)");
}

void no_models(const ExplainContext& c, const std::smatch&, Explanation& e) {
    for (const auto& mod : c.facts.vfio_modules)
        if (mod.name == "vfio_iommu_type1")
            e.on_this_host.push_back(std::string("vfio_iommu_type1 is ") +
                                     (!mod.available ? "not available for this kernel"
                                      : mod.loaded   ? "loaded"
                                                     : "available but not loaded"));
    if (!c.iommu.enabled) e.on_this_host.push_back("the IOMMU is off: " + c.iommu.off_cause.value_or("?"));
    e.remedy.emplace_back("modprobe vfio_iommu_type1 ('vfioctl bind' loads it)");
    if (!c.iommu.enabled) iommu_off_remedy(c, e);
}

void nvrm_in_use(const ExplainContext& c, const std::smatch&, Explanation& e) {
    std::vector<std::string> who;
    for (const auto& h : c.facts.holders)
        if (util::starts_with(h.node, "/dev/nvidia"))
            who.push_back("pid " + std::to_string(h.pid) + " (" + h.comm + ") holds " + h.node);
    e.on_this_host.push_back(who.empty() ? "no process holds an NVIDIA device node now"
                                         : util::join(who, "; "));
    e.remedy.emplace_back("stop what uses the GPU (nvidia-persistenced, a display server, CUDA jobs), then "
                          "'vfioctl bind' it; 'vfioctl bind' refuses while such processes exist");
}

void nvrm_no_probe(const ExplainContext& c, const std::smatch&, Explanation& e) {
    std::vector<std::string> owners;
    for (const auto* g : c.inv.gpus())
        if (g->vendor == 0x10de && g->driver && *g->driver != "nvidia")
            owners.push_back(g->addr.short_str() + " is on " + *g->driver);
    if (!owners.empty()) e.on_this_host.push_back(util::join(owners, "; "));
    e.remedy.emplace_back("if the GPU is on vfio-pci for a VM, that is expected; 'vfioctl unbind' gives it back to nvidia");
    e.remedy.emplace_back("if nouveau holds it, blacklist nouveau (modprobe.blacklist=nouveau) and reboot");
}

void nvrm_init(const ExplainContext&, const std::smatch&, Explanation& e) {
    e.remedy.emplace_back("inside a VM this usually means the GPU's 64-bit BARs did not fit: give the guest a "
                          "large 64-bit MMIO window and enough physical address bits ('vfioctl vm start' sizes them "
                          "from the BARs)");
    e.remedy.emplace_back("on the host, look for Xid and AER lines in 'dmesg'");
}

void probe_einval(const ExplainContext& c, const std::smatch& m, Explanation& e) {
    no_group(c, m, e);
}

void unsafe_irq(const ExplainContext& c, const std::smatch&, Explanation& e) {
    e.on_this_host.push_back(std::string("interrupt remapping here: ") +
                             (!c.iommu.interrupt_remapping ? "not exposed"
                              : *c.iommu.interrupt_remapping ? "supported" : "not supported"));
    e.remedy.emplace_back("add vfio_iommu_type1.allow_unsafe_interrupts=1 to the kernel command line (or "
                          "options vfio_iommu_type1 allow_unsafe_interrupts=1 in /etc/modprobe.d), knowing that it "
                          "weakens isolation");
}

const std::vector<Rule>& rules() {
    static const std::vector<Rule> table = {
        {"no_iommu_group", rx("no iommu_group found"),
         "VFIO can only take a device that the kernel put in an IOMMU group; this one has none, "
         "almost always because the IOMMU is off",
         no_group},
        {"probe_failed_einval", rx(std::string("vfio-pci ") + k_bdf + R"(.*probe.*failed with error -22)"),
         "vfio-pci refused the device: without an IOMMU group it cannot take it", probe_einval},
        {"no_such_host_device", rx("no such host device"),
         "QEMU was given a PCI address that has no device in sysfs", no_device},
        {"group_not_viable", rx(R"(group (\d+) is not viable)"),
         "every endpoint of an IOMMU group must be bound to vfio-pci (or to no driver) before any of them can "
         "be passed through",
         not_viable},
        {"vfio_group_busy", rx(R"(/dev/vfio/(\d+)[^\n]*Device or resource busy)"),
         "another process (usually another QEMU) has the IOMMU group open", vfio_busy},
        {"vfio_group_permission", rx(R"(/dev/vfio/(\d+)[^\n]*Permission denied)"),
         "the user running QEMU may not open the group's device node", vfio_perm},
        {"map_dma_enomem",
         rx(R"(VFIO_MAP_DMA[^\n]*Cannot allocate memory|vfio_dma_map\([^\n]*= -12|vfio_pin_pages[^\n]*-12|RLIMIT_MEMLOCK)"),
         "VFIO pins all guest RAM; the locked-memory limit of the QEMU process is below the guest's RAM", memlock},
        {"bar_cannot_reserve", rx(R"(can't reserve \[(mem|io))"),
         "a BAR of the device is already claimed by another driver, usually the firmware framebuffer", bar_reserve},
        {"bad_host_property", rx(R"(Property 'vfio-pci\.host' doesn't take value '([^']*)')"),
         "the host= value given to -device vfio-pci is not a PCI address QEMU accepts", bad_host},
        {"container_set_iommu", rx("Failed to set iommu for container"),
         "the VFIO container could not attach an IOMMU backend to the group", container},
        {"no_iommu_models", rx("No available IOMMU models"),
         "no VFIO IOMMU backend (vfio_iommu_type1) is loaded", no_models},
        {"unsafe_interrupts", rx("No interrupt remapping support"),
         "the IOMMU cannot remap interrupts; vfio refuses to assign devices unless told it is acceptable", unsafe_irq},
        {"nvrm_in_use", rx(R"(NVRM:[^\n]*non-zero usage count)"),
         "the NVIDIA driver was asked to let go of a GPU that processes still use", nvrm_in_use},
        {"nvrm_probe_not_called", rx(R"(NVRM:[^\n]*probe routine was not called)"),
         "another driver owns the NVIDIA GPU, so the nvidia driver did not take it", nvrm_no_probe},
        {"nvrm_init_failed", rx(R"(NVRM:[^\n]*RmInitAdapter failed)"),
         "the NVIDIA driver could not initialise the GPU", nvrm_init},
    };
    return table;
}

} // namespace

std::vector<std::string> known_messages() {
    std::vector<std::string> ids;
    for (const auto& r : rules()) ids.emplace_back(r.id);
    return ids;
}

std::vector<Explanation> explain(std::string_view text, const ExplainContext& ctx) {
    std::vector<Explanation> out;
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& raw : util::split(text, '\n')) {
        std::string line(util::trim(raw));
        if (line.empty()) continue;
        for (const auto& r : rules()) {
            std::smatch m;
            if (!std::regex_search(line, m, r.pattern)) continue;
            Explanation e;
            e.id = r.id;
            e.matched = line;
            e.meaning = r.meaning;
            e.device = find_bdf(line);
            if (!seen.insert({e.id, e.device ? e.device->str() : ""}).second) break;
            r.fill(ctx, m, e);
            out.push_back(std::move(e));
            break; // one explanation per line
        }
    }
    return out;
}

} // namespace vfioctl::iommu
