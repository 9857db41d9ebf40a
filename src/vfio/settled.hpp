#pragma once
// The settled record: journal entries of an earlier boot that vfioctl
// dropped without touching a device, because the reboot already undid them
// (the kernel forgets driver_override and probes every device afresh).
// 'vfioctl status' shows the last settlement from it.
//
// STATE_DIR/settled.json, written atomically and durably (temp, fsync,
// rename) under the state-dir lock:
//   {"format": 1, "settlements": [{"at": UTC time, "boot": the boot that
//    settled them, "count": N, "devices": [{"address", "group", "boot" (the
//    entry's), "phase", "original_driver", "original_override", "since"}]}]}
// Bounded: the newest k_settlements_kept settlements, each listing at most
// k_devices_listed devices ("count" says how many there were); a file over
// k_settled_max_bytes is refused as corrupt.

#include "host/host.hpp"
#include "vfio/journal.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace vfioctl::vfio {

inline constexpr size_t k_settlements_kept = 16;
inline constexpr size_t k_devices_listed = 64;
inline constexpr size_t k_settled_max_bytes = 1 << 20;

struct Settlement {
    std::string at;                    // UTC time it was settled
    BootId boot;                       // the boot that settled it
    size_t count = 0;                  // entries settled (devices may list fewer)
    std::vector<JournalEntry> devices; // each with the boot it was written in
};

struct SettledRecord {
    std::vector<Settlement> settlements; // oldest first
    const Settlement* last() const { return settlements.empty() ? nullptr : &settlements.back(); }
};

// The record's file under a state directory.
std::string settled_path(const std::string& state_dir);

// The record in text; an Error (naming path) when it is not a format 1
// settled record. Never throws.
Result<SettledRecord> parse_settled(std::string_view text, const std::string& path);
// Reads the record; no file is an empty record. A corrupt or oversized file
// is an Error that names it (and is left as it is).
Result<SettledRecord> load_settled(const host::Tree& tree, const std::string& state_dir);
// Appends s, drops the oldest beyond k_settlements_kept, lists at most
// k_devices_listed devices of s, and writes the file atomically and durably.
// A corrupt file is an Error and is not overwritten.
Status append_settlement(const host::Host& host, const std::string& state_dir, Settlement s);

} // namespace vfioctl::vfio
