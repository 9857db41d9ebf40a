#pragma once
// Pinning a running guest's vCPU threads to host CPUs: the thread IDs from
// QMP query-cpus-fast, then sched_setaffinity on each.

#include "util/result.hpp"

#include <nlohmann/json.hpp>
#include <vector>

namespace vfioctl::vm {

class QmpClient;

// Pure: the vCPU thread IDs in a query-cpus-fast reply, in cpu-index
// order; an Error when the reply is not shaped like one.
Result<std::vector<int>> parse_vcpu_threads(const nlohmann::json& reply);

// Sets each thread's affinity to cpus; an Error naming the first thread
// the kernel refused (the ones before it stay pinned).
Status pin_threads(const std::vector<int>& threads, const std::vector<int>& cpus);

// Asks QEMU (over qmp) for its vCPU threads and pins them to cpus; the
// thread IDs pinned, or an Error.
Result<std::vector<int>> pin_vcpus(QmpClient& qmp, const std::vector<int>& cpus);

} // namespace vfioctl::vm
