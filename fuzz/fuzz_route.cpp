// /proc/net/route and /proc/net/ipv6_route (the input split at its first NUL).
#include "fuzz.hpp"
#include "host/system.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz_text(data, size);
    size_t nul = text.find('\0');
    std::string_view v4 = text.substr(0, nul),
                     v6 = nul == std::string_view::npos ? "" : text.substr(nul + 1);
    vfioctl::host::parse_default_routes(v4, v6);
    vfioctl::host::parse_default_routes(v6, v4);
    return 0;
}
