#pragma once
// Where vfioctl keeps its state: the journals and lock (state dir, a host
// path under --root), the VMs' run directories, made once per run.

#include <string>

namespace vfioctl::services {

// The state directory when --state-dir is not given.
inline constexpr const char* k_default_state_dir = "/var/lib/vfioctl";

struct Paths {
    // Journals and the bind lock, a host path resolved under the host's root.
    std::string state_dir = k_default_state_dir;
    // Where VMs keep their sockets, pidfiles and records (a real path).
    std::string run_base;

    // The defaults: the state dir above; the run base from $VFIOCTL_RUN_DIR,
    // else /run/vfioctl for root, else $XDG_RUNTIME_DIR/vfioctl or
    // /tmp/vfioctl-UID. Never fails.
    static Paths from_environment();
};

} // namespace vfioctl::services
