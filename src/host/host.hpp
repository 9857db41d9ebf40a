#pragma once
// Host: the only code that touches /sys, /proc, /dev, /etc, /boot and
// /lib/modules. It is the aggregate of its seams, each usable alone:
//   Tree (host/tree.hpp)               reading the host's files under a root;
//   StateFiles (host/state_files.hpp)  vfioctl's own files: dirs, atomic
//                                      writes, removal, FileLock;
//   SysfsWrites (host/sysfs_writes.hpp) the writes that change the kernel,
//                                      implemented here on the tree;
//   Process (host/process.hpp)         starting and reaping programs.
// A reader takes `const Tree&`; code that changes the host takes a Host.

#include "host/state_files.hpp"
#include "host/sysfs_writes.hpp"
#include "host/tree.hpp"

#include <string>
#include <string_view>

namespace vfioctl::host {

// A host under a root: its tree, its state files and its kernel writes.
class Host : public StateFiles, public SysfsWrites {
  public:
    // A host rooted at root; "/" is the live machine.
    explicit Host(fs::path root = "/") : StateFiles(std::move(root)) {}

    // Writes data to host path p (O_WRONLY|O_TRUNC, no create), as sysfs
    // expects. Refused on the live host when live writes are forbidden
    // (test binaries forbid them). Virtual: a test kernel reproduces what
    // the kernel does on such writes.
    Status write(std::string_view p, std::string_view data) const override;
    // write() in a child process, waited for at most timeout_ms: a write the
    // kernel blocks on (an unbind) is reported, never waited for forever.
    // The child is left to finish on its own.
    Status write_bounded(std::string_view p, std::string_view data, int timeout_ms) const override;
    // Loads a kernel module with its dependencies, as modprobe does (libkmod).
    // On a recorded tree it never touches the running kernel: it succeeds
    // only when /sys/module/NAME already exists there.
    Status load_module(const std::string& name) const override;

  protected:
    // Whether write() is the plain file write, which write_bounded runs in a
    // child sharing this process's memory; a subclass whose write() runs
    // other code returns false and write_bounded forks for it.
    virtual bool plain_write() const { return true; }
};

} // namespace vfioctl::host
