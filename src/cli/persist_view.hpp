#pragma once
// Persistent bindings (vfioctl's, driverctl's, vfio-pci ids), their
// conflicts and the files that could not be read, as JSON and text for
// 'status', 'groups' and 'bind'.

#include "vfio/persist.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vfioctl::cli {

// What status, groups and bind show: the configuration, its conflicts on
// this host's devices, and whether the boot hooks are installed.
struct PersistView {
    vfio::PersistConfig config;
    std::vector<vfio::Conflict> conflicts;
    vfio::BootHooks hooks;
};

// Reads it all (the next boot's command line when given).
PersistView read_persist_view(const host::Tree& host, const pci::Inventory& inv,
                              const std::optional<std::string>& next_cmdline);

// {"bindings": [{"source", "where", "address", "ids", "driver", "devices"}],
// "softdeps": [{"module", "where"}], "conflicts": [{"kind", "address",
// "where", "text"}], "problems": [{"source", "where", "text", "unreadable"}],
// "masked", "known", "boot_hooks": {"installed", "missing"}}. With only
// non-empty, bindings and conflicts of those devices only.
nlohmann::json persist_json(const PersistView& v, const pci::Inventory& inv,
                            const std::vector<pci::PciAddress>& only = {});
// A "Persistent bindings" section (empty when there is nothing to say), each
// line indented by two spaces; the same filter as persist_json.
std::string persist_text(const PersistView& v, const pci::Inventory& inv,
                         const std::vector<pci::PciAddress>& only = {});

} // namespace vfioctl::cli
