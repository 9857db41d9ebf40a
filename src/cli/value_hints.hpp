#pragma once
// What the values of some options and positionals are, for the shell
// completions (tools/gendoc.cpp): CLI11 knows allowed sets (IsMember) but
// not that a TEXT is a file, a PCI address or a VM name. The generator
// fails when a row names no option of its command, so the table cannot
// go stale silently.

namespace vfioctl::cli {

enum class ValueKind {
    file,    // a file path
    dir,     // a directory path
    pci,     // a PCI address of this host (DIR/sys/bus/pci/devices with --root DIR)
    vm,      // the name of a VM vfioctl started (a run directory with vm.json)
    profile, // a VM profile name (/etc/vfioctl/vms/NAME.toml) or a .toml file
};

struct ValueHint {
    const char* command; // "bind", "vm start"; "" for every command that has the option
    const char* option;  // "--kernel", or a positional's name ("target")
    ValueKind kind;
};

// Two rows a line, by hand: clang-format would give each its own line.
// clang-format off
inline constexpr ValueHint k_value_hints[] = {
    {"", "--root", ValueKind::dir},           {"", "--state-dir", ValueKind::dir},
    {"", "--run-dir", ValueKind::dir},        {"", "--kernel", ValueKind::file},
    {"", "--initrd", ValueKind::file},        {"", "--console-log", ValueKind::file},
    {"", "--disk", ValueKind::file},          {"", "--modules", ValueKind::dir},
    {"", "--busybox", ValueKind::file},       {"", "--cwd", ValueKind::dir},
    {"snapshot", "dir", ValueKind::dir},      {"bind", "target", ValueKind::pci},
    {"unbind", "target", ValueKind::pci},     {"groups", "--device", ValueKind::pci},
    {"verify", "--gpu", ValueKind::pci},      {"verify", "--expect", ValueKind::pci},
    {"vm start", "--gpu", ValueKind::pci},    {"vm run", "--gpu", ValueKind::pci},
    {"vm start", "name", ValueKind::profile}, {"vm stop", "name", ValueKind::vm},
    {"vm status", "name", ValueKind::vm},     {"vm console", "name", ValueKind::vm},
    {"vm export", "name", ValueKind::profile}, {"vm export", "--gpu", ValueKind::pci},
    {"vm export", "--output", ValueKind::file},
};
// clang-format on

} // namespace vfioctl::cli
