#pragma once
// A VM profile: what 'vfioctl vm start NAME' boots. Read from TOML
// (/etc/vfioctl/vms/NAME.toml through the Host, or the user's
// $XDG_CONFIG_HOME/vfioctl/vms/NAME.toml), then overridden by flags.

#include "host/host.hpp"
#include "util/result.hpp"
#include "vm/firmware.hpp"
#include "vm/placement.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::vm {

enum class Accel { automatic, kvm, tcg };
// "auto", "kvm", "tcg".
const char* accel_id(Accel a);

// How the host root is shared: "auto" (virtiofs when a usable virtiofsd
// is installed, else 9p), "9p" or "virtiofs".
enum class ShareMode { automatic, ninep, virtiofs };

// What the VM boots: a disk image, or a kernel with an optional initrd.
struct BootSpec {
    std::string disk;
    std::string kernel;
    std::string initrd;
    std::string append;
};

struct Profile {
    std::string name;
    std::string source; // the file it was read from; "" when built from flags only
    uint64_t memory_mib = 2048;
    int cpus = 2;
    std::string machine = "q35";
    Accel accel = Accel::automatic;
    BootSpec boot;
    bool share_host_root = false;           // the host's / read-only, tag "hostroot"
    ShareMode share = ShareMode::automatic; // over what ('vm start': 9p; virtiofs is refused)
    std::optional<int> ssh_port;            // host port forwarded to the guest's 22
    std::string console_log;                // "" means console.log in the run directory
    std::vector<std::string> gpus;          // BDFs or vendor:device IDs
    std::vector<std::string> extra_args;
    FirmwareConfig firmware; // keys firmware, ovmf_code, ovmf_vars
    // Placement on a NUMA host (vm/placement.hpp): numa = "auto" | "off" | N,
    // hugepages = "auto" | "off" | "2M" | "1G", pin_vcpus = true | false
    // (unset: pinned when the RAM is bound to a node).
    NumaWish numa;
    HugePagesWish hugepages = HugePagesWish::automatic;
    PinWish pin_vcpus;
};

// Flags given on the command line; each set one replaces the profile's value.
struct ProfileOverrides {
    std::optional<std::string> memory;
    std::optional<int> cpus;
    std::optional<std::string> machine;
    std::optional<std::string> accel;
    std::optional<std::string> disk;
    std::optional<std::string> kernel;
    std::optional<std::string> initrd;
    std::optional<std::string> append;
    std::optional<bool> share_host_root;
    std::optional<std::string> share;
    std::optional<int> ssh_port;
    std::optional<std::string> console_log;
    std::vector<std::string> gpus;       // added to the profile's
    std::vector<std::string> extra_args; // added to the profile's
};

// "2048", "2048M", "4G", "4GiB" to MiB; an Error for anything else or zero.
Result<uint64_t> parse_memory(std::string_view text);
// "auto", "kvm", "tcg"; an Error naming the allowed values otherwise.
Result<Accel> parse_accel(std::string_view text);

// "auto", "9p", "virtiofs"; an Error naming the allowed values otherwise.
Result<ShareMode> parse_share(std::string_view text);

// Parses a profile's TOML text. file names it in errors, which say
// "FILE:LINE: ..." with the key for syntax errors, unknown keys and values
// of the wrong type or range.
Result<Profile> parse_profile(std::string_view text, const std::string& file,
                              const std::string& name);

// Where NAME's profile is looked for, first match wins: the user's
// ($XDG_CONFIG_HOME or ~/.config)/vfioctl/vms/NAME.toml, then
// /etc/vfioctl/vms/NAME.toml (a host path). A NAME with a '/' or ending
// in ".toml" is a file path itself.
std::vector<std::string> profile_paths(const std::string& name);

// Loads NAME's profile: /etc paths read from host (under --root), the
// user's own files from user_files (the running machine's tree). When none
// exists: a default profile named NAME if allow_missing, else an Error
// listing where it looked.
Result<Profile> load_profile(const host::Tree& host, const host::Tree& user_files,
                             const std::string& name, bool allow_missing);
// The same with the user's files read from the running machine ("/").
Result<Profile> load_profile(const host::Tree& host, const std::string& name, bool allow_missing);

// Applies flags; an Error for a bad memory size, accelerator or share.
Status apply_overrides(Profile& p, const ProfileOverrides& o);

// A VM name usable as a directory name: [A-Za-z0-9_.-], not starting with '.'.
Status check_vm_name(const std::string& name);

} // namespace vfioctl::vm
