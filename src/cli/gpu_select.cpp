#include "cli/gpu_select.hpp"

#include "iommu/diagnosis.hpp"
#include "pci/fabric.hpp"

#include <CLI/CLI.hpp>

namespace vfioctl::cli {

void add_selection_flags(CLI::App& sub, GpuSelection& s) {
    sub.add_flag("--all-gpus", s.all_gpus,
                 "every NVIDIA GPU that can go to a VM now ('vfioctl status': WILL WORK); the "
                 "others are named with their cause");
    sub.add_flag("--with-nvswitches", s.nvswitches,
                 "every NVSwitch too: an HGX/DGX fabric's full passthrough model gives the VM "
                 "all GPUs and all NVSwitches");
}

Result<Selected> select_devices(const services::HostModel& m, const GpuSelection& s) {
    Selected out;
    if (s.all_gpus) {
        auto dx = iommu::diagnose(m.facts, m.inv, m.groups);
        for (const auto& g : dx.gpus) {
            if (!pci::is_nvidia_gpu(*g.gpu)) continue;
            if (g.verdict == iommu::Verdict::will_work)
                out.addresses.push_back(g.gpu->addr.str());
            else
                out.notes.push_back(
                    "left out " + g.gpu->addr.short_str() + ": " + iommu::verdict_id(g.verdict) +
                    (g.causes.empty() ? std::string() : " (" + g.causes.front() + ")"));
        }
        if (out.addresses.empty())
            return Error{"--all-gpus: no NVIDIA GPU can go to a VM now" +
                             (out.notes.empty() ? std::string(" (this host has none)")
                                                : ": " + out.notes.front()),
                         {},
                         "'vfioctl status' says why and what to do",
                         0};
    }
    if (s.nvswitches) {
        auto f = pci::nvlink_fabric(m.inv);
        if (!f) return Error{"--with-nvswitches: this host has no NVSwitch", {}, "", 0};
        for (const auto* d : f->nvswitches)
            out.addresses.push_back(d->addr.str());
    }
    return out;
}

} // namespace vfioctl::cli
