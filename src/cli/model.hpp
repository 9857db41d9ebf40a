#pragma once
// The host model with its warnings printed, and the device views that
// status and groups share (JSON objects and text lines).

#include "boot/setup.hpp"
#include "cli/context.hpp"
#include "iommu/diagnosis.hpp"
#include "services/host_model.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vfioctl::cli {

using services::HostModel;
using services::match_devices;

// services::load_host with the journal from state_dir, its warnings printed
// on ctx.err; fails only when the root holds no PCI tree at all.
Result<HostModel> load_host(Context& ctx, const std::string& state_dir, bool devices_only = false);

// The diagnosis's view of the next boot, from what boot::inspect_boot read.
iommu::NextBoot next_boot_of(const boot::BootState& bs);

nlohmann::json device_json(const pci::PciDevice& d, const iommu::DeviceRole& role);
std::vector<std::string> role_flags(const iommu::DeviceRole& role);
// "8a:00.0 [10de:2336] 3D controller: NVIDIA Corporation GH100 [H100 PCIe] (nvidia)".
std::string device_line(const pci::PciDevice& d);

} // namespace vfioctl::cli
