#include "vm/pinning.hpp"

#include "vm/qmp.hpp"

#include <algorithm>
#include <cerrno>
#include <sched.h>
#include <string>

namespace vfioctl::vm {

Result<std::vector<int>> parse_vcpu_threads(const nlohmann::json& reply) {
    if (!reply.is_array() || reply.empty())
        return Error{"query-cpus-fast returned no vCPUs", {}, {}, 0};
    std::vector<std::pair<int64_t, int>> by_index;
    for (const auto& c : reply) {
        if (!c.is_object() || !c.contains("thread-id") || !c["thread-id"].is_number_integer())
            return Error{"query-cpus-fast: a vCPU without a thread-id", {}, {}, 0};
        const int64_t tid = c["thread-id"].get<int64_t>();
        if (tid <= 0 || tid > 0x3fffffff)
            return Error{"query-cpus-fast: bad thread-id " + std::to_string(tid), {}, {}, 0};
        const int64_t index = c.contains("cpu-index") && c["cpu-index"].is_number_integer()
                                  ? c["cpu-index"].get<int64_t>()
                                  : static_cast<int64_t>(by_index.size());
        by_index.emplace_back(index, static_cast<int>(tid));
    }
    std::sort(by_index.begin(), by_index.end());
    std::vector<int> out;
    for (const auto& [i, t] : by_index)
        out.push_back(t);
    return out;
}

Status pin_threads(const std::vector<int>& threads, const std::vector<int>& cpus) {
    if (cpus.empty()) return Error{"no CPUs to pin to", {}, {}, 0};
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : cpus) {
        if (c < 0 || c >= CPU_SETSIZE)
            return Error{"CPU " + std::to_string(c) + " is beyond what can be pinned", {}, {}, 0};
        CPU_SET(c, &set);
    }
    for (int t : threads)
        if (sched_setaffinity(t, sizeof set, &set) != 0)
            return system_error("cannot pin vCPU thread " + std::to_string(t), {}, errno);
    return {};
}

Result<std::vector<int>> pin_vcpus(QmpClient& qmp, const std::vector<int>& cpus) {
    auto reply = qmp.execute("query-cpus-fast");
    if (!reply) return reply.error();
    auto threads = parse_vcpu_threads(*reply);
    if (!threads) return threads.error();
    if (auto s = pin_threads(*threads, cpus); !s) return s.error();
    return threads;
}

} // namespace vfioctl::vm
