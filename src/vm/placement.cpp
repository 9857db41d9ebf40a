#include "vm/placement.hpp"

#include "util/strings.hpp"

#include <fmt/format.h>

namespace vfioctl::vm {

namespace {

constexpr uint64_t k_2m = 2048;
constexpr uint64_t k_1g = 1024ull * 1024;

std::string page_words(uint64_t kib) {
    if (kib >= k_1g && kib % k_1g == 0) return std::to_string(kib / k_1g) + " GiB";
    if (kib >= 1024 && kib % 1024 == 0) return std::to_string(kib / 1024) + " MiB";
    return std::to_string(kib) + " KiB";
}

std::string node_dir(std::optional<int> node) {
    return node ? "/sys/devices/system/node/node" + std::to_string(*node) : "/sys/kernel/mm";
}

// The node all devices share, or why there is none.
struct DeviceNode {
    std::optional<int> node;
    std::string why;
};

DeviceNode devices_node(const std::vector<host::DeviceNuma>& devices) {
    if (devices.empty()) return {std::nullopt, "no device is passed through"};
    std::optional<int> node;
    for (const auto& d : devices) {
        if (d.affinity == host::NumaAffinity::unknown)
            return {std::nullopt, d.address + "'s NUMA node is unknown (no readable numa_node)"};
        if (d.affinity == host::NumaAffinity::none)
            return {std::nullopt, d.address + " has no NUMA affinity (numa_node -1)"};
        if (node && *node != d.node)
            return {std::nullopt,
                    fmt::format("the devices are on different nodes ({} and {})", *node, d.node)};
        node = d.node;
    }
    return {node, {}};
}

// Huge pages of size kib for the RAM: where they come from, or why not.
struct PagesTry {
    bool ok = false;
    std::string mem_path;
    std::string why;  // when not ok
    std::string hint; // when not ok: the fix
};

PagesTry try_pages(uint64_t memory_kib, uint64_t kib, std::optional<int> node,
                   const host::NumaFacts& f) {
    PagesTry t;
    const std::string size = page_words(kib);
    const std::string where = node ? "on node " + std::to_string(*node) : "on this host";
    if (memory_kib % kib != 0) {
        t.why = "the RAM is not a whole number of " + size + " pages";
        t.hint = "give a memory size that is a multiple of " + size;
        return t;
    }
    const uint64_t needed = memory_kib / kib;
    const std::string pool =
        fmt::format("{}/hugepages/hugepages-{}kB/nr_hugepages", node_dir(node), kib);
    const std::vector<host::HugePagePool>* pools = &f.host_hugepages;
    if (node) {
        const auto* n = f.node(*node);
        pools = n ? &n->hugepages : nullptr;
    }
    std::optional<uint64_t> free;
    bool exists = false;
    if (pools)
        for (const auto& p : *pools)
            if (p.size_kib == kib) {
                exists = true;
                free = p.free;
            }
    if (!exists) {
        t.why = "the kernel offers no " + size + " huge pages " + where;
        t.hint = "boot with hugepagesz=" + std::string(kib == k_1g ? "1G" : "2M") +
                 " or use another page size";
        return t;
    }
    if (!free) {
        t.why = "the free " + size + " huge pages " + where + " are unknown (unreadable)";
        t.hint = "check " + pool.substr(0, pool.rfind('/')) + "/free_hugepages";
        return t;
    }
    if (*free < needed) {
        t.why = fmt::format("{} free {} huge pages {}, {} needed", *free, size, where, needed);
        t.hint = fmt::format("reserve more as root: echo {} > {} (the total, {} more than free "
                             "now); or give less memory",
                             needed, pool, needed - *free);
        return t;
    }
    for (const auto& m : f.hugetlb_mounts)
        if (m.page_kib == kib) {
            t.mem_path = m.path;
            break;
        }
    if (t.mem_path.empty()) {
        t.why = "no hugetlbfs is mounted with pagesize=" + std::string(kib == k_1g ? "1G" : "2M");
        t.hint = "mount one as root: mkdir -p /dev/hugepages" +
                 std::string(kib == k_1g ? "1G" : "") +
                 " && mount -t hugetlbfs -o pagesize=" + (kib == k_1g ? "1G" : "2M") +
                 " none /dev/hugepages" + (kib == k_1g ? "1G" : "");
        return t;
    }
    t.ok = true;
    return t;
}

} // namespace

Result<HugePagesWish> parse_hugepages(std::string_view text) {
    const std::string t = util::to_lower(text);
    if (t == "auto") return HugePagesWish::automatic;
    if (t == "off") return HugePagesWish::off;
    if (t == "2m") return HugePagesWish::size_2m;
    if (t == "1g") return HugePagesWish::size_1g;
    return Error{"bad hugepages '" + std::string(text) + "'", {}, "use auto, off, 2M or 1G", 0};
}

Result<NumaWish> parse_numa(std::string_view text) {
    if (text == "auto") return NumaWish{};
    if (text == "off") return NumaWish{NumaWish::off, 0};
    if (auto n = util::parse_dec(text); n && *n <= 4096)
        return NumaWish{NumaWish::fixed, static_cast<int>(*n)};
    return Error{"bad numa '" + std::string(text) + "'", {}, "use auto, off or a node number", 0};
}

const char* hugepages_id(HugePagesWish w) {
    switch (w) {
    case HugePagesWish::off:
        return "off";
    case HugePagesWish::size_2m:
        return "2M";
    case HugePagesWish::size_1g:
        return "1G";
    default:
        return "auto";
    }
}

std::string numa_id(const NumaWish& w) {
    if (w.kind == NumaWish::off) return "off";
    if (w.kind == NumaWish::fixed) return std::to_string(w.node);
    return "auto";
}

std::string PlacementPlan::summary() const {
    std::string s;
    const std::string pages = backend == MemoryBackend::file
                                  ? page_words(page_kib) + " huge pages from " + mem_path
                                  : "4 KiB pages";
    if (node)
        s = "RAM bound to NUMA node " + std::to_string(*node) + " (" + pages + ")";
    else if (backend == MemoryBackend::file)
        s = "RAM not bound to a node (" + pages + ")";
    else
        s = "RAM not bound to a node (QEMU's default)";
    s += pin_cpus.empty() ? ", vCPUs not pinned"
                          : ", vCPUs pinned to CPUs " + host::format_cpulist(pin_cpus);
    if (!fallbacks.empty()) s += "; " + util::join(fallbacks, "; ");
    return s;
}

Result<PlacementPlan> plan_placement(uint64_t memory_mib, const NumaWish& numa,
                                     HugePagesWish hugepages, PinWish pin,
                                     const PlacementFacts& facts) {
    const auto& f = facts.numa;
    const uint64_t memory_kib = memory_mib * 1024;
    PlacementPlan p;
    std::optional<int> node;

    // The node.
    if (numa.kind == NumaWish::fixed) {
        const std::string key = "numa = " + std::to_string(numa.node);
        if (!f.nodes_known)
            return Error{key + ": the host's NUMA nodes cannot be read", "/sys/devices/system/node",
                         "use numa = \"auto\" or \"off\"", 0};
        if (!f.node(numa.node)) {
            std::vector<std::string> ids;
            for (const auto& n : f.nodes)
                ids.push_back(std::to_string(n.id));
            return Error{key + ": this host has no such node", "/sys/devices/system/node",
                         "its nodes: " + (ids.empty() ? std::string("none") : util::join(ids, " ")),
                         0};
        }
        node = numa.node;
    } else if (numa.kind == NumaWish::automatic) {
        auto dn = devices_node(facts.devices);
        if (!dn.node) {
            p.fallbacks.push_back(dn.why);
        } else if (!f.node(*dn.node)) {
            p.fallbacks.push_back(fmt::format("node {} of the devices is not described under "
                                              "/sys/devices/system/node",
                                              *dn.node));
        } else {
            node = dn.node;
        }
    }

    // The pages.
    if (hugepages == HugePagesWish::size_2m || hugepages == HugePagesWish::size_1g) {
        const uint64_t kib = hugepages == HugePagesWish::size_1g ? k_1g : k_2m;
        auto t = try_pages(memory_kib, kib, node, f);
        if (!t.ok)
            return Error{std::string("hugepages = \"") + hugepages_id(hugepages) +
                             "\" cannot be met: " + t.why,
                         {},
                         t.hint + "; or set hugepages = \"auto\"",
                         0};
        p.backend = MemoryBackend::file;
        p.page_kib = kib;
        p.mem_path = t.mem_path;
    } else if (hugepages == HugePagesWish::automatic && node) {
        // 1 GiB pages only where they are reserved; else 2 MiB.
        PagesTry t;
        uint64_t kib = k_1g;
        if (memory_kib % k_1g == 0) t = try_pages(memory_kib, k_1g, node, f);
        if (!t.ok) {
            kib = k_2m;
            t = try_pages(memory_kib, k_2m, node, f);
        }
        if (t.ok) {
            p.backend = MemoryBackend::file;
            p.page_kib = kib;
            p.mem_path = t.mem_path;
        } else {
            p.fallbacks.push_back("4 KiB pages because " + t.why);
        }
    }

    // 4 KiB pages bound to a node need that much free memory there.
    if (node && p.backend != MemoryBackend::file) {
        const auto* n = f.node(*node);
        const auto free = n ? n->mem_free_kib : std::nullopt;
        std::string why;
        if (!free)
            why = fmt::format("node {}'s free memory is unknown", *node);
        else if (*free < memory_kib)
            why = fmt::format("node {} has {} MiB free, {} MiB needed", *node, *free / 1024,
                              memory_mib);
        if (!why.empty()) {
            if (numa.kind == NumaWish::fixed)
                return Error{"numa = " + std::to_string(*node) + " cannot be met: " + why,
                             node_dir(node) + "/meminfo",
                             "give less memory, reserve huge pages there, or use numa = \"auto\"",
                             0};
            p.fallbacks.push_back("RAM not bound because " + why);
            node.reset();
        } else {
            p.backend = MemoryBackend::ram;
        }
    }
    p.node = node;

    // The vCPUs.
    if (pin != false) {
        const auto* n = node ? f.node(*node) : nullptr;
        if (n && n->cpus && !n->cpus->empty()) {
            p.pin_cpus = *n->cpus;
        } else {
            const std::string why = !node ? "the RAM is bound to no node"
                                    : n && n->cpus
                                        ? fmt::format("node {} has no CPUs", *node)
                                        : fmt::format("node {}'s cpulist is unknown", *node);
            if (pin == true)
                return Error{"pin_vcpus = true cannot be met: " + why,
                             {},
                             "set numa to a node (numa = N), or pin_vcpus = false",
                             0};
            if (node) p.fallbacks.push_back("vCPUs not pinned because " + why);
        }
    }
    return p;
}

MemlockVerdict judge_memlock(const host::MemlockLimit& m, uint64_t memory_mib) {
    const uint64_t need = memory_mib << 20;
    const std::string fix =
        "run vfioctl as root (CAP_IPC_LOCK lifts the limit; 'vfioctl vm start --owner USER' "
        "runs QEMU as USER with the limit raised for it), or raise it: 'ulimit -l unlimited' "
        "in the shell that starts the VM, or 'USER hard memlock unlimited' and 'USER soft "
        "memlock unlimited' in /etc/security/limits.conf (then log in again)";
    if (m.cap_ipc_lock == true)
        return {MemlockVerdict::enough, "CAP_IPC_LOCK held (root): locked memory is not limited"};
    if (!m.known)
        return {MemlockVerdict::unknown,
                fmt::format("the locked-memory limit is unknown; VFIO pins all guest RAM ({} "
                            "MiB): {}",
                            memory_mib, fix)};
    if (!m.soft_bytes) return {MemlockVerdict::enough, "unlimited"};
    if (*m.soft_bytes >= need)
        return {MemlockVerdict::enough, fmt::format("{} MiB, enough for {} MiB of guest RAM",
                                                    *m.soft_bytes >> 20, memory_mib)};
    return {MemlockVerdict::too_low,
            fmt::format("{} KiB is below the {} MiB of guest RAM that VFIO pins (QEMU would fail "
                        "with 'VFIO_MAP_DMA failed: Cannot allocate memory'){}: {}",
                        *m.soft_bytes >> 10, memory_mib,
                        m.cap_ipc_lock ? "" : ", unless the process holds CAP_IPC_LOCK", fix)};
}

} // namespace vfioctl::vm
