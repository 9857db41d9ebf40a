#pragma once
// Settlements (journal entries of an earlier boot, dropped without touching
// a device) and entries left by 'recover --at-boot', as JSON and text for
// 'recover' and 'status'.

#include "vfio/bind.hpp"
#include "vfio/settled.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vfioctl::cli {

// {"at", "boot", "count", "devices": [{"address", "group", "boot", "phase",
// "original_driver", "original_override", "since"}]}
nlohmann::json settlement_json(const vfio::Settlement& s);
// "Settled N journal entries of an earlier boot ...:" and a line a device.
std::string settlement_text(const vfio::Settlement& s);
// Why an entry was not settled: "current_boot_unknown" (the running boot
// cannot be read), "boot_unknown" (the entry's) or "this_boot".
std::string left_reason(const vfio::JournalEntry& e, const vfio::BootId& current);
// Left entries as [{"address", "boot", "phase", "original_driver", "reason"}].
nlohmann::json left_json(const std::vector<vfio::JournalEntry>& left, const vfio::BootId& current);

} // namespace vfioctl::cli
