#pragma once
// NUMA facts of a host: its nodes (CPUs, free memory, huge pages of each
// size), hugetlbfs mounts, a device's node and local CPUs, and the
// locked-memory limit VFIO needs (it pins all guest RAM). Read through a
// Tree, so that a recorded or fixture root answers like the live host. A
// fact that cannot be read is nullopt (unknown), never a harmless value.

#include "host/tree.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::host {

// Huge pages of one size, on one node or host-wide.
struct HugePagePool {
    uint64_t size_kib = 0;
    std::optional<uint64_t> total; // nr_hugepages; nullopt when unreadable
    std::optional<uint64_t> free;  // free_hugepages; nullopt when unreadable
};

// One node under /sys/devices/system/node.
struct NumaNode {
    int id = 0;
    std::optional<std::vector<int>> cpus; // nullopt when cpulist is missing or garbage
    std::optional<uint64_t> mem_total_kib;
    std::optional<uint64_t> mem_free_kib;
    std::vector<HugePagePool> hugepages; // by size, smallest first
};

// A hugetlbfs mount and the page size its files use.
struct HugetlbMount {
    std::string path;
    std::optional<uint64_t> page_kib; // nullopt when neither pagesize= nor a default is known
};

// RLIMIT_MEMLOCK of the process that asks, and whether it may lock beyond
// it (CAP_IPC_LOCK, which root normally has).
struct MemlockLimit {
    bool known = false;
    std::optional<uint64_t> soft_bytes; // nullopt: unlimited (when known)
    std::optional<bool> cap_ipc_lock;   // nullopt when unknown
};

struct NumaFacts {
    // False when /sys/devices/system/node cannot be listed: the nodes are
    // unknown (not "one node").
    bool nodes_known = false;
    std::vector<NumaNode> nodes;                  // by id
    std::vector<HugePagePool> host_hugepages;     // /sys/kernel/mm/hugepages
    std::optional<uint64_t> default_hugepage_kib; // Hugepagesize in /proc/meminfo
    std::vector<HugetlbMount> hugetlb_mounts;
    MemlockLimit memlock;

    const NumaNode* node(int id) const;
};

// What a device says of its node.
enum class NumaAffinity {
    node,    // numa_node is N >= 0
    none,    // numa_node is -1: the platform gives no affinity
    unknown, // numa_node missing or garbage
};

struct DeviceNuma {
    std::string address; // "0000:8a:00.0"
    NumaAffinity affinity = NumaAffinity::unknown;
    int node = -1;                              // when affinity is node
    std::optional<std::vector<int>> local_cpus; // local_cpulist; nullopt when unknown
};

// "node", "none", "unknown".
const char* affinity_id(NumaAffinity a);

// "0-3,8-11" to {0,1,2,3,8,...}; nullopt for garbage. "" is no CPU.
std::optional<std::vector<int>> parse_cpulist(std::string_view text);
// {0,1,2,3,8} to "0-3,8".
std::string format_cpulist(const std::vector<int>& cpus);

// The host's nodes, huge pages, hugetlbfs mounts and the memlock limit:
// on the live host getrlimit and /proc/self/status; on a recorded tree
// /.vfioctl/memlock (written by snapshot), else unknown.
NumaFacts read_numa(const Tree& t);

// A PCI function's numa_node and local_cpulist (/sys/bus/pci/devices/ADDR).
DeviceNuma read_device_numa(const Tree& t, const std::string& address);

// The host paths read_numa and read_device_numa read (for snapshot), on t.
std::vector<std::string> numa_files(const Tree& t);

// The text snapshot records as /.vfioctl/memlock for a limit.
std::string memlock_record(const MemlockLimit& m);
// The limit of the running process.
MemlockLimit live_memlock();

} // namespace vfioctl::host
