#pragma once
// What 'vm' and 'verify' share: taking devices for a guest (preflight from
// the 'status' verdict, then the whole group to vfio-pci) and giving them back.

#include "cli/context.hpp"
#include "services/devices.hpp"
#include "vm/argv.hpp"
#include "vm/profile.hpp"

#include <string>
#include <vector>

namespace vfioctl::cli {

using services::Passthrough;

// Loads the host model (warnings printed), then takes targets for a guest
// (services::Devices::take) with the bind journal in state_dir. Nothing
// changes when it fails; the Refusal says whether passthrough will not work.
services::Taken<Passthrough> take_devices(Context& ctx, const std::vector<std::string>& targets,
                                          const std::string& state_dir);

// Gives addresses back to their original drivers (the bind journal in
// state_dir); an Error when the kernel refuses.
Status give_devices_back(Context& ctx, const std::vector<std::string>& addresses,
                         const std::string& state_dir);

// What 'vm run' (and 'verify') boots and runs.
struct VmRunOptions {
    vm::ProfileOverrides
        overrides; // kernel, initrd, append, memory, cpus, accel, gpus, console_log
    std::vector<std::string> command;
    std::string modules_dir, busybox, cwd, run_base;
    std::string state_dir;
    double timeout_s = 0, boot_timeout_s = 120;
    std::string unpack = "auto"; // auto, yes, no: boot a bzImage's unpacked ELF (PVH)
};

// Boots the kernel (default: the running one's /boot/vmlinuz), takes the
// GPUs, runs the command inside, gives the GPUs back; returns the command's
// exit code, or 1 with the reason and the last console lines.
int vm_run(Context& ctx, const VmRunOptions& o);

} // namespace vfioctl::cli
