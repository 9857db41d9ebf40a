#pragma once
// A started VM's run directory (/run/vfioctl/NAME/): its record, QMP and
// console sockets, pidfile and console log; and the accelerator decision.

#include "host/host.hpp"
#include "host/system.hpp"
#include "vm/profile.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vfioctl::vm {

// What 'vm start' recorded about a running VM (vm.json in its run directory).
struct VmRecord {
    std::string name;
    int pid = 0;
    int64_t started = 0; // Unix time
    std::string accel;   // "kvm", "tcg"
    std::string qmp_socket;
    std::string console_socket;
    std::string console_log;
    std::string pidfile;
    std::optional<int> ssh_port;
    std::vector<std::string> devices;    // host addresses passed through (and bound by vfioctl)
    std::vector<std::string> device_ids; // their vendor:device, same order
    std::vector<std::string> argv;
    std::string profile; // the profile file, "" when none
};

// Where run directories live: $VFIOCTL_RUN_DIR, else /run/vfioctl for root,
// else $XDG_RUNTIME_DIR/vfioctl, else /tmp/vfioctl-UID.
std::string default_run_base();

// base/NAME.
std::string run_dir(const std::string& base, const std::string& name);

// Reads dir/vm.json; an Error when missing or unreadable.
Result<VmRecord> read_record(const std::string& dir);
// Writes dir/vm.json atomically (mode 0600).
Status write_record(const std::string& dir, const VmRecord& r);
// Creates dir with mode 0700 (and its parents).
Status make_run_dir(const std::string& dir);
// Removes a run directory and everything in it; missing is fine.
void remove_run_dir(const std::string& dir);
// Names of the VMs with a run directory under base, sorted.
std::vector<std::string> list_vms(const std::string& base);

// The accelerator to use and what to tell the user.
struct AccelChoice {
    bool kvm = false;
    std::string warning;        // "" when none
    std::optional<Error> error; // KVM asked for and not usable
};

// Pure: auto means KVM when usable, else TCG with a warning that gives the
// reason; kvm when unusable is an Error; tcg is TCG.
AccelChoice choose_accel(Accel wanted, const host::KvmState& kvm);

// The KVM facts alone, by the one rule 'status' uses too
// (host::read_kvm_state): cheap enough for every 'vm run'.
host::KvmState read_kvm_state(const host::Tree& host);

} // namespace vfioctl::vm
