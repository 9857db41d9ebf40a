// VM profiles (TOML).
#include "fuzz.hpp"
#include "vm/profile.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)vfioctl::vm::parse_profile(fuzz_text(data, size), "/etc/vfioctl/vms/fuzz.toml", "fuzz");
    return 0;
}
