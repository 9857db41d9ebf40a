#pragma once
// StateFiles: vfioctl's own files under a tree's root (journal, backups,
// locks): one way to make directories, one atomic whole-file write
// (host/atomic_file.hpp), one lock, one remove. Every write obeys the
// live-write rule (host/sysfs_writes.hpp).

#include "host/tree.hpp"
#include "host/unique_fd.hpp"

#include <string_view>

namespace vfioctl::host {

// A tree in which vfioctl may keep its state files.
class StateFiles : public Tree {
  public:
    using Tree::Tree;

    // Creates directory p and its parents (mode 0755), one component at a
    // time inside the root; an Error names the path ('..' is refused).
    Status make_dirs(std::string_view p) const;
    // Writes a whole file atomically (temp, fsync, rename, fsync of the
    // directory) with the given mode; the old file stays on any Error.
    Status write_atomic(std::string_view p, std::string_view data, unsigned mode = 0644) const;
    // Removes file or empty directory p; missing is fine.
    Status remove(std::string_view p) const;
};

// Creates directory path and its parents on the running machine (a run
// directory, a cache), each new one with mode; an Error names the path.
// Not subject to the live-write rule: these are never host state.
Status make_dirs_at(const std::string& path, unsigned mode = 0755);

// An exclusive lock on a file under a tree's root, held until destroyed.
class FileLock {
  public:
    // Waits at most timeout_ms for the lock; an Error names the path and
    // says that another vfioctl holds it.
    static Result<FileLock> acquire(const Tree& tree, std::string_view p, int timeout_ms);

  private:
    explicit FileLock(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

} // namespace vfioctl::host
