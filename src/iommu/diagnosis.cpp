#include "iommu/diagnosis.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <map>

namespace vfioctl::iommu {

const char* verdict_id(Verdict v) {
    switch (v) {
    case Verdict::will_work:
        return "will_work";
    case Verdict::will_work_after:
        return "will_work_after";
    case Verdict::will_not_work:
        return "will_not_work";
    case Verdict::unknown:
        return "unknown";
    }
    return "?";
}

const char* verdict_text(Verdict v) {
    switch (v) {
    case Verdict::will_work:
        return "WILL WORK";
    case Verdict::will_work_after:
        return "WILL NOT WORK now; WILL WORK AFTER the steps below";
    case Verdict::will_not_work:
        return "WILL NOT WORK";
    case Verdict::unknown:
        return "UNKNOWN (a fact it depends on could not be read)";
    }
    return "?";
}

namespace {

const char* const k_enable_step =
    "run 'vfioctl iommu enable' (edits the boot configuration, keeps a backup)";
const char* const k_reboot_step = "reboot";

std::string firmware_name(const std::string& vendor) {
    if (vendor == "AuthenticAMD" || vendor == "HygonGenuine")
        return "AMD-Vi (\"IOMMU\" or \"SVM/IOMMU\")";
    if (vendor == "GenuineIntel")
        return "VT-d (\"Intel Virtualization Technology for Directed I/O\")";
    return "VT-d (Intel) or AMD-Vi (AMD)";
}

// Inside a VM a missing IOMMU is the hypervisor's missing virtual IOMMU: the
// cause and the steps name the VM's settings, never the firmware setup.
void guest_without_iommu(const host::SystemFacts& f, const kernel::IommuCmdline& cmd,
                         IommuState& s) {
    const host::Hypervisor h = f.virt.hypervisor;
    const std::string name = host::hypervisor_name(h);
    s.off_cause = "this is a virtual machine (" + name +
                  ") and its hypervisor gives it no virtual IOMMU (no ACPI DMAR or IVRS "
                  "table); no firmware setting inside the VM changes that";
    if (host::viommu_offer(h) == host::ViommuOffer::not_offered) {
        *s.off_cause += ": " + name +
                        " offers its VMs no virtual IOMMU, so this VM cannot pass a device on. "
                        "Use the GPU inside this VM as it is, or run vfioctl on a bare-metal "
                        "machine" +
                        (h == host::Hypervisor::aws_ec2 ? std::string(" (an EC2 *.metal instance)")
                                                        : std::string());
        return;
    }
    // The usual virtual IOMMU is Intel's (QEMU intel-iommu, VMware vVT-d): a
    // kernel that leaves it off needs intel_iommu=on too.
    if (!kernel::iommu_on(cmd, kernel::Platform::intel,
                          f.kernel_intel_iommu_default_on.value_or(false)))
        s.off_steps.emplace_back(
            "add intel_iommu=on to this VM's kernel command line: 'vfioctl iommu enable --iommu "
            "intel' (this kernel leaves an Intel IOMMU off without it; the change waits for the "
            "VM's next start)");
    std::string how;
    switch (h) {
    case host::Hypervisor::qemu_kvm:
        how = "shut this VM down and give it a virtual IOMMU on the host that runs it: QEMU "
              "'-machine q35,kernel-irqchip=split -device intel-iommu,intremap=on,caching-mode=on' "
              "(libvirt: <iommu model='intel'><driver intremap='on' caching_mode='on'/></iommu> "
              "with <ioapic driver='qemu'/>; Proxmox VE 8: 'viommu=intel' in the machine "
              "setting)";
        break;
    case host::Hypervisor::vmware:
        how = "shut this VM down and turn on 'Expose IOMMU to the guest OS' in its CPU settings "
              "(EFI firmware, virtual hardware 13 or later)";
        break;
    case host::Hypervisor::virtualbox:
        how = "shut this VM down and give it an IOMMU: 'VBoxManage modifyvm VM --chipset ich9 "
              "--iommu intel' (or amd)";
        break;
    case host::Hypervisor::openstack:
        how = "ask the cloud's operators for a flavor or image with a virtual IOMMU (Nova: "
              "'hw:viommu_model=intel' on the q35 machine type, Zed or later) and rebuild the "
              "instance on it";
        break;
    default:
        how =
            "shut this VM down and give it a virtual IOMMU in its hypervisor's settings (QEMU: "
            "'-machine q35,kernel-irqchip=split -device intel-iommu,intremap=on,caching-mode=on')";
        break;
    }
    s.off_steps.push_back(how + ", then start it and run 'vfioctl status' again" +
                          (h == host::Hypervisor::unknown
                               ? "; a hypervisor that has none (Firecracker) cannot: run vfioctl "
                                 "on the physical host instead"
                               : ""));
}
} // namespace

IommuState iommu_state(const host::SystemFacts& f, const kernel::IommuCmdline& cmd,
                       const std::vector<IommuGroup>& groups) {
    IommuState s;
    // Decide from the firmware tables that exist, not from the CPU vendor:
    // an emulated CPU can claim AMD while the IOMMU is Intel's.
    bool intel_units =
        std::any_of(f.iommu_units.begin(), f.iommu_units.end(),
                    [](const std::string& u) { return util::starts_with(u, "dmar"); });
    bool amd_units = std::any_of(f.iommu_units.begin(), f.iommu_units.end(),
                                 [](const std::string& u) { return util::starts_with(u, "ivhd"); });
    if (f.acpi_dmar && (!f.acpi_ivrs || intel_units))
        s.platform = "intel", s.acpi_table = "DMAR";
    else if (f.acpi_ivrs)
        s.platform = "amd", s.acpi_table = "IVRS";
    else if (!f.iommu_units.empty())
        s.platform = "other";
    else
        s.platform = "none";
    if (s.platform == "other" && amd_units) s.platform = "amd";
    s.group_count = static_cast<int>(groups.size());
    s.enabled = !f.iommu_units.empty() || !groups.empty();
    s.interrupt_remapping = f.interrupt_remapping;
    s.passthrough_mode = s.enabled && cmd.passthrough.value_or(false);
    std::map<std::string, int> types;
    for (const auto& g : groups)
        if (!g.type.empty()) ++types[g.type];
    if (!types.empty())
        s.default_domain = std::max_element(types.begin(), types.end(), [](auto& a, auto& b) {
                               return a.second < b.second;
                           })->first;
    if (s.enabled) return s;

    if (s.platform == "none") {
        s.hypervisor = f.virt.hypervisor;
        if (f.virt.guest()) {
            guest_without_iommu(f, cmd, s);
            return s;
        }
        s.off_cause = "the firmware describes no IOMMU (no ACPI DMAR or IVRS table): " +
                      firmware_name(f.cpu.vendor) +
                      " is off in the firmware setup, or the machine has no IOMMU";
        s.off_steps.push_back(
            "enable " + firmware_name(f.cpu.vendor) +
            " in the firmware (BIOS/UEFI) setup, then run 'vfioctl status' again");
        return s;
    }
    s.cmdline_fixable = true;
    if (cmd.iommu_off) {
        s.off_cause = "`iommu=off` on the kernel command line";
    } else if (s.platform == "intel" && cmd.intel == kernel::Switch::off) {
        s.off_cause = "`intel_iommu=off` on the kernel command line";
    } else if (s.platform == "intel" && cmd.intel == kernel::Switch::unset &&
               !f.kernel_intel_iommu_default_on.value_or(false)) {
        s.off_cause = "`intel_iommu=on` is missing from the kernel command line, and this kernel "
                      "leaves the Intel IOMMU off by default";
    } else if (s.platform == "amd" && cmd.amd == kernel::Switch::off) {
        s.off_cause = "`amd_iommu=off` on the kernel command line";
    } else {
        s.cmdline_fixable = false;
        s.off_cause = "the firmware has an " + *s.acpi_table +
                      " table and the command line does not turn the IOMMU off, yet the kernel "
                      "created no IOMMU units: the kernel lacks IOMMU support or its driver failed "
                      "(look for DMAR or AMD-Vi lines in 'dmesg')";
    }
    return s;
}

Diagnosis diagnose(const host::SystemFacts& f, const pci::Inventory& inv,
                   const std::vector<IommuGroup>& groups, const NextBoot* next) {
    Diagnosis dx;
    dx.cmdline = kernel::interpret(kernel::tokenize(f.cmdline));
    dx.iommu = iommu_state(f, dx.cmdline, groups);
    dx.notes = dx.cmdline.notes;
    const IommuState& s = dx.iommu;

    // What the boot configuration already holds for the next boot.
    std::optional<bool> next_on;
    if (next) {
        dx.next_boot = *next;
        if (next->next_cmdline && (s.platform == "intel" || s.platform == "amd")) {
            auto nc = kernel::interpret(kernel::tokenize(*next->next_cmdline));
            next_on = kernel::iommu_on(
                nc, s.platform == "intel" ? kernel::Platform::intel : kernel::Platform::amd,
                f.kernel_intel_iommu_default_on.value_or(false));
        }
        std::string params = util::join(kernel::iommu_params(next->next_cmdline.value_or("")), " ");
        if (!s.enabled && s.cmdline_fixable && next_on == true)
            dx.notes.push_back("the boot configuration already turns the IOMMU on (next boot: " +
                               params + "): only a reboot is missing");
        if (s.enabled && next_on == false && next->reboot_pending)
            dx.notes.push_back("the next boot turns the IOMMU off (" +
                               (params.empty() ? "no IOMMU parameters" : params) +
                               "): passthrough stops working after a reboot; 'vfioctl iommu "
                               "revert' undoes the change");
    }

    bool vfio_ok = true;
    std::vector<std::string> missing_modules;
    for (const auto& m : f.vfio_modules) {
        if (m.available) continue;
        if (m.name == "vfio_pci_core") continue; // only kernels since 5.16 split it out
        vfio_ok = false;
        missing_modules.push_back(m.name);
    }

    for (const pci::PciDevice* gpu : inv.gpus()) {
        GpuDiagnosis g;
        g.gpu = gpu;
        g.role = role_of(*gpu, inv, f);
        bool fixable = true;
        if (!s.enabled) {
            g.causes.push_back(*s.off_cause);
            if (s.cmdline_fixable && next_on == true) {
                if (next->regenerate_pending && !next->regenerate_command.empty())
                    g.steps.push_back(
                        "run '" + next->regenerate_command +
                        "' (the boot loader's file does not have the IOMMU parameters yet)");
                g.steps.emplace_back(k_reboot_step);
            } else if (s.cmdline_fixable) {
                g.steps.emplace_back(k_enable_step);
                g.steps.emplace_back(k_reboot_step);
            } else {
                fixable = false;
                g.steps_fix = !s.off_steps.empty();
                g.steps.insert(g.steps.end(), s.off_steps.begin(), s.off_steps.end());
            }
        } else if (!gpu->iommu_group) {
            fixable = false;
            g.steps_fix = false;
            g.causes.emplace_back("the IOMMU is on but this device has no IOMMU group (the IOMMU "
                                  "does not cover it: check the firmware's DMAR/IVRS scope)");
        } else {
            const IommuGroup* grp = nullptr;
            for (const auto& x : groups)
                if (x.number == *gpu->iommu_group) grp = &x;
            if (grp) {
                g.group_members = grp->devices;
                g.viability = assess(*grp, gpu->addr, inv, f);
            } else {
                g.group_members = {gpu->addr};
                g.viability.viable = true;
                g.viability.isolated = true;
            }
            for (const auto& c : g.viability.critical) {
                fixable = false;
                g.causes.push_back("IOMMU group " + std::to_string(*gpu->iommu_group) + " holds " +
                                   c.addr.short_str() +
                                   ", which the host cannot lose: " + c.reason());
            }
            if (!g.viability.critical.empty())
                g.steps.emplace_back(
                    "move the card to a slot whose IOMMU group holds nothing the host "
                    "needs (see 'vfioctl groups'), or enable ACS in the firmware");
            for (const auto& u : g.viability.unknown)
                g.warnings.push_back("group member " + u.str() +
                                     " is listed by the kernel but could not be read");
            std::vector<std::string> others;
            for (const auto& a : g.viability.must_go_too)
                if (!a.same_slot(gpu->addr)) others.push_back(a.short_str());
            if (!others.empty())
                g.warnings.push_back("IOMMU group " + std::to_string(*gpu->iommu_group) +
                                     " is not isolated: " + util::join(others, ", ") +
                                     " must go to vfio-pci together with the GPU");
        }
        if (!vfio_ok) {
            fixable = false;
            g.causes.push_back("the vfio modules (" + util::join(missing_modules, ", ") +
                               ") are not available for kernel " + f.kernel_release);
            g.steps.emplace_back(
                "boot a kernel built with VFIO (CONFIG_VFIO, CONFIG_VFIO_PCI), such as "
                "the distribution's standard kernel, then run 'vfioctl status' again");
        }
        for (const auto& use : g.role.in_use) {
            if (use.kind != host::InUseKind::holder_process) continue;
            g.causes.push_back("the host is using it: " + use.what());
            // One step per process, however many nodes it holds.
            std::string step =
                "stop that process (pid " + std::to_string(use.pid) + " (" + use.comm + "))";
            if (std::find(g.steps.begin(), g.steps.end(), step) == g.steps.end())
                g.steps.push_back(step);
        }
        for (const auto& c : g.role.critical)
            if (c.kind != host::CriticalKind::boot_vga || g.viability.critical.empty())
                if (std::find(g.viability.critical.begin(), g.viability.critical.end(), c) ==
                    g.viability.critical.end())
                    g.warnings.push_back("the host uses this GPU: " + c.reason());
        if (s.enabled && s.interrupt_remapping == false &&
            !dx.cmdline.allow_unsafe_interrupts.value_or(false))
            g.warnings.emplace_back(
                "interrupt remapping is off: vfio refuses MSI interrupts unless "
                "vfio_iommu_type1.allow_unsafe_interrupts=1");
        if (g.causes.empty())
            g.verdict = Verdict::will_work;
        else if (fixable)
            g.verdict = Verdict::will_work_after;
        else
            g.verdict = Verdict::will_not_work;
        // Unreadable groups hide members (a root disk) that would make it
        // fail: only a "no" stands; a "yes" becomes unknown.
        if (f.groups_unreadable && g.verdict != Verdict::will_not_work) {
            g.verdict = Verdict::unknown;
            g.causes.push_back("the IOMMU groups cannot be read (" + *f.groups_unreadable +
                               "), so which devices share this GPU's group is unknown");
            g.steps.emplace_back(
                "check by hand: 'ls -l /sys/kernel/iommu_groups/*/devices' as root, then run "
                "'vfioctl status' again");
        }
        if (std::find(g.steps.begin(), g.steps.end(), k_reboot_step) != g.steps.end())
            dx.reboot_required = true;
        if (!s.enabled && s.hypervisor != host::Hypervisor::none && !s.off_steps.empty())
            dx.reboot_required = true; // the VM starts again with its virtual IOMMU
        dx.gpus.push_back(std::move(g));
    }

    if (next && next->reboot_pending) dx.reboot_required = true;

    // The best GPU's verdict: works, works after steps, unknown, does not work.
    auto rank = [](Verdict v) {
        switch (v) {
        case Verdict::will_work:
            return 3;
        case Verdict::will_work_after:
            return 2;
        case Verdict::unknown:
            return 1;
        case Verdict::will_not_work:
            return 0;
        }
        return 0;
    };
    dx.overall = Verdict::will_not_work;
    for (const auto& g : dx.gpus)
        if (rank(g.verdict) > rank(dx.overall)) dx.overall = g.verdict;

    // The seed's summary table, for this host.
    bool host_gpu = std::any_of(dx.gpus.begin(), dx.gpus.end(), [](const GpuDiagnosis& g) {
        return g.gpu->driver && *g.gpu->driver != "vfio-pci";
    });
    // "After the steps" means after every step listed, vfioctl's or not: a
    // GPU whose causes all have a step works then.
    std::string after = "Fails";
    for (const auto& g : dx.gpus) {
        if (g.verdict == Verdict::will_work || g.verdict == Verdict::will_work_after ||
            (g.verdict == Verdict::will_not_work && g.steps_fix)) {
            after = "Works";
            break;
        }
        if (g.verdict == Verdict::unknown) after = "Unknown";
    }
    auto yes = [](bool b) { return std::string(b ? "Works" : "Fails"); };
    std::string no_gpu = dx.gpus.empty() ? "No GPU" : "";
    dx.summary.push_back({"Host GPU usage",
                          dx.gpus.empty() ? no_gpu : (host_gpu ? "Works" : "Not on a host driver"),
                          dx.gpus.empty() ? no_gpu : "Works until the GPU is given to a VM"});
    dx.summary.push_back({"VM GPU passthrough",
                          dx.gpus.empty() ? no_gpu : yes(dx.overall == Verdict::will_work),
                          dx.gpus.empty() ? no_gpu : after});
    bool vfio_now = s.enabled && vfio_ok;
    // The IOMMU after the steps: on, or turned on by 'iommu enable' or by
    // the firmware's or the VM's settings the steps name.
    bool iommu_after = s.enabled || s.cmdline_fixable || !s.off_steps.empty();
    // A missing VFIO is a step of every GPU's ("boot a kernel built with VFIO").
    bool vfio_after = vfio_ok || !dx.gpus.empty();
    dx.summary.push_back(
        {"VFIO support", vfio_now ? "Yes" : "No", (iommu_after && vfio_after) ? "Yes" : "No"});
    auto iso = [&](bool on) {
        if (!on) return std::string("Limited");
        return std::string(s.interrupt_remapping == false ? "Partial (no interrupt remapping)"
                                                          : "Full");
    };
    dx.summary.push_back({"Security isolation", iso(s.enabled), iso(iommu_after)});
    dx.summary.push_back({"IOMMU groups", s.group_count ? std::to_string(s.group_count) : "None",
                          s.enabled           ? std::to_string(s.group_count)
                          : s.cmdline_fixable ? "Many (after reboot)"
                          : iommu_after       ? "Many (after the steps)"
                                              : "None"});
    dx.summary.push_back({"Reboot required",
                          next && !next->running_known
                              ? "Unknown (the running command line cannot be read)"
                          : next && next->reboot_pending ? "Yes (boot configuration changed)"
                                                         : "-",
                          dx.reboot_required ? "Yes" : "No"});

    // The seed's alternatives when passthrough is not wanted.
    for (const auto& g : dx.gpus)
        if (g.gpu->driver && *g.gpu->driver != "vfio-pci")
            dx.alternatives.push_back(
                "use " + g.gpu->addr.short_str() + " on the host: it is bound to " +
                *g.gpu->driver +
                (*g.gpu->driver == "nvidia" ? " (nvidia-smi, CUDA work here)" : ""));
    if (f.container_runtimes.empty())
        dx.alternatives.emplace_back(
            "containers with GPU: no container runtime (docker, podman) installed");
    else
        dx.alternatives.push_back(
            "containers with GPU: " + util::join(f.container_runtimes, ", ") +
            (f.container_gpu_support ? " with NVIDIA container toolkit (docker run --gpus all ...)"
                                     : " installed, NVIDIA container toolkit missing"));
    dx.alternatives.push_back(
        std::string("VM without GPU: works now, ") +
        (f.kvm.usable ? "with KVM" : "under TCG (slow) because " + f.kvm.reason) +
        (f.qemu_path ? "" : "; install qemu-system-x86 first"));
    return dx;
}

} // namespace vfioctl::iommu
