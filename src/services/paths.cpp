#include "services/paths.hpp"

#include "vm/machine.hpp"

namespace vfioctl::services {

Paths Paths::from_environment() {
    Paths p;
    p.run_base = vm::default_run_base();
    return p;
}

} // namespace vfioctl::services
