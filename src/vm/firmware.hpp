#pragma once
// The guest's firmware: SeaBIOS (QEMU's default) or UEFI (OVMF, with a
// per-VM copy of its variable store), and the 64-bit MMIO aperture OVMF
// must give large BARs. Finding and copying files goes through the Host;
// the argv part is pure.

#include "host/host.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::vm {

struct MmioPlan;

enum class Firmware { bios, uefi };
// "bios", "uefi".
const char* firmware_id(Firmware f);
// "bios", "uefi"; an Error naming the allowed values otherwise.
Result<Firmware> parse_firmware(std::string_view text);

// A profile's firmware keys: firmware, ovmf_code, ovmf_vars.
struct FirmwareConfig {
    Firmware kind = Firmware::bios;
    std::string ovmf_code; // host path; "" looks in the ovmf package's places
    std::string ovmf_vars; // the variable store template; "" likewise
};

// The OVMF images to use (host paths).
struct OvmfFiles {
    std::string code;
    std::string vars_template;
};

// Where the ovmf package puts its images, in the order they are tried: the
// 4 MiB build first, then the 2 MiB one (a code image and its own
// variable store always come as a pair).
const std::vector<OvmfFiles>& ovmf_candidates();

// The code and variable-store template: the profile's ovmf_code and
// ovmf_vars when set, else the first candidate pair that exists. An Error
// naming the missing file and the ovmf package otherwise.
Result<OvmfFiles> find_ovmf(const host::Tree& host, const FirmwareConfig& c);

// The host path of VM name's own variable store: STATE_DIR/vms/NAME/OVMF_VARS.fd.
std::string vars_path(const std::string& state_dir, const std::string& name);

// Makes VM name's variable store from the template the first time (mode
// 0600) and keeps it on every later call, so that
// what the guest stored (boot entries) survives restarts. Its host path,
// or an Error when the template cannot be read or the copy not written.
Result<std::string> prepare_vars(const host::StateFiles& host, const std::string& state_dir,
                                 const std::string& name, const std::string& vars_template);

// What the QEMU argv needs of the firmware, resolved by the caller.
struct FirmwareLaunch {
    Firmware kind = Firmware::bios;
    std::string code; // real paths QEMU opens
    std::string vars;
    // false leaves OVMF's 64-bit aperture at its own default (the proof
    // test shows what that does to a large BAR); never false for users.
    bool size_aperture = true;
};

// For firmware = "uefi": finds OVMF and prepares the VM's variable store;
// for "bios": an empty launch. Nothing is written when OVMF is missing.
Result<FirmwareLaunch> prepare_firmware(const host::StateFiles& host, const FirmwareConfig& c,
                                        const std::string& state_dir, const std::string& name);

// Pure: OVMF's 64-bit PCI aperture in MiB for the window plan_mmio sized,
// or 0 when OVMF's default already holds it.
uint64_t ovmf_aperture_mib(const MmioPlan& mmio);

// Pure: the firmware's arguments: OVMF's pflash drives, and its aperture
// (fw_cfg) when the window mmio plans is larger than OVMF's default.
std::vector<std::string> firmware_argv(const FirmwareLaunch& f, const MmioPlan& mmio);

} // namespace vfioctl::vm
