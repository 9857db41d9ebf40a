// A line from QMP: parsed, classified, and read as a query-pci reply.
#include "fuzz.hpp"
#include "vm/qmp.hpp"

using namespace vfioctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto m = vm::parse_qmp_message(fuzz_text(data, size));
    if (!m) return 0;
    auto r = vm::classify_qmp(*m);
    (void)vm::parse_query_pci(*m);
    (void)vm::parse_query_pci(r.value);
    return 0;
}
