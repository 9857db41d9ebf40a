// kernelstub's JSON configuration: user.kernel_options and its edits.
#include "boot/params.hpp"
#include "fuzz.hpp"

using namespace vfioctl::boot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ParamSet s("kernelstub", {{"/etc/kernelstub/configuration", Format::kernelstub_json,
                               std::string(fuzz_text(data, size))}});
    auto v = s.view();
    if (!v.effective.empty()) {
        (void)s.replace(v.effective.front(), "intel_iommu=on");
        (void)s.remove(s.view().effective.back());
    }
    (void)s.append("iommu=pt");
    return 0;
}
