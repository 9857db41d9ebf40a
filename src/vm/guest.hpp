#pragma once
// 'vfioctl vm run': boots a kernel straight into one command. vfioctl packs
// an initramfs at run time (static busybox, the few modules that mount the
// host root over virtiofs or virtio-9p, and a generated /init), boots it
// with the host root shared read-only, runs the command as init's child, streams its
// output, and returns its exit code. No udev, no probing that waits.

#include "host/host.hpp"
#include "vm/argv.hpp"
#include "vm/profile.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vfioctl::vm {

// Pure: the release ("6.1.0-56-amd64") in a bzImage's setup header; an
// Error when the data is no bzImage.
Result<std::string> bzimage_release(std::string_view image);

// Pure: the module files (paths as modules.dep lists them) to load, in
// order, for wanted modules: each one's dependencies first, every file once.
// Built-in modules (in builtin_text) need nothing. An Error names a module
// that is neither.
Result<std::vector<std::string>> module_load_order(std::string_view dep_text,
                                                   std::string_view builtin_text,
                                                   const std::vector<std::string>& wanted);

// One file of a cpio archive.
struct CpioEntry {
    std::string name;        // "bin/busybox", no leading '/'
    unsigned mode = 0;       // with type bits: 0100755 file, 040755 directory, 0120777 link
    std::string data;        // file contents, or a link's target
    unsigned rdev_major = 0; // device nodes (020600 for a char device)
    unsigned rdev_minor = 0;
};

// Pure: true when an ELF executable has no program interpreter (it runs in
// an initramfs without a C library).
bool elf_is_static(std::string_view image);

// Pure: a "newc" cpio archive (what the kernel unpacks as an initramfs)
// with the trailer.
std::string cpio_newc(const std::vector<CpioEntry>& entries);

// What the generated /init does.
struct InitPlan {
    std::vector<std::string> modules; // module names to insmod from /lib/vfioctl, in order
    std::vector<std::string> command; // argv to run in the host root
    std::string cwd = "/";            // where the command runs
    std::vector<std::string> env;     // NAME=value for the command
    bool virtiofs = false;            // the host root is virtiofs (else 9p), tag hostroot
};

// Pure: the modules that mount the host root in the guest, for modules.dep.
std::vector<std::string> share_modules(bool virtiofs);

// Pure: a POSIX single-quoted word for s.
std::string sh_quote(std::string_view s);

// Pure: the /init script (busybox sh). It reports on ttyS2, a line each:
// "vfioctl-init started", "vfioctl-init mounted" (the host root, /proc,
// /sys, /dev), "vfioctl-init running", then "vfioctl-init exit N" after the
// command, or "vfioctl-init failed: WHY"; the command's output goes to
// ttyS1; the kernel's console is ttyS0. Then it powers the machine off.
std::string init_script(const InitPlan& plan);

// How to boot a compressed kernel: auto unpacks it under TCG when it can
// (vm/kernel.hpp), yes always (an Error when it cannot), no never.
enum class Unpack { auto_, yes, no };

// What 'vm run' was asked for.
struct RunRequest {
    Profile profile; // boot.kernel, boot.initrd, boot.append, memory, cpus
    std::vector<std::string> command;
    std::string cwd = "/";
    std::string modules_dir; // "" means /lib/modules/RELEASE of the kernel
    std::string busybox;     // "" means found on the host
    std::string run_dir;     // scratch directory for the initramfs and channels
    std::string console_log; // the kernel's console, appended to
    bool kvm = false;
    std::vector<PassSlot> slots;
    int boot_timeout_ms = 120000; // kernel start to the command
    int timeout_ms = 0;           // whole run; 0 for no limit
    std::string qemu;             // the QEMU binary
    Unpack unpack = Unpack::auto_;
    std::string kernel_cache; // where unpacked kernels are kept; "" for default_kernel_cache()
    std::function<void(const std::string&)> warn; // one line, e.g. why virtiofs is not used
    std::chrono::steady_clock::time_point t0 =
        std::chrono::steady_clock::now(); // when vfioctl began the run
};

// One stretch of a boot, from one milestone to the next.
struct BootPhase {
    std::string name; // "kernel output to init"
    double ms = 0;
};

// What happened.
struct RunResult {
    int exit_code = 1; // the command's, or 1 when it never finished
    bool command_ran = false;
    std::string failure;                   // why there is no exit code from the command
    std::vector<std::string> console_tail; // the last console lines, on failure
    std::string waiting_for;       // the milestone not reached, on failure ("" when all were)
    std::vector<BootPhase> phases; // the stretches between the milestones that were reached
    std::string kernel_booted;     // the image QEMU booted (an unpacked ELF, or the bzImage)
    int wakeups = 0;               // times the wait woke up: a tick every 0.5 s until the kernel
                                   // printed, then one for each report of the init and QEMU's end
    double prespawn_ms = 0;        // t0 to QEMU's start: vfioctl's own time
    double boot_ms = 0;            // QEMU start to the command starting
    double total_ms = 0;
    bool virtiofs = false; // the host root was shared over virtiofs (else 9p)
};

// When a boot reached each milestone, in ms after QEMU started; unset when
// it did not.
struct BootMilestones {
    std::optional<double> kernel;  // the kernel's first console output
    std::optional<double> init;    // the initramfs's /init started
    std::optional<double> mounted; // the host root mounted
    std::optional<double> running; // the command started
    std::optional<double> exited;  // the command ended
};

// Pure: the phases between the milestones reached, and what the boot was
// waiting for ("" when the command ended). share names the host root's
// transport ("9p", "virtiofs").
std::pair<std::vector<BootPhase>, std::string> boot_phases(const BootMilestones& m,
                                                           const std::string& share);

// Builds the initramfs: busybox, modules for virtiofs or 9p (decompressed
// .ko only), the init. An Error names what is missing (busybox not static,
// a module nowhere, a compressed module).
Result<std::string> build_initramfs(const host::Host& host, const RunRequest& req,
                                    const std::string& release, bool virtiofs);

// The kernel command line for a run: console on ttyS0, panic ends the
// machine, no_timer_check under TCG, plus the user's.
std::string run_append(const std::string& user_append, bool tcg);

// Boots and runs; streams the command's output to our stdout. Errors are
// for what stops the boot from starting (QEMU missing, bad kernel, virtiofs
// asked for and not usable); a guest that panics or hangs is a RunResult
// with exit_code 1 and the reason. The share: profile.share; auto takes
// virtiofs when virtiofsd is installed, vfioctl runs as root, the kernel
// has the modules and virtiofsd starts, else 9p with a warning that says
// why. A virtiofsd it started is stopped and reaped before it returns.
Result<RunResult> run_guest(const host::Host& host, const RunRequest& req);

} // namespace vfioctl::vm
