#include "pci/fabric.hpp"

#include <fmt/format.h>

namespace vfioctl::pci {

namespace {

constexpr uint16_t k_nvidia = 0x10de;

std::string generation_of(uint16_t device) {
    if (device >= 0x1ac0 && device <= 0x1ac2) return "first-generation NVSwitch (HGX-2, V100)";
    if (device == 0x1af1) return "second-generation NVSwitch (HGX A100)";
    if (device >= 0x22a0 && device <= 0x22af) return "third-generation NVSwitch (HGX H100/H200)";
    return fmt::format("NVSwitch [10de:{:04x}]", device);
}

} // namespace

bool is_nvswitch(const PciDevice& d) {
    return d.vendor == k_nvidia && d.class_code == 0x0680;
}

bool is_nvidia_gpu(const PciDevice& d) {
    return d.vendor == k_nvidia && d.is_gpu();
}

std::optional<NvlinkFabric> nvlink_fabric(const Inventory& inv) {
    NvlinkFabric f;
    for (const auto& d : inv.devices) {
        if (is_nvswitch(d)) f.nvswitches.push_back(&d);
        if (is_nvidia_gpu(d)) f.gpus.push_back(&d);
    }
    if (f.nvswitches.empty()) return std::nullopt;
    f.generation = generation_of(f.nvswitches.front()->device);
    return f;
}

std::vector<FabricModel> fabric_models(const NvlinkFabric& f) {
    const std::string n_gpus = std::to_string(f.gpus.size());
    const std::string n_sw = std::to_string(f.nvswitches.size());
    return {
        {"full_passthrough",
         "every GPU (" + n_gpus + ") and every NVSwitch (" + n_sw +
             ") to one VM, with Fabric Manager (nvidia-fabricmanager, the guest driver's "
             "version) running inside that VM",
         "vfioctl vm start NAME --all-gpus --with-nvswitches (it binds them; 'vfioctl bind "
         "--all-gpus --with-nvswitches' binds only)"},
        {"shared_nvswitch",
         "GPUs to tenant VMs in the partitions Fabric Manager offers; the NVSwitches to a "
         "service VM that runs Fabric Manager in shared NVSwitch mode (FABRIC_MODE=1), which "
         "activates a partition before its VM starts",
         "vfioctl bind --with-nvswitches for the service VM; the GPUs of each partition to "
         "its VM"},
        {"single_gpu",
         "one GPU alone, without NVSwitches: its VM sees a PCIe GPU with no NVLink to the "
         "other GPUs (peer-to-peer over PCIe only, no NVLink bandwidth, no multi-GPU "
         "NVLink collectives)",
         "vfioctl bind ADDRESS"},
    };
}

} // namespace vfioctl::pci
