#include "services/persist.hpp"

#include "boot/apply.hpp"
#include "host/files.hpp"
#include "host/system.hpp"

namespace vfioctl::services {

Result<PersistWrite> write_persist(const host::Host& host, const std::string& state_dir,
                                   const vfio::PersistPlan& plan) {
    PersistWrite w;
    boot::Plan bp;
    for (const auto& a : plan.add) {
        boot::FileEdit e{vfio::bind_entry_path(a), boot::Format::whole_file, "", "vfio-pci\n"};
        e.created = true;
        e.mode = 0644;
        bp.edits.push_back(std::move(e));
        w.written.push_back(vfio::bind_entry_path(a));
    }
    for (const auto& a : plan.remove) {
        const std::string p = vfio::bind_entry_path(a);
        auto now = host.read(p);
        if (!now) return now.error();
        auto st = host::stat_file(host, p);
        if (!st) return st.error();
        boot::FileEdit e{p, boot::Format::whole_file, *now, ""};
        e.removed = true;
        e.mode = st->mode;
        bp.edits.push_back(std::move(e));
        w.removed.push_back(p);
    }
    if (bp.edits.empty()) return w;
    boot::ApplyOptions opt;
    opt.state_dir = state_dir;
    opt.regenerate = false;
    auto res = boot::apply_plan(host, boot::detect_setup(host), bp,
                                plan.add.empty() ? "unpersist" : "persist", opt);
    if (!res) return res.error();
    w.operation = res->id;
    for (const auto& f : res->files)
        if (!f.backup.empty()) w.backups.push_back(f.backup);
    return w;
}

std::vector<vfio::AtBootItem> apply_at_boot(const host::Host& host, const vfio::PersistConfig& cfg,
                                            const std::vector<pci::PciAddress>& only,
                                            int unbind_timeout_ms) {
    std::map<pci::PciAddress, std::string> never_take;
    for (const auto& c : host::read_system(host, true).critical)
        if (!host::force_overrides(c.kind)) never_take.emplace(c.addr, c.reason());
    return vfio::bind_at_boot(host, cfg, only, unbind_timeout_ms, never_take);
}

} // namespace vfioctl::services
