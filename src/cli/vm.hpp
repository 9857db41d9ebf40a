#pragma once
// What 'vm' and 'verify' share: taking devices for a guest (preflight from
// the 'status' verdict, then the whole group to vfio-pci) and giving them back.

#include "cli/context.hpp"
#include "vm/argv.hpp"
#include "vm/profile.hpp"

#include <string>
#include <vector>

namespace vfioctl::cli {

// Devices taken for a guest.
struct Passthrough {
    std::vector<vm::PassSlot> slots;
    std::vector<std::string> addresses; // every function passed, "0000:8a:00.0"
    std::vector<std::string> ids;       // their vendor:device, same order
};

// Resolves targets (BDF or vendor:device; a GPU brings the other functions
// of its slot), checks each against the diagnosis (a GPU's verdict must be
// will_work; any device needs an IOMMU group), then binds their groups to
// vfio-pci. Nothing changes when it fails; *code says 3 for "will not
// work" and 1 otherwise.
Result<Passthrough> take_devices(Context& ctx, const std::vector<std::string>& targets,
                                 const std::string& state_dir, int* code);

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
    std::string state_dir = "/var/lib/vfioctl";
    double timeout_s = 0, boot_timeout_s = 120;
    std::string unpack = "auto"; // auto, yes, no: boot a bzImage's unpacked ELF (PVH)
};

// Boots the kernel (default: the running one's /boot/vmlinuz), takes the
// GPUs, runs the command inside, gives the GPUs back; returns the command's
// exit code, or 1 with the reason and the last console lines.
int vm_run(Context& ctx, const VmRunOptions& o);

} // namespace vfioctl::cli
