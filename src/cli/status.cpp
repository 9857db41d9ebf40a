// 'vfioctl status': the full diagnosis, text or JSON.

#include "boot/journal.hpp"
#include "boot/setup.hpp"
#include "cli/commands.hpp"
#include "cli/fabric_view.hpp"
#include "cli/health_view.hpp"
#include "cli/model.hpp"
#include "cli/numa_view.hpp"
#include "cli/persist_view.hpp"
#include "cli/settled_view.hpp"
#include "cli/trial_view.hpp"
#include "iommu/diagnosis.hpp"
#include "util/strings.hpp"
#include "vfio/journal.hpp"
#include "vfio/settled.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <sstream>

namespace vfioctl::cli {

namespace {

using nlohmann::json;

json opt(const std::optional<std::string>& s) {
    return s ? json(*s) : json(nullptr);
}
json opt(const std::optional<bool>& b) {
    return b ? json(*b) : json(nullptr);
}

// The bind journal's entries against the running boot, and the settled
// record ('recover' drops entries of an earlier boot into it).
struct BootView {
    PersistView persist;
    vfio::BootId boot;
    std::optional<boot::TrialView> trial; // none when the boot journal cannot be read
    Result<vfio::SettledRecord> settled = vfio::SettledRecord{};
    std::string settled_path;
    HealthViews health; // each GPU's health (cli/health_view.hpp)
};

// "earlier" (a reboot undid it: 'recover' settles it), "this" or "unknown"
// (the entry's boot or the running one cannot be known: never settled).
std::string entry_boot_word(const vfio::JournalEntry& e, const vfio::BootId& now) {
    if (e.boot.known_other_than(now)) return "earlier";
    if (e.boot.same_known(now)) return "this";
    return "unknown";
}

json status_json(const HostModel& m, const iommu::Diagnosis& dx, const BootView& bv) {
    const auto& f = m.facts;
    const auto& c = dx.cmdline;
    json j;
    j["kernel"] = {{"release", f.kernel_release},
                   {"cmdline", f.cmdline},
                   {"iommu_tokens", c.iommu_tokens},
                   {"intel_iommu", c.intel == boot::Switch::on    ? json("on")
                                   : c.intel == boot::Switch::off ? json("off")
                                                                  : json(nullptr)},
                   {"intel_iommu_options", c.intel_opts},
                   {"amd_iommu_options", c.amd_opts},
                   {"iommu", opt(c.iommu)},
                   {"passthrough", opt(c.passthrough)},
                   {"strict", opt(c.strict)},
                   {"vfio_pci_ids", c.vfio_pci_ids},
                   {"allow_unsafe_interrupts", opt(c.allow_unsafe_interrupts)},
                   {"blacklisted", c.blacklisted},
                   {"intel_iommu_default_on", opt(f.kernel_intel_iommu_default_on)},
                   {"notes", c.notes}};
    j["cpu"] = {{"vendor", f.cpu.vendor},
                {"virtualization", f.cpu.vmx   ? json("vmx")
                                   : f.cpu.svm ? json("svm")
                                               : json(nullptr)},
                {"hypervisor", f.cpu.hypervisor}};
    j["machine"] = {
        {"guest", f.virt.guest()},
        {"hypervisor", host::hypervisor_id(f.virt.hypervisor)},
        {"hypervisor_name",
         f.virt.guest() ? json(host::hypervisor_name(f.virt.hypervisor)) : json(nullptr)},
        {"viommu_offered", f.virt.guest() ? json(host::viommu_offer(f.virt.hypervisor) ==
                                                 host::ViommuOffer::configurable)
                                          : json(nullptr)},
        {"dmi_sys_vendor", opt(f.virt.sys_vendor)},
        {"dmi_product_name", opt(f.virt.product_name)}};
    const auto& s = dx.iommu;
    j["iommu"] = {{"platform", s.platform},
                  {"acpi_table", opt(s.acpi_table)},
                  {"enabled", s.enabled},
                  {"off_cause", opt(s.off_cause)},
                  {"units", f.iommu_units},
                  {"group_count", s.group_count},
                  {"default_domain", opt(s.default_domain)},
                  {"passthrough_mode", s.passthrough_mode},
                  {"interrupt_remapping", opt(s.interrupt_remapping)}};
    json mods = json::array();
    for (const auto& mod : f.vfio_modules)
        mods.push_back({{"name", mod.name},
                        {"available", mod.available},
                        {"builtin", mod.builtin},
                        {"loaded", mod.loaded}});
    j["vfio"] = {{"modules", mods}, {"module_list", f.module_list}, {"dev_vfio", f.dev_vfio}};
    j["kvm"] = {{"present", f.kvm.present},
                {"usable", f.kvm.usable},
                {"backend", f.kvm.backend.empty() ? json(nullptr) : json(f.kvm.backend)},
                {"reason", f.kvm.reason.empty() ? json(nullptr) : json(f.kvm.reason)},
                {"accelerator", f.kvm.usable ? "kvm" : "tcg"}};
    j["qemu"] = {{"path", opt(f.qemu_path)}, {"version", opt(f.qemu_version)}};
    json crit = json::array();
    for (const auto& cu : f.critical)
        crit.push_back({{"address", cu.addr.str()},
                        {"reason", cu.reason()},
                        {"kind", host::critical_kind_id(cu.kind)}});
    j["host_critical"] = crit;
    json gpus = json::array();
    for (const auto& g : dx.gpus) {
        json gj = device_json(*g.gpu, g.role);
        json members = json::array();
        for (const auto& a : g.group_members)
            members.push_back(a.str());
        gj["group_members"] = members;
        json go = json::array();
        for (const auto& a : g.viability.must_go_too)
            go.push_back(a.str());
        gj["must_go_too"] = go;
        gj["boot_vga"] = g.gpu->boot_vga;
        gj["verdict"] = iommu::verdict_id(g.verdict);
        gj["causes"] = g.causes;
        gj["steps"] = g.steps;
        gj["warnings"] = g.warnings;
        if (auto h = bv.health.find(g.gpu->addr); h != bv.health.end())
            gj["health"] = health_json(h->second);
        gpus.push_back(gj);
    }
    j["gpus"] = gpus;
    j["fabric"] = fabric_json(m.inv);
    json summary = json::array();
    for (const auto& r : dx.summary)
        summary.push_back({{"feature", r.feature}, {"now", r.now}, {"after", r.after}});
    j["summary"] = summary;
    j["alternatives"] = dx.alternatives;
    if (dx.next_boot) {
        const auto& nb = *dx.next_boot;
        j["boot"] = {{"loader", nb.loader},
                     {"configured_cmdline", opt(nb.configured_cmdline)},
                     {"next_cmdline", opt(nb.next_cmdline)},
                     {"reboot_pending", nb.running_known ? json(nb.reboot_pending) : json(nullptr)},
                     {"regenerate_pending", nb.regenerate_pending},
                     {"reason", nb.reason}};
        j["boot"]["trial"] = bv.trial ? trial_json(*bv.trial) : json(nullptr);
    }
    j["reboot_required"] = dx.reboot_required;
    json pending = json::array();
    for (const auto& e : m.journal)
        pending.push_back(
            {{"address", e.address},
             {"original_driver", e.original_driver ? json(*e.original_driver) : json(nullptr)},
             {"phase", e.phase},
             {"since", e.since},
             {"boot", e.boot.known() ? json(e.boot.str()) : json(nullptr)},
             {"boot_state", entry_boot_word(e, bv.boot)}});
    j["journal_pending"] = pending;
    json unknown = json::array();
    for (const auto& e : m.journal)
        if (entry_boot_word(e, bv.boot) == "unknown") unknown.push_back(e.address);
    j["journal_unknown_boot"] = unknown;
    j["boot_id"] = bv.boot.known() ? json(bv.boot.str()) : json(nullptr);
    const vfio::Settlement* last = bv.settled ? bv.settled->last() : nullptr;
    j["settled"] = {{"path", bv.settled_path},
                    {"last", last ? settlement_json(*last) : json(nullptr)},
                    {"error", bv.settled ? json(nullptr) : json(bv.settled.error().describe())}};
    j["persistent"] = persist_json(bv.persist, m.inv);
    j["verdict"] = iommu::verdict_id(dx.overall);
    j["exit_code"] = dx.exit_code();
    j["schema_version"] = k_json_schema_version;
    return j;
}

void print_text(std::ostream& o, const HostModel& m, const iommu::Diagnosis& dx, const BootView& bv,
                const NumaView& nv) {
    const auto& f = m.facts;
    const auto& s = dx.iommu;
    o << fmt::format("Kernel {}\n  command line: {}\n",
                     f.kernel_release.empty() ? "?" : f.kernel_release,
                     f.cmdline.empty() ? "(unknown)" : util::printable(f.cmdline));
    o << "  IOMMU tokens: "
      << (dx.cmdline.iommu_tokens.empty() ? "(none)" : util::join(dx.cmdline.iommu_tokens, " "))
      << "\n";
    for (const auto& n : dx.notes)
        o << "  note: " << n << "\n";

    if (dx.next_boot) {
        const auto& nb = *dx.next_boot;
        o << "\nBoot\n";
        o << fmt::format("  loader:         {}\n", nb.loader);
        o << fmt::format("  next boot:      {}\n",
                         util::printable(nb.next_cmdline.value_or("unknown")));
        o << fmt::format("  reboot pending: {}: {}\n",
                         boot::pending_word(nb.running_known, nb.reboot_pending), nb.reason);
        if (bv.trial) print_trial(o, *bv.trial, "  ");
    }

    o << "\nIOMMU\n";
    std::string virt = f.cpu.vmx ? "vmx" : f.cpu.svm ? "svm" : "no vmx/svm";
    o << fmt::format(
        "  CPU:            {} ({}{})\n", f.cpu.vendor.empty() ? "unknown" : f.cpu.vendor, virt,
        !f.virt.guest() ? ""
        : f.virt.hypervisor == host::Hypervisor::unknown
            ? std::string(", running as a guest; DMI does not name the hypervisor")
            : std::string(", running as a guest of ") + host::hypervisor_name(f.virt.hypervisor));
    o << fmt::format("  firmware:       {}\n",
                     s.acpi_table
                         ? "ACPI " + *s.acpi_table + " table present (" + s.platform + " IOMMU)"
                         : std::string("no ACPI DMAR or IVRS table"));
    o << fmt::format("  state:          {}\n",
                     s.enabled ? "ON" : "OFF: " + s.off_cause.value_or("?"));
    o << fmt::format("  units:          {}\n",
                     f.iommu_units.empty() ? "none" : util::join(f.iommu_units, " "));
    o << fmt::format("  groups:         {}\n", s.group_count);
    o << fmt::format("  default domain: {}{}\n", s.default_domain.value_or("-"),
                     s.default_domain == "identity" ? " (passthrough for host devices, iommu=pt)"
                                                    : "");
    o << fmt::format("  irq remapping:  {}\n", !s.interrupt_remapping   ? "not exposed"
                                               : *s.interrupt_remapping ? "supported"
                                                                        : "NOT supported");

    o << "\nVFIO\n  modules:";
    for (const auto& mod : f.vfio_modules)
        o << " " << mod.name << "("
          << (!mod.available ? "missing"
              : mod.builtin  ? "built in"
              : mod.loaded   ? "loaded"
                             : "not loaded")
          << ")";
    if (!f.module_list)
        o << "\n  (no /lib/modules/" << f.kernel_release
          << "/modules.dep: no modules for this kernel)";
    o << "\n  /dev/vfio/vfio: " << (f.dev_vfio ? "present" : "absent") << "\n";

    o << "\nKVM\n";
    if (f.kvm.usable)
        o << "  /dev/kvm usable (" << f.kvm.backend << "): VMs use KVM\n";
    else
        o << "  NOT usable: " << f.kvm.reason
          << "\n  VMs will fall back to TCG (software emulation, slow)\n";
    o << "\nQEMU\n  "
      << (f.qemu_path
              ? *f.qemu_path + ": " + f.qemu_version.value_or("version unknown")
              : std::string("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"))
      << "\n";

    o << "\nHost-critical devices\n";
    if (f.critical.empty()) o << "  none found\n";
    for (const auto& c : f.critical) {
        const auto* d = m.inv.find(c.addr);
        o << "  " << (d ? device_line(*d) : c.addr.str()) << "\n      " << c.reason() << "\n";
    }

    o << "\nGPUs\n";
    if (dx.gpus.empty()) o << "  none: no display-class PCI device on this host\n";
    for (size_t i = 0; i < dx.gpus.size(); ++i) {
        const auto& g = dx.gpus[i];
        o << "  GPU " << i << ": " << device_line(*g.gpu) << "\n";
        o << "    IOMMU group:  "
          << (g.gpu->iommu_group ? std::to_string(*g.gpu->iommu_group) : std::string("none"));
        if (g.group_members.size() > 1) {
            std::vector<std::string> mem;
            for (const auto& a : g.group_members)
                mem.push_back(a.short_str());
            o << " (" << util::join(mem, ", ") << ")";
        }
        o << "\n    host use:     ";
        std::vector<std::string> uses;
        if (g.gpu->driver && *g.gpu->driver != "vfio-pci")
            uses.push_back("driver " + *g.gpu->driver + " bound");
        if (g.gpu->driver == std::optional<std::string>("vfio-pci"))
            uses.emplace_back("on vfio-pci (ready for a VM)");
        for (const auto& u : g.role.in_use)
            uses.push_back(u.what());
        for (const auto& c : g.role.critical)
            uses.push_back(c.reason());
        o << (uses.empty() ? "none" : util::join(uses, "; ")) << "\n";
        o << "    passthrough:  " << iommu::verdict_text(g.verdict) << "\n";
        for (const auto& c : g.causes)
            o << "    cause:        " << c << "\n";
        for (size_t i = 0; i < g.steps.size(); ++i)
            o << "    step " << i + 1 << ":       " << g.steps[i] << "\n";
        for (const auto& w : g.warnings)
            o << "    warning:      " << w << "\n";
        if (auto h = bv.health.find(g.gpu->addr); h != bv.health.end())
            print_health(o, h->second, "    ");
    }

    o << fabric_text(m.inv);
    o << numa_text(nv);

    o << "\nSummary for this host\n";
    o << fmt::format("  {:<20} {:<28} {}\n", "", "now", "after the steps");
    for (const auto& r : dx.summary)
        o << fmt::format("  {:<20} {:<28} {}\n", r.feature, r.now, r.after);

    o << "\nIf you do not need passthrough\n";
    for (const auto& a : dx.alternatives)
        o << "  - " << a << "\n";

    if (!m.journal.empty()) {
        o << "\nDevices vfioctl moved to vfio-pci (journal)\n";
        for (const auto& e : m.journal)
            o << "  " << e.address << ": was on " << e.original_driver.value_or("no driver") << ", "
              << (e.phase == "bound" ? "bound to vfio-pci" : "left mid-change (" + e.phase + ")")
              << " since " << e.since
              << (entry_boot_word(e, bv.boot) == "earlier"
                      ? "; from an earlier boot, which gave it back: 'vfioctl recover' settles it"
                  : entry_boot_word(e, bv.boot) == "unknown"
                      ? "; its boot is unknown: never settled, 'vfioctl recover' gives it back"
                      : "")
              << "\n";
        o << "  give back with 'vfioctl unbind --all'"
          << (std::any_of(m.journal.begin(), m.journal.end(),
                          [](const auto& e) { return e.phase != "bound"; })
                  ? "; a change was interrupted: run 'vfioctl recover'"
                  : "")
          << "\n";
    }

    if (const std::string p = persist_text(bv.persist, m.inv); !p.empty())
        o << "\nPersistent bindings (at every boot)\n" << p;

    if (!bv.settled) {
        o << "\nSettled after a reboot\n  the record cannot be read: "
          << util::printable(bv.settled.error().describe()) << "\n";
    } else if (const vfio::Settlement* last = bv.settled->last()) {
        o << "\nSettled after a reboot (" << bv.settled_path << ")\n";
        std::istringstream lines(settlement_text(*last));
        for (std::string line; std::getline(lines, line);)
            o << "  " << util::printable(line) << "\n";
    }

    o << "\nVerdict: GPU passthrough " << iommu::verdict_text(dx.overall);
    if (dx.gpus.empty()) o << " (no GPU)";
    o << "\n";
}

} // namespace

Command status_command() {
    return {
        "status", "diagnose this host: IOMMU, VFIO, KVM, QEMU and a passthrough verdict per GPU",
        [](CLI::App& sub, const services::Paths& paths) {
            auto state_dir = std::make_shared<std::string>(paths.state_dir);
            sub.add_option("--state-dir", *state_dir, "where the bind journal lives (under --root)")
                ->capture_default_str()
                ->check(state_dir_check());
            return [state_dir](Context& ctx) {
                auto m = load_host(ctx, *state_dir);
                if (!m) return render(ctx, failed(m.error()));
                auto bs = boot::inspect_boot(ctx.host);
                iommu::NextBoot nb = next_boot_of(bs);
                auto dx = iommu::diagnose(m->facts, m->inv, m->groups, &nb);
                BootView bv;
                bv.persist = read_persist_view(ctx.host, m->inv, bs.next_cmdline);
                bv.boot = vfio::current_boot(ctx.host);
                if (auto bj = boot::load_journal(ctx.host, *state_dir))
                    bv.trial = boot::trial_view(ctx.host, *bj, bs.setup);
                bv.settled = vfio::load_settled(ctx.host, *state_dir);
                bv.settled_path = vfio::settled_path(*state_dir);
                bv.health = gpu_health(ctx.host, *m);
                std::vector<std::string> gpu_addrs;
                for (const auto& g : dx.gpus)
                    gpu_addrs.push_back(g.gpu->addr.str());
                const NumaView nv = read_numa_view(ctx.host, gpu_addrs);
                Report r;
                r.exit_code = dx.exit_code();
                if (ctx.json) {
                    r.json = status_json(*m, dx, bv);
                    r.json["numa"] = numa_json(nv);
                } else {
                    std::ostringstream text;
                    print_text(text, *m, dx, bv, nv);
                    r.text = text.str();
                }
                return render(ctx, r);
            };
        }};
}

} // namespace vfioctl::cli
