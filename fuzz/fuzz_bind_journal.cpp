// The bind journal (vfio/journal).
#include "fuzz.hpp"
#include "vfio/journal.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)vfioctl::vfio::parse_journal(fuzz_text(data, size), "/var/lib/vfioctl/journal.json");
    return 0;
}
