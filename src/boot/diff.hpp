#pragma once
// Unified diffs of configuration files, as 'diff -u' and 'git diff' print
// them (and 'patch -p1' applies them). Pure.

#include <string>
#include <string_view>

namespace vfioctl::boot {

// The unified diff from before to after with context lines around each
// change, under the labels "a/PATH" and "b/PATH" (host path without its
// leading slash); "" when the texts are equal.
std::string unified_diff(std::string_view before, std::string_view after, std::string_view path,
                         int context = 3);

} // namespace vfioctl::boot
