#pragma once
// Writing and removing vfioctl's persistent binding entries
// (/etc/vfioctl/bind.d/pci-DDDD:BB:DD.F, holding "vfio-pci"), the files
// 'bind --persistent' and 'unbind --persistent' change.

#include "host/host.hpp"
#include "vfio/persist.hpp"

#include <string>
#include <vector>

namespace vfioctl::services {

// What was written and removed: host paths.
struct PersistWrite {
    std::vector<std::string> written;
    std::vector<std::string> removed;
};

// Writes plan.add's entries and removes plan.remove's, each atomically
// (temporary file, fsync, rename). An Error names the first file that could
// not be changed; the entries changed before it stay changed.
Result<PersistWrite> write_persist(const host::Host& host, const std::string& state_dir,
                                   const vfio::PersistPlan& plan);

} // namespace vfioctl::services
