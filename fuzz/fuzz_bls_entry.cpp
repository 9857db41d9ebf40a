// BootLoaderSpec entries: the 'options' lines and their edits.
#include "boot/params.hpp"
#include "fuzz.hpp"

using namespace vfioctl::boot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ParamSet s("entry", {{"/boot/loader/entries/x.conf", Format::loader_entry,
                          std::string(fuzz_text(data, size))}});
    edit_params(s);
    s.view();
    return 0;
}
