#pragma once
// Test-only fault points: named places in a multi-step change where a test
// can make the process die as if killed, to prove that 'recover' restores
// the host from there. Inert unless a test arms one; the release binary
// never arms them (only builds with VFIOCTL_FAULT_POINTS read the
// VFIOCTL_FAULT_POINT environment variable).

#include <string>
#include <string_view>

namespace vfioctl::util {

// Arms name: the nth time (1-based) the process passes fault_point(name), it
// exits at once with code 86, skipping destructors and buffered output.
// Arming restarts the pass counts.
void arm_fault_point(std::string name, int nth = 1);
void disarm_fault_points();
// Marks a place; exits there when armed. Also counts passes, for tests.
void fault_point(std::string_view name);
// How many times name was passed since the last disarm (tests count points).
int fault_point_passes(std::string_view name);

} // namespace vfioctl::util
