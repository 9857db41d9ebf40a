#pragma once
// Shared by the libFuzzer targets: the input as text.

#include <cstddef>
#include <cstdint>
#include <string_view>

inline std::string_view fuzz_text(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}
