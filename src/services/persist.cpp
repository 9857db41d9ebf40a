#include "services/persist.hpp"

namespace vfioctl::services {

Result<PersistWrite> write_persist(const host::Host& host, const std::string& state_dir,
                                   const vfio::PersistPlan& plan) {
    (void)state_dir;
    PersistWrite w;
    if (!plan.add.empty())
        if (auto s = host.make_dirs(vfio::k_bind_dir); !s) return s.error();
    for (const auto& a : plan.add) {
        const std::string p = vfio::bind_entry_path(a);
        if (auto s = host.write_atomic(p, "vfio-pci\n", 0644); !s) return s.error();
        w.written.push_back(p);
    }
    for (const auto& a : plan.remove) {
        const std::string p = vfio::bind_entry_path(a);
        if (auto s = host.remove(p); !s) return s.error();
        w.removed.push_back(p);
    }
    return w;
}

} // namespace vfioctl::services
