#pragma once
// What 'status' shows of NUMA: each GPU's node and local CPUs, each node's
// CPUs, free memory and huge pages, hugetlbfs mounts, and whether the
// locked-memory limit lets VFIO pin a VM's RAM.

#include "host/numa.hpp"
#include "vm/placement.hpp"
#include "vm/profile.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vfioctl::cli {

struct NumaView {
    host::NumaFacts facts;
    std::vector<host::DeviceNuma> gpus;
    uint64_t vm_memory_mib = 0; // the RAM the memlock limit is judged against
    vm::MemlockVerdict memlock;
};

// Reads the facts of t and of the GPUs at gpu_addresses ("0000:8a:00.0");
// the memlock limit is judged against a default VM's RAM.
NumaView read_numa_view(const host::Tree& t, const std::vector<std::string>& gpu_addresses);

// The "numa" object of 'status --json'; unknown facts are null.
nlohmann::json numa_json(const NumaView& v);
// The "NUMA" section of 'status', with its heading.
std::string numa_text(const NumaView& v);

} // namespace vfioctl::cli

namespace vfioctl::cli {

// Reads t's NUMA facts and those of the functions at addresses, and plans
// p's placement (vm::plan_placement): an Error when an explicit wish of the
// profile cannot be met.
Result<vm::PlacementPlan> place_vm(const host::Tree& t, const vm::Profile& p,
                                   const std::vector<std::string>& addresses);

// The "placement" object of 'vm start --json'; pinned: the vCPU threads
// pinned (empty when none).
nlohmann::json placement_json(const vm::PlacementPlan& plan, const std::vector<int>& pinned);

} // namespace vfioctl::cli
