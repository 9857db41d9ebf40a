#pragma once
// The NVLink fabric as status and groups show it: its NVSwitches and GPUs,
// and the passthrough models Fabric Manager supports for it.

#include "pci/device.hpp"

#include <nlohmann/json.hpp>
#include <string>

namespace vfioctl::cli {

// {"nvswitches": [...], "gpus": [...], "generation", "wiring", "models": [...]};
// null without NVSwitches.
nlohmann::json fabric_json(const pci::Inventory& inv);
// A titled text section; empty without NVSwitches.
std::string fabric_text(const pci::Inventory& inv);

} // namespace vfioctl::cli
