#pragma once
// The diagnosis behind 'vfioctl status': from the host's facts to a verdict
// per GPU with its cause and the exact remedy, in the seed's terms. Pure.

#include "host/system.hpp"
#include "iommu/groups.hpp"
#include "kernel/cmdline.hpp"
#include "pci/device.hpp"

#include <optional>
#include <string>
#include <vector>

namespace vfioctl::iommu {

// unknown: a fact the verdict rests on (the IOMMU groups) could not be
// read, so vfioctl cannot say it works; it is never reported as working.
enum class Verdict { will_work, will_work_after, will_not_work, unknown };
// "will_work", "will_work_after", "will_not_work", "unknown".
const char* verdict_id(Verdict v);
// "WILL WORK", "WILL WORK AFTER the steps below", "WILL NOT WORK".
const char* verdict_text(Verdict v);

// What the kernel and firmware make of the IOMMU on this host.
struct IommuState {
    std::string platform;                  // "intel", "amd", "other", "none"
    std::optional<std::string> acpi_table; // "DMAR", "IVRS"
    bool enabled = false;                  // units or groups exist
    int group_count = 0;
    std::optional<std::string> default_domain; // most groups' type
    std::optional<bool> interrupt_remapping;
    bool passthrough_mode = false; // iommu=pt or iommu.passthrough=1
    // Why it is off, when it is: the blocking cause, in words, with the token.
    std::optional<std::string> off_cause;
    // Whether that cause is the command line (fixable by 'iommu enable' + reboot).
    bool cmdline_fixable = false;
    // What else turns it on, when the command line is not the cause: steps
    // outside vfioctl (the firmware setup, or the settings of the VM this
    // runs in), in order. Empty when nothing known turns it on (a cloud
    // that offers its VMs no virtual IOMMU, a kernel without IOMMU support).
    std::vector<std::string> off_steps;
    // The hypervisor this runs under; none on bare metal.
    host::Hypervisor hypervisor = host::Hypervisor::none;
};

struct GpuDiagnosis {
    const pci::PciDevice* gpu = nullptr;
    std::vector<pci::PciAddress> group_members; // including the GPU
    DeviceRole role;
    Viability viability;
    Verdict verdict = Verdict::will_not_work;
    std::vector<std::string> causes;   // why it does not work now
    std::vector<std::string> steps;    // what makes it work, in order
    std::vector<std::string> warnings; // true but not blocking
    // Every cause has a step that removes it: "after the steps" it works,
    // even where vfioctl cannot take the steps itself (will_not_work).
    bool steps_fix = true;
};

// One row of the seed's summary table, for this host now and after the steps.
struct SummaryRow {
    std::string feature;
    std::string now;
    std::string after;
};

// What the boot configuration gives the next boot (boot::inspect_boot).
struct NextBoot {
    std::string loader;                            // boot::loader_id
    std::optional<std::string> configured_cmdline; // from the configuration files
    std::optional<std::string> next_cmdline;       // what the next boot gets; none when unknown
    bool reboot_pending = false;     // its IOMMU parameters differ from the running kernel's
    bool regenerate_pending = false; // the boot loader's own file is behind the configuration
    std::string regenerate_command;  // what brings it up to date
    std::string reason;              // both facts in words
    bool running_known = true;       // false when /proc/cmdline cannot be read
};

struct Diagnosis {
    kernel::IommuCmdline cmdline;
    std::optional<NextBoot> next_boot;
    IommuState iommu;
    std::vector<GpuDiagnosis> gpus;
    Verdict overall = Verdict::will_not_work; // the best GPU's verdict
    std::vector<SummaryRow> summary;
    std::vector<std::string> alternatives;
    std::vector<std::string> notes;
    bool reboot_required = false;
    // 0 when passthrough works now for at least one GPU, 3 otherwise
    // (unknown included: it is not known to work).
    int exit_code() const { return overall == Verdict::will_work ? 0 : 3; }
};

// next, when given, says what the boot configuration already holds: an
// IOMMU that the next boot turns on needs only a reboot, not 'iommu enable'.
Diagnosis diagnose(const host::SystemFacts& facts, const pci::Inventory& inv,
                   const std::vector<IommuGroup>& groups, const NextBoot* next = nullptr);

// The IOMMU part alone (also used by 'explain').
IommuState iommu_state(const host::SystemFacts& facts, const kernel::IommuCmdline& cmd,
                       const std::vector<IommuGroup>& groups);

} // namespace vfioctl::iommu
