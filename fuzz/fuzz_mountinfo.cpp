// /proc/self/mountinfo.
#include "fuzz.hpp"
#include "host/system.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    vfioctl::host::parse_mountinfo(fuzz_text(data, size));
    return 0;
}
