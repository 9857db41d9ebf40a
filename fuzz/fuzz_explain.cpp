// 'vfioctl explain' on any text, with an empty host.
#include "fuzz.hpp"
#include "iommu/explain.hpp"
#include "kernel/cmdline.hpp"

using namespace vfioctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static host::SystemFacts facts;
    static pci::Inventory inv;
    static std::vector<iommu::IommuGroup> groups;
    static iommu::IommuState state;
    static kernel::IommuCmdline cmdline;
    iommu::ExplainContext ctx{facts, inv, groups, state, cmdline};
    iommu::explain(fuzz_text(data, size), ctx);
    return 0;
}
