#pragma once
// Host: the only code that touches /sys, /proc, /dev, /etc, /boot and
// /lib/modules. Every path it takes is a host path ("/sys/bus/pci/devices"),
// resolved under the root it was built with, so that the same code runs on
// the live machine ("/"), a recorded snapshot or a test fixture.

#include "util/result.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::host {

namespace fs = std::filesystem;

// Output of a program run by Host::run.
struct RunOutput {
    int exit_code = -1; // -1 when killed or not started
    std::string output; // stdout and stderr together
};

// An open directory of a host (a sysfs device node): reads its entries by
// name without walking the whole path again for each.
// The root directory a Host resolves paths in, held open.
struct RootFd;

class Dir {
  public:
    Dir(Dir&& o) noexcept : m_fd(o.m_fd), m_path(std::move(o.m_path)), m_root(std::move(o.m_root)) {
        o.m_fd = -1;
    }
    Dir& operator=(Dir&&) = delete;
    Dir(const Dir&) = delete;
    ~Dir();
    // An attribute, trimmed; nullopt when missing or unreadable.
    std::optional<std::string> attr(const char* name) const;
    // The last component of a link's target; nullopt when no link.
    std::optional<std::string> link_name(const char* name) const;
    // A link's whole target, as written (name is one component: nothing
    // is resolved); an error with errno ENOENT when there is no entry,
    // EINVAL when the entry is no link.
    Result<std::string> read_link(const char* name) const;

  private:
    friend class Host;
    Dir(int fd, std::string path, std::shared_ptr<const RootFd> root)
        : m_fd(fd), m_path(std::move(path)), m_root(std::move(root)) {}
    int m_fd = -1;
    std::string m_path;
    std::shared_ptr<const RootFd> m_root; // null on the live host
};

// Under a root other than "/", every path a Host takes is resolved inside
// that root, symlinks included: an absolute link target or ".." never leaves
// it (openat2 with RESOLVE_IN_ROOT, or the same walk done component by
// component where the kernel lacks openat2). On "/" paths are used as given.
class Host {
  public:
    // A host rooted at root; "/" is the live machine.
    explicit Host(fs::path root = "/");
    virtual ~Host() = default;
    Host(const Host&) = default;
    Host& operator=(const Host&) = default;

    const fs::path& root() const { return m_root; }
    // True when this is the running machine rather than a recorded tree.
    bool is_live() const { return m_live; }
    // The real filesystem path of host path p, lexically (links not
    // resolved): for messages and for programs that take a directory.
    fs::path path(std::string_view p) const;
    // Opens host path p with open(2) flags, links resolved inside the root;
    // -1 with errno set when it cannot.
    int open(std::string_view p, int flags, unsigned mode = 0) const;

    // Whole file; an Error with the path and errno when it cannot be read.
    Result<std::string> read(std::string_view p) const;
    // A sysfs-style attribute, trimmed; nullopt when missing or unreadable.
    std::optional<std::string> attr(std::string_view p) const;
    // An attribute parsed as hex ("0x10de"); nullopt when missing or garbage.
    std::optional<uint64_t> attr_hex(std::string_view p) const;
    // An attribute parsed as decimal; nullopt when missing or garbage.
    std::optional<uint64_t> attr_dec(std::string_view p) const;
    // The raw target of a symlink; an Error when p is not a link.
    Result<std::string> read_link(std::string_view p) const;
    // The last component of a symlink's target ("vfio-pci" for .../driver).
    std::optional<std::string> link_name(std::string_view p) const;
    // The host path that p resolves to, following links inside the root;
    // an Error when it does not exist.
    Result<std::string> resolve(std::string_view p) const;
    bool exists(std::string_view p) const;
    // True when p itself (its last component not followed) is a symlink.
    bool is_link(std::string_view p) const;
    // Opens directory p for reading entries by name; an Error when it is none.
    Result<Dir> open_dir(std::string_view p) const;
    bool is_dir(std::string_view p) const;
    // Entry names in directory p, sorted; an Error when p is no directory.
    Result<std::vector<std::string>> list(std::string_view p) const;

    // Host path of an executable named name in the usual bin directories,
    // or nullopt.
    std::optional<std::string> find_program(std::string_view name) const;
    // The first line of "PROGRAM --version". On the live host the program
    // runs (argv, no shell, bounded time); on a recorded tree the line is
    // read from /.vfioctl/versions/NAME, which snapshot writes.
    std::optional<std::string> program_version(std::string_view name) const;
    // Runs argv on the live host with a timeout; output capped at 1 MiB.
    // Fails on a recorded tree: it never runs programs against one.
    Result<RunOutput> run(const std::vector<std::string>& argv, int timeout_ms) const;

    // Writes data to host path p (O_WRONLY|O_TRUNC, no create), as sysfs
    // expects. Refused under the real /sys when live sysfs writes are
    // forbidden (test binaries forbid them). Virtual: a test kernel
    // reproduces what the kernel does on such writes.
    virtual Status write(std::string_view p, std::string_view data) const;
    // write() in a child process, waited for at most timeout_ms: a write the
    // kernel blocks on (an unbind) is reported, never waited for forever.
    // The child is left to finish on its own.
    Status write_bounded(std::string_view p, std::string_view data, int timeout_ms) const;
    // Loads a kernel module with its dependencies, as modprobe does (libkmod).
    // On a recorded tree it never touches the running kernel: it succeeds
    // only when /sys/module/NAME already exists there.
    virtual Status load_module(const std::string& name) const;

    // State files (journal, backups) under the root: creates directories,
    // writes a whole file atomically (temp, fsync, rename, fsync of the
    // directory: host/atomic_file.hpp) with the given mode.
    Status make_dirs(std::string_view p) const;
    Status write_atomic(std::string_view p, std::string_view data, unsigned mode = 0644) const;
    Status remove(std::string_view p) const;

  protected:
    // Whether write() is the plain file write, which write_bounded runs in a
    // child sharing this process's memory; a subclass whose write() runs
    // other code returns false and write_bounded forks for it.
    virtual bool plain_write() const { return true; }

  private:
    // Refuses writes under the real /sys, /proc and /dev when forbidden.
    Status check_live_write(std::string_view p) const;

    fs::path m_root;
    std::string m_root_str; // canonical root without trailing slash ("" for /)
    bool m_live = false;
    std::shared_ptr<const RootFd> m_root_fd; // null on the live host
};

// Tests only: resolve paths under a root by the component walk, as on a
// kernel without openat2.
void use_openat2(bool on);

// Forbids writes through any Host to the real /sys, /proc and /dev; test
// binaries call this first. Also forbidden when VFIOCTL_FORBID_LIVE_WRITES=1.
void forbid_live_writes();

// An exclusive lock on a file under a host's root, held until destroyed.
class FileLock {
  public:
    // Waits at most timeout_ms for the lock; an Error names the path and
    // says that another vfioctl holds it.
    static Result<FileLock> acquire(const Host& host, std::string_view p, int timeout_ms);
    FileLock(FileLock&& o) noexcept : m_fd(o.m_fd) { o.m_fd = -1; }
    FileLock& operator=(FileLock&&) = delete;
    FileLock(const FileLock&) = delete;
    ~FileLock();

  private:
    explicit FileLock(int fd) : m_fd(fd) {}
    int m_fd = -1;
};
bool live_writes_forbidden();

} // namespace vfioctl::host
