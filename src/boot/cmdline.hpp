#pragma once
// The kernel command line as boot/ names it: the pure parser lives in
// kernel/cmdline.hpp, below both boot/ and iommu/.

#include "kernel/cmdline.hpp"

namespace vfioctl::boot {

using kernel::interpret;
using kernel::IommuCmdline;
using kernel::parse_kernel_bool;
using kernel::Switch;
using kernel::Token;
using kernel::tokenize;

} // namespace vfioctl::boot
