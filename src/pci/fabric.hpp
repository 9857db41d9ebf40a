#pragma once
// NVLink fabrics: the NVSwitches of an HGX/DGX baseboard and the GPUs they
// connect, and the passthrough models NVIDIA's Fabric Manager supports for
// them. The PCI tree does not show NVLink wiring: on those baseboards every
// SXM GPU has NVLinks to every NVSwitch, so every NVIDIA GPU of a host with
// NVSwitches is taken to share their fabric, and said to be inferred. Pure.

#include "pci/device.hpp"

#include <optional>
#include <string>
#include <vector>

namespace vfioctl::pci {

// An NVIDIA NVSwitch (vendor 10de, class 0680 "bridge: other").
bool is_nvswitch(const PciDevice& d);
// An NVIDIA display-class function (a GPU, not its audio function).
bool is_nvidia_gpu(const PciDevice& d);

struct NvlinkFabric {
    std::vector<const PciDevice*> nvswitches; // by address
    std::vector<const PciDevice*> gpus;       // the NVIDIA GPUs, by address
    // "third-generation NVSwitch (HGX H100/H200)" and the like; "NVSwitch
    // [10de:XXXX]" for IDs vfioctl does not know.
    std::string generation;
};

// The host's NVLink fabric; nullopt without NVSwitches.
std::optional<NvlinkFabric> nvlink_fabric(const Inventory& inv);

// A passthrough model of the Fabric Manager User Guide, for this fabric.
struct FabricModel {
    std::string id;      // "full_passthrough", "shared_nvswitch", "single_gpu"
    std::string summary; // what goes where, in words
    std::string how;     // the vfioctl command or the next step
};
std::vector<FabricModel> fabric_models(const NvlinkFabric& f);

} // namespace vfioctl::pci
