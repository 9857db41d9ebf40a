#pragma once
// The bind journal: for every device vfioctl moved to vfio-pci, what it had
// before. Written (fsync'd, atomically) before each change, so that after a
// crash at any point 'vfioctl recover' knows what to give back.
//
// Format 1, extended compatibly: each entry may hold "boot", the boot_id of
// the boot its last sysfs change was made in (a UUID string, or null when
// that boot could not be read). The format number stays 1: readers before
// the field ignore it (and drop it when they rewrite the journal, which
// leaves the entry's boot unknown: never settled, the safe side), and a
// journal without the field reads as entries of an unknown boot.

#include "host/host.hpp"
#include "vfio/boot_id.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::vfio {

struct JournalEntry {
    std::string address;                        // "0000:8a:00.0"
    int group = -1;                             // IOMMU group, -1 when none
    std::optional<std::string> original_driver; // nullopt: it had none
    std::optional<std::string> original_override;
    std::string phase; // "binding", "bound", "restoring"
    std::string since; // UTC time of the entry
    BootId boot;       // the boot its last change was made in; unknown when not known
};

struct Journal {
    std::vector<JournalEntry> entries;
    JournalEntry* find(const std::string& address);
    void erase(const std::string& address);
};

// The journal file under a state directory.
std::string journal_path(const std::string& state_dir);
// The lock file that serialises writers.
std::string lock_path(const std::string& state_dir);

// The journal in text (read from path); an Error when it is not a format 1
// journal. Never throws.
Result<Journal> parse_journal(std::string_view text, const std::string& path);
// Reads the journal; no file is an empty journal. A truncated or corrupt
// file is an Error that names it; the file is left untouched for inspection.
Result<Journal> load_journal(const host::Host& host, const std::string& state_dir);
// Writes it atomically and durably; an empty journal removes the file.
Status save_journal(const host::Host& host, const std::string& state_dir, const Journal& j);

} // namespace vfioctl::vfio
