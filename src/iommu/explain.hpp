#pragma once
// 'vfioctl explain': maps QEMU, VFIO and NVIDIA driver error messages to
// what they mean on this host and what to do. Pure: text and facts in,
// explanations out.

#include "iommu/diagnosis.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::iommu {

struct Explanation {
    std::string id;                        // stable key: "no_iommu_group", "group_not_viable", ...
    std::string matched;                   // the line of the input that matched
    std::string meaning;                   // what the message means in general
    std::vector<std::string> on_this_host; // what this host's facts say about it
    std::vector<std::string> remedy;       // what to do, in order
    std::optional<pci::PciAddress> device; // the device the message names
    std::optional<int> group;              // the group the message names
};

// What explain needs to know about the host.
struct ExplainContext {
    const host::SystemFacts& facts;
    const pci::Inventory& inv;
    const std::vector<IommuGroup>& groups;
    const IommuState& iommu;
    const kernel::IommuCmdline& cmdline;
};

// Every recognised message in text (a line or a whole log), in input order,
// one explanation per kind and device. Empty when nothing is recognised.
std::vector<Explanation> explain(std::string_view text, const ExplainContext& ctx);

// The ids explain knows, for help text and tests.
std::vector<std::string> known_messages();

} // namespace vfioctl::iommu
