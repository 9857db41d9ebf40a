#pragma once
// --all-gpus and --with-nvswitches: the devices of a multi-GPU server named
// at once, for 'bind', 'vm start' and 'vm run'.

#include "services/host_model.hpp"

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace vfioctl::cli {

// The words that stand for a selection in a VM's device list (the
// profile's gpus, --gpu): every GPU that can go, every NVSwitch.
inline constexpr const char* k_all_gpus = "all-gpus";
inline constexpr const char* k_nvswitches = "nvswitches";

struct GpuSelection {
    bool all_gpus = false;   // every NVIDIA GPU that can go to a VM now
    bool nvswitches = false; // every NVSwitch (the fabric's other half)
    bool any() const { return all_gpus || nvswitches; }
};

struct Selected {
    std::vector<std::string> addresses; // "0000:18:00.0", by address
    std::vector<std::string> notes;     // GPUs left out, and why
};

void add_selection_flags(CLI::App& sub, GpuSelection& s);

// The addresses the selection names on m. --all-gpus takes the NVIDIA GPUs
// whose passthrough verdict is "will work" and names the others with their
// first cause; an Error when it names no device at all.
Result<Selected> select_devices(const services::HostModel& m, const GpuSelection& s);

} // namespace vfioctl::cli
