// kernelstub's JSON configuration: user.kernel_options and its edits.
#include "boot/params.hpp"
#include "fuzz.hpp"

using namespace vfioctl::boot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ParamSet s("kernelstub", {{"/etc/kernelstub/configuration", Format::kernelstub_json,
                               std::string(fuzz_text(data, size))}});
    edit_params(s);
    return 0;
}
