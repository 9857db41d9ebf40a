#pragma once
// The kernel's log and this program's own path, for 'verify'.

#include "host/host.hpp"

#include <string>

namespace vfioctl::services {

// The kernel log ring buffer of the live host (klogctl); on a recorded
// tree, /.vfioctl/dmesg. "" when it cannot be read.
std::string kernel_log(const host::Host& host);

// The path of the running vfioctl binary (/proc/self/exe); an Error when
// it cannot be read.
Result<std::string> self_binary();

} // namespace vfioctl::services
