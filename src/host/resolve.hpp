#pragma once
// Inside host/ only: how a host path is resolved under a Tree's root, for
// the writers (host.cpp, state_files.cpp) that open paths the way Tree does.

#include <string>
#include <string_view>
#include <utility>

namespace vfioctl::host::detail {

// "." for the root itself, else p without its leading slashes.
std::string rel_or_dot(std::string_view p);

// The host path p resolves to inside the root open as root_fd, following
// links the way RESOLVE_IN_ROOT does: ".." stops at the root and an
// absolute target starts again from it. The last component is followed only
// when follow_last; when it does not exist the path is still returned (an
// O_CREAT open makes it). -1 and errno when it cannot be resolved.
int walk_in_root(int root_fd, std::string_view p, bool follow_last, std::string& out);

// Whether openat2 can be used (Linux 5.6 and later); probed once.
bool have_openat2(int root_fd);

// The directory part and last component of a host path ("/a/b" -> "/a", "b").
std::pair<std::string, std::string> split_last(std::string_view p);

} // namespace vfioctl::host::detail
