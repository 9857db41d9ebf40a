// Kernel command lines: the tokenizer, its IOMMU reading, and a cmdline
// file's parameters edited in place.
#include "boot/cmdline.hpp"
#include "boot/params.hpp"
#include "fuzz.hpp"

using namespace vfioctl::boot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz_text(data, size);
    interpret(tokenize(text));
    ParamSet s("cmdline", {{"/etc/kernel/cmdline", Format::cmdline_file, std::string(text)}});
    edit_params(s);
    return 0;
}
