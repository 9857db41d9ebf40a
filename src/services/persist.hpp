#pragma once
// Writing and removing vfioctl's persistent binding entries
// (/etc/vfioctl/bind.d/pci-DDDD:BB:DD.F, holding "vfio-pci"), the files
// 'bind --persistent' and 'unbind --persistent' change: through
// boot::apply_plan, like the boot configuration, so that each change is
// journaled in the boot journal (STATE_DIR/boot-journal.json) with
// fingerprints, a removed entry is backed up beside it first, and every file
// is written atomically.

#include "host/host.hpp"
#include "vfio/persist.hpp"

#include <string>
#include <vector>

namespace vfioctl::services {

// What was written and removed (host paths), the boot journal's operation
// and the backups of removed entries.
struct PersistWrite {
    std::vector<std::string> written;
    std::vector<std::string> removed;
    std::string operation; // "" when nothing changed
    std::vector<std::string> backups;
};

// Creates plan.add's entries and removes plan.remove's as one journaled
// operation ("persist" when it creates any, else "unpersist"). An Error when
// an entry to create is there already or one to remove changed, or any step
// fails; the files are then as they were (apply_plan puts them back).
Result<PersistWrite> write_persist(const host::Host& host, const std::string& state_dir,
                                   const vfio::PersistPlan& plan);

// 'bind --at-boot': vfio::bind_at_boot with the devices that hold the root
// filesystem, known or possible, never taken from their driver.
std::vector<vfio::AtBootItem> apply_at_boot(const host::Host& host, const vfio::PersistConfig& cfg,
                                            const std::vector<pci::PciAddress>& only,
                                            int unbind_timeout_ms);

} // namespace vfioctl::services
