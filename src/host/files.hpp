#pragma once
// Changing configuration files under a host's root without ever leaving a
// half-written one: a backup beside the file first, then a temporary file in
// the same directory, fsync, rename over the original, fsync of the
// directory; owner, mode and extended attributes (SELinux label, ACL) kept.
// Each step passes a fault point (util/fault.hpp) named PREFIX.STEP so that
// tests can kill the process there. Test binaries (forbid_live_writes) are
// refused every write on the live root.

#include "host/host.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vfioctl::host {

// What a file is now.
struct FileStat {
    bool exists = false;
    bool regular = false;
    unsigned mode = 0; // permission bits (07777)
    unsigned uid = 0;
    unsigned gid = 0;
    uint64_t size = 0;
};

// Stats host path p, following links; exists is false when it is missing,
// an Error for any other failure.
Result<FileStat> stat_file(const Tree& host, std::string_view p);

// Copies regular file p to a new file beside it, NAME.vfioctl-backup-STAMP
// (never executable: its mode without the x and set-id bits)
// (then -2, -3, ... when taken), with p's mode and owner, synced, never
// overwriting anything. Returns the backup's host path. Fault points:
// boot.backup.{created,written,synced,linked}.
Result<std::string> backup_file(const Host& host, std::string_view p, std::string_view stamp);

// Replaces host path p (following links to the real file) with data
// atomically. Owner, mode and extended attributes come from the file now,
// or from mode for a new file. Refuses a file without any write permission
// bit and says so. Fault points: PREFIX.{temp.created,temp.written,
// temp.synced,renamed,dir.synced}. On an Error the original is in place and
// no temporary file is left.
Status replace_file(const Host& host, std::string_view p, std::string_view data,
                    std::string_view fault_prefix = "boot.file", unsigned mode = 0644);

// Creates directory p and its parents (mode 0755); an Error with a hint.
Status make_directories(const Host& host, std::string_view p);

// A hint for an errno from a write: space, read-only filesystem, permissions.
std::string write_hint(int errnum, std::string_view dir);

} // namespace vfioctl::host
