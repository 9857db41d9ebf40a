#pragma once
// What this binary was built from. The version is the project's
// (CMakeLists.txt); the commit is written at build time by
// cmake/build_info.cmake.

namespace vfioctl {

// The git commit, short form, with "-dirty" when tracked files differed
// from it; "unknown" when built outside a git checkout without
// VFIOCTL_COMMIT.
const char* build_commit();

} // namespace vfioctl
