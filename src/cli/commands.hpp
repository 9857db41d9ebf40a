#pragma once
// One row per subcommand: its name, help, option setup and handler.

#include "cli/context.hpp"

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <vector>

namespace vfioctl::cli {

struct Command {
    const char* name;
    const char* help;
    // Adds the command's options to sub (their defaults from paths);
    // returns the handler, which runs after parsing and returns the exit code.
    std::function<std::function<int(Context&)>(CLI::App& sub, const services::Paths& paths)> setup;
};

const std::vector<Command>& commands();

// The longest wait a seconds option takes: its milliseconds fit an int.
inline constexpr double k_max_seconds = 1e6;
// Checks a seconds option: a finite number from 0 to k_max_seconds; nan,
// inf and negative values are usage errors (exit 2).
CLI::Validator seconds_value();
// Checks an option that names a host path: absolute, without ".."
// components, so that it stays under --root; anything else is a usage error
// that names the option.
CLI::Validator host_path_value(const std::string& option);
// Checks a --state-dir: an absolute path without ".." components, so that
// it stays under --root; anything else is a usage error.
const CLI::Validator& state_dir_check();

// The diagnosis commands.
Command status_command();
// The host's facts in the formats of fleet tools.
Command export_command();
Command groups_command();
Command explain_command();
Command snapshot_command();

// Devices to vfio-pci and back.
Command bind_command();
Command unbind_command();
Command recover_command();

// The IOMMU in the boot configuration: show, enable, disable, revert.
Command iommu_command();

// QEMU VMs with or without a GPU, and the proof inside the guest.
Command vm_command();
Command verify_command();

} // namespace vfioctl::cli
