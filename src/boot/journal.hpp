#pragma once
// The boot journal: every change 'vfioctl iommu' made to boot configuration
// files, with the backups it took and what each file held before and after,
// so that 'revert' restores a backup exactly, or takes out just what vfioctl
// put in when the file changed since. One JSON file in the state directory.

#include "boot/plan.hpp"
#include "host/host.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::boot {

// A file's content, in short: its size and an FNV-1a hash.
struct Fingerprint {
    uint64_t size = 0;
    std::string hash; // 16 hex digits
    bool operator==(const Fingerprint&) const = default;
};
Fingerprint fingerprint(std::string_view data);

struct JournalFile {
    std::string path; // the file changed (host path)
    Format format = Format::cmdline_file;
    std::string backup; // its backup, taken before the change
    Fingerprint before;
    Fingerprint after;
    bool created = false; // did not exist before (no backup); revert removes it
    bool removed = false; // removed by the operation; revert puts the backup back
    unsigned mode = 0644; // a created file's mode
    // A removed file vfioctl owns whole (a trial entry, a bind.d entry) is
    // kept here, not as a backup beside it (where update-grub or the udev
    // rule would see it): its bytes.
    std::string content = {};
};

// A trial boot's facts (operations with action "trial").
struct TrialInfo {
    std::string marker;               // vfioctl.trial=MARKER on the trial's command line
    std::string entry;                // the one-shot entry's id
    std::string cmdline;              // the trial entry's command line
    std::string boot_id;              // the boot it was set up in ("" unknown)
    int panic_s = 0;                  // panic=N on the trial's command line
    std::vector<std::string> oneshot; // the command that scheduled it
    std::string goal_action;          // the goal it tries: "enable"
    std::string goal_platform;        // "intel", "amd"
    bool goal_pt = true;              // iommu=pt too
    std::string confirmed_by;         // the enable that made it permanent
};

struct Operation {
    std::string id;     // the time stamp it was made with ("20240611-101500")
    std::string action; // "enable", "disable", "revert"
    std::string time;   // ISO 8601, UTC
    std::string loader; // loader_id()
    // pending: files may be changed (a crash left it so); done; rolled_back:
    // a step failed and the files were put back; reverted: undone by a later
    // operation.
    std::string state;
    std::string reverts;                 // for a revert: the operation it undid
    std::string reverted_by;             // for a reverted operation: the revert's id
    std::vector<std::string> regenerate; // the command run (or printed)
    std::vector<std::string> added;
    std::vector<std::string> removed;
    std::vector<JournalFile> files;
    std::vector<ParamChange> changes;
    std::optional<TrialInfo> trial; // for action "trial"; state "confirmed" once confirmed
};

struct Journal {
    std::vector<Operation> operations;
    // The last enable or disable that is done or pending, not yet reverted.
    const Operation* last_undoable() const;
    Operation* find(std::string_view id);
};

// The journal file's host path in state_dir.
std::string journal_path(std::string_view state_dir);

// The journal in text (read from path); an Error when it is not JSON or a
// field has the wrong type. Never throws.
Result<Journal> parse_journal(std::string_view text, const std::string& path);
// Reads the journal; an empty one when the file does not exist, an Error
// when it cannot be read or parsed (vfioctl then changes nothing).
Result<Journal> load_journal(const host::Host& host, std::string_view state_dir);
// Writes the journal atomically (fault points boot.journal.*).
Status save_journal(const host::Host& host, std::string_view state_dir, const Journal& j);

} // namespace vfioctl::boot
