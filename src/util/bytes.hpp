#pragma once
// Little-endian integers in a byte string (ELF and boot-protocol headers).

#include <cstddef>
#include <string_view>

namespace vfioctl::util {

// The T stored little-endian at s[off]; the caller checks that
// off + sizeof(T) <= s.size().
template <typename T> T le(std::string_view s, size_t off) {
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
        v |= static_cast<T>(static_cast<unsigned char>(s[off + i])) << (8 * i);
    return v;
}

} // namespace vfioctl::util
