#pragma once
// Tree: a host's files read-only, under a root. Every path it takes is a
// host path ("/sys/bus/pci/devices"), resolved under the root it was built
// with, so that the same code runs on the live machine ("/"), a recorded
// snapshot or a test fixture.

#include "util/result.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::host {

namespace fs = std::filesystem;

// Output of a program run by Tree::run.
struct RunOutput {
    int exit_code = -1; // -1 when killed or not started
    std::string output; // stdout and stderr together
};

// The root directory a Tree resolves paths in, held open.
struct RootFd;

// An open directory of a host (a sysfs device node): reads its entries by
// name without walking the whole path again for each.
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
    friend class Tree;
    Dir(int fd, std::string path, std::shared_ptr<const RootFd> root)
        : m_fd(fd), m_path(std::move(path)), m_root(std::move(root)) {}
    int m_fd = -1;
    std::string m_path;
    std::shared_ptr<const RootFd> m_root; // null on the live host
};

// Under a root other than "/", every path a Tree takes is resolved inside
// that root, symlinks included: an absolute link target or ".." never leaves
// it (openat2 with RESOLVE_IN_ROOT, or the same walk done component by
// component where the kernel lacks openat2). On "/" paths are used as given.
class Tree {
  public:
    // A tree rooted at root; "/" is the live machine.
    explicit Tree(fs::path root = "/");
    virtual ~Tree() = default;
    Tree(const Tree&) = default;
    Tree& operator=(const Tree&) = default;

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
    // True when p exists (links followed inside the root).
    bool exists(std::string_view p) const;
    // True when p itself (its last component not followed) is a symlink.
    bool is_link(std::string_view p) const;
    // Opens directory p for reading entries by name; an Error when it is none.
    Result<Dir> open_dir(std::string_view p) const;
    // True when p is a directory (links followed inside the root).
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
    // Runs argv on the live host (host::Process) with a timeout; output
    // capped at 1 MiB; a program that cannot be executed exits 127. Fails
    // on a recorded tree: it never runs programs against one.
    Result<RunOutput> run(const std::vector<std::string>& argv, int timeout_ms) const;

  protected:
    // The root held open; -1 on the live host.
    int root_fd() const;

  private:
    fs::path m_root;
    std::string m_root_str; // canonical root without trailing slash ("" for /)
    bool m_live = false;
    std::shared_ptr<const RootFd> m_root_fd; // null on the live host
};

// Tests only: resolve paths under a root by the component walk, as on a
// kernel without openat2.
void use_openat2(bool on);

} // namespace vfioctl::host
