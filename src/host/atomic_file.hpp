#pragma once
// The one way vfioctl replaces a whole file (as ccache's AtomicFile): a
// temporary file in the same directory, every byte written (EINTR and short
// writes retried), fsync, rename over the name, fsync of the directory.
// Until the rename, any failure removes the temporary file and leaves the old
// file (if any) as it was; after it, the new file is complete.
//
// It works on a directory the caller has opened: Host opens it inside its
// root (openat2, RESOLVE_IN_ROOT), code on the live machine with plain
// open(2). Every name used is one component relative to that descriptor, so
// nothing is resolved again once the directory is open.

#include "util/result.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace vfioctl::host {

// How write_file_atomic writes; every member has an initializer, so a
// caller names only what it sets ({.mode = 0600}).
struct AtomicWrite {
    // The temporary file's name in the directory; empty means
    // ".NAME.vfioctl-tmpPID". It is created exclusively, never through a
    // link; one left by a killed run (same name) is removed first.
    std::string temp_name{};
    // The temporary file's creation mode (the umask applies).
    unsigned mode = 0644;
    // Runs on the complete temporary file before its fsync (owner, mode,
    // extended attributes); an Error abandons the write and is returned.
    std::function<Status(int fd)> prepare{};
    // When not empty, fault points (util/fault.hpp) PREFIX.temp.created,
    // .temp.written, .temp.synced, .renamed and .dir.synced, in that order.
    std::string fault_prefix{};
};

// Writes all of data to fd, EINTR and short writes retried; 0, or the
// errno of the write that failed (EIO when one wrote nothing).
int write_all(int fd, std::string_view data);

// Writes data as file `name` (one component) in the directory open as dirfd
// (O_RDONLY | O_DIRECTORY: the directory's fsync needs a real descriptor).
// `shown` is the file's path for messages; its directory part names the
// directory. Errors: "cannot create a temporary file in" DIR, "cannot write",
// "cannot sync", "cannot replace" FILE, "cannot sync directory" DIR (a
// filesystem that cannot sync directories, EINVAL or EROFS, is no error).
Status write_file_atomic(int dirfd, std::string_view name, std::string_view data,
                         std::string_view shown, const AtomicWrite& how = {});

// The same for a plain path of the running machine (a run directory, a
// cache): its directory is opened with open(2), the path is shown as given.
Status write_file_atomic(const std::string& path, std::string_view data,
                         const AtomicWrite& how = {});

} // namespace vfioctl::host
