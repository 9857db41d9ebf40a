#pragma once
// SysfsWrites: the writes that change the running kernel (sysfs attributes,
// module loading). Host implements them on a tree; a test kernel
// (tests/unit/fake_kernel.hpp) reproduces what the kernel does on them.

#include "util/result.hpp"

#include <string>
#include <string_view>

namespace vfioctl::host {

class Tree;

// The interface to the kernel's writable files.
class SysfsWrites {
  public:
    virtual ~SysfsWrites() = default;
    // Writes data to host path p (O_WRONLY|O_TRUNC, no create), as sysfs
    // expects; an Error with the path and errno.
    virtual Status write(std::string_view p, std::string_view data) const = 0;
    // write() that gives up after timeout_ms: a write the kernel blocks on
    // (an unbind) is reported with ETIMEDOUT, never waited for forever.
    virtual Status write_bounded(std::string_view p, std::string_view data,
                                 int timeout_ms) const = 0;
    // Loads a kernel module with its dependencies, as modprobe does; an
    // Error names the module.
    virtual Status load_module(const std::string& name) const = 0;
};

// Forbids every write through a live tree (sysfs, modules, state files);
// test binaries call this first. Also forbidden when
// VFIOCTL_FORBID_LIVE_WRITES=1.
void forbid_live_writes();
// True when forbid_live_writes ran or the variable is set.
bool live_writes_forbidden();

// The one live-write rule: an Error ("write to the live host refused (test
// guard)") for any write to host path p of a live tree while live writes
// are forbidden; a tree under another root is always fine.
Status check_live_write(const Tree& tree, std::string_view p);

} // namespace vfioctl::host
