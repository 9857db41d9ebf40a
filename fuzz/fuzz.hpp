#pragma once
// Shared by the libFuzzer targets: the input as text.

#include <cstddef>
#include <cstdint>
#include <string_view>

inline std::string_view fuzz_text(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// The edits vfioctl makes to a parameter set (a boot::ParamSet): replace the
// first effective parameter, remove the last, append one.
template <class ParamSet> void edit_params(ParamSet& s) {
    auto v = s.view();
    if (!v.effective.empty()) {
        (void)s.replace(v.effective.front(), "intel_iommu=on");
        (void)s.remove(s.view().effective.back());
    }
    (void)s.append("iommu=pt");
}
