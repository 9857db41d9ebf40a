#pragma once
// Which boot setup a host has, found from its files (never guessed): GRUB as
// Debian and Ubuntu ship it, GRUB with BootLoaderSpec entries (Fedora, RHEL),
// systemd-boot, kernelstub (Pop!_OS), proxmox-boot-tool, NixOS. Where its
// kernel command line is written, what the next boot gets, the command that
// makes the boot loader pick up an edit, and what the user must do by hand
// where vfioctl does not edit. Reads through Host only.

#include "boot/params.hpp"
#include "boot/plan.hpp"
#include "host/host.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vfioctl::boot {

enum class Loader { grub, grub_bls, systemd_boot, kernelstub, proxmox, nixos, unknown };

// "grub", "grub-bls", "systemd-boot", "kernelstub", "proxmox-boot-tool", "nixos", "unknown".
const char* loader_id(Loader l);

struct BootSetup {
    Loader loader = Loader::unknown;
    std::string description;           // "GRUB (Debian/Ubuntu: /etc/default/grub, update-grub)"
    std::vector<std::string> evidence; // the files that told, in words
    std::vector<ParamSet> sets;        // where command lines are written, with the files' text now
    // The file the boot loader reads at boot (grub.cfg, the default BLS or
    // loader entry) and the command line it holds, when readable.
    std::string generated_path;
    std::optional<std::string> generated_cmdline;
    std::vector<std::string> notes;
    // Whether vfioctl edits this setup (NixOS and unknown setups get instructions).
    bool editable() const {
        return loader != Loader::nixos && loader != Loader::unknown && !sets.empty();
    }
};

// grubenv's variables ("# GRUB Environment Block", key=value lines, '#' padding).
std::map<std::string, std::string> read_grubenv(std::string_view text);

// Finds the boot setup under host's root and reads its files. Never fails:
// unreadable files become notes (and an unknown setup).
BootSetup detect_setup(const host::Host& host);

// The command that makes the boot loader use edited files, for a change
// that added and removed these parameters.
struct Regenerate {
    std::vector<std::string>
        argv;            // empty when none is needed (systemd-boot entries are read as they are)
    bool found = true;   // the program exists on the host
    std::string missing; // which program is missing, and the package that has it
};
Regenerate regenerate_command(const host::Host& host, const BootSetup& setup,
                              const std::vector<std::string>& added,
                              const std::vector<std::string>& removed);

// The IOMMU the firmware describes: DMAR means Intel's, IVRS AMD's; the
// CPU vendor decides only when neither table (nor an IOMMU unit) exists.
struct PlatformGuess {
    std::optional<Platform> platform;
    std::string
        evidence; // "ACPI DMAR table", "CPU vendor GenuineIntel (no ACPI DMAR or IVRS table)"
    bool firmware_table = false; // a DMAR or IVRS table exists
    // The running kernel turns the Intel IOMMU on without intel_iommu=on
    // (CONFIG_INTEL_IOMMU_DEFAULT_ON in /boot/config-RELEASE); unset when unknown.
    std::optional<bool> intel_default_on;
};
PlatformGuess detect_platform(const host::Host& host);

// Steps for the user where vfioctl does not edit (NixOS, unknown setups),
// each one exact: the file, the line, the command.
std::vector<std::string> manual_steps(const BootSetup& setup, const Goal& goal,
                                      std::string_view running_cmdline);

// What the boot configuration means for the running system.
struct BootState {
    BootSetup setup;
    std::optional<std::string>
        configured_cmdline; // from the configuration files; none when unknown
    std::optional<std::string>
        next_cmdline; // what the next boot gets: generated when readable, else configured
    std::string running_cmdline;         // /proc/cmdline
    bool running_known = true;           // false when /proc/cmdline cannot be read
    std::vector<std::string> next_iommu; // IOMMU and VFIO parameters of each
    std::vector<std::string> running_iommu;
    bool reboot_pending = false; // the next boot's IOMMU parameters differ from the running ones
    bool regenerate_pending =
        false; // the configuration says more than the boot loader's file does yet
    std::string regenerate_command; // what makes the boot loader's file catch up, when it is behind
    std::string reason;             // both facts in words
};

// "yes", "no", or "unknown" when the running command line cannot be read
// (then nothing says whether the next boot differs from it).
inline const char* pending_word(bool running_known, bool pending) {
    return !running_known ? "unknown" : pending ? "yes" : "no";
}

// Reads the setup and /proc/cmdline and compares. Never fails.
BootState inspect_boot(const host::Host& host);
BootState inspect_boot(const host::Host& host, BootSetup setup);

} // namespace vfioctl::boot
