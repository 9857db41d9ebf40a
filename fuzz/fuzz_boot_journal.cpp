// The boot journal (boot/journal).
#include "boot/journal.hpp"
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto j =
        vfioctl::boot::parse_journal(fuzz_text(data, size), "/var/lib/vfioctl/boot-journal.json");
    if (j) j->last_undoable();
    return 0;
}
