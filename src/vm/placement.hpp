#pragma once
// Where a VM's RAM and vCPUs go on a NUMA host: pure, from a profile's
// wishes and typed host facts to a typed plan. With "auto" the guest's RAM
// is bound to the node of its passed-through devices, on huge pages when
// enough are free there, and its vCPUs are pinned to that node's CPUs; an
// explicit wish that cannot be met is an Error, never a silent fallback.

#include "host/numa.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::vm {

// numa = "auto" | "off" | N.
struct NumaWish {
    enum Kind { automatic, off, fixed } kind = automatic;
    int node = 0; // when kind is fixed
};

// hugepages = "auto" | "off" | "2M" | "1G".
enum class HugePagesWish { automatic, off, size_2m, size_1g };

// pin_vcpus: unset pins when the RAM is bound to a node; true insists.
using PinWish = std::optional<bool>;

// "auto", "off", "2M", "1G" (case-insensitive M/G); an Error otherwise.
Result<HugePagesWish> parse_hugepages(std::string_view text);
// "auto", "off" or a node number; an Error otherwise.
Result<NumaWish> parse_numa(std::string_view text);
const char* hugepages_id(HugePagesWish w);
std::string numa_id(const NumaWish& w);

// What the planner knows.
struct PlacementFacts {
    host::NumaFacts numa;
    std::vector<host::DeviceNuma> devices; // every passed-through function
};

// The guest RAM's backend.
enum class MemoryBackend {
    plain, // QEMU's default: no backend object, no binding
    ram,   // memory-backend-ram (4 KiB pages)
    file,  // memory-backend-file on a hugetlbfs mount
};

struct PlacementPlan {
    MemoryBackend backend = MemoryBackend::plain;
    std::optional<int> node;            // host-nodes=N,policy=bind
    uint64_t page_kib = 4;              // 4, 2048 or 1048576
    std::string mem_path;               // backend file: the hugetlbfs mount
    std::vector<int> pin_cpus;          // vCPU threads' CPUs; empty: not pinned
    std::vector<std::string> fallbacks; // why auto chose less, in words
    // One line: "RAM bound to NUMA node 1 (2 MiB huge pages from /dev/hugepages),
    // vCPUs pinned to CPUs 56-111", then "; " and the fallbacks.
    std::string summary() const;
};

// Pure: the plan for memory_mib of RAM. An Error (with a hint) when an
// explicit numa, hugepages or pin_vcpus wish cannot be met or rests on a
// fact that is unknown.
Result<PlacementPlan> plan_placement(uint64_t memory_mib, const NumaWish& numa,
                                     HugePagesWish hugepages, PinWish pin,
                                     const PlacementFacts& facts);

// The memlock verdict for a VM of memory_mib with passthrough.
struct MemlockVerdict {
    enum Kind { enough, too_low, unknown } kind = unknown;
    std::string text; // in words, with the fix when too low
};
// Pure: VFIO pins all guest RAM; the soft limit must cover it unless
// CAP_IPC_LOCK (root) lifts it.
MemlockVerdict judge_memlock(const host::MemlockLimit& m, uint64_t memory_mib);

} // namespace vfioctl::vm
