#include "cli/numa_view.hpp"

#include "util/strings.hpp"
#include "vm/profile.hpp"

#include <fmt/format.h>

namespace vfioctl::cli {

namespace {

using nlohmann::json;

template <typename T> json opt(const std::optional<T>& v) {
    return v ? json(*v) : json(nullptr);
}

json cpus_json(const std::optional<std::vector<int>>& cpus) {
    return cpus ? json(host::format_cpulist(*cpus)) : json(nullptr);
}

json pools_json(const std::vector<host::HugePagePool>& pools) {
    json a = json::array();
    for (const auto& p : pools)
        a.push_back({{"size_kib", p.size_kib}, {"total", opt(p.total)}, {"free", opt(p.free)}});
    return a;
}

std::string size_words(uint64_t kib) {
    if (kib >= (1u << 20) && kib % (1u << 20) == 0) return std::to_string(kib >> 20) + " GiB";
    if (kib >= 1024 && kib % 1024 == 0) return std::to_string(kib >> 10) + " MiB";
    return std::to_string(kib) + " KiB";
}

std::string pools_text(const std::vector<host::HugePagePool>& pools) {
    std::vector<std::string> parts;
    for (const auto& p : pools)
        parts.push_back(fmt::format("{} {} of {} free", size_words(p.size_kib),
                                    p.free ? std::to_string(*p.free) : "?",
                                    p.total ? std::to_string(*p.total) : "?"));
    return parts.empty() ? "none" : util::join(parts, ", ");
}

std::string cpus_text(const std::optional<std::vector<int>>& cpus) {
    if (!cpus) return "unknown";
    return cpus->empty() ? "none" : host::format_cpulist(*cpus);
}

} // namespace

NumaView read_numa_view(const host::Tree& t, const std::vector<std::string>& gpu_addresses) {
    NumaView v;
    v.facts = host::read_numa(t);
    for (const auto& a : gpu_addresses)
        v.gpus.push_back(host::read_device_numa(t, a));
    v.vm_memory_mib = vm::Profile{}.memory_mib;
    v.memlock = vm::judge_memlock(v.facts.memlock, v.vm_memory_mib);
    return v;
}

json numa_json(const NumaView& v) {
    const auto& f = v.facts;
    json nodes = json::array();
    for (const auto& n : f.nodes)
        nodes.push_back({{"id", n.id},
                         {"cpus", cpus_json(n.cpus)},
                         {"mem_total_kib", opt(n.mem_total_kib)},
                         {"mem_free_kib", opt(n.mem_free_kib)},
                         {"hugepages", pools_json(n.hugepages)}});
    json gpus = json::array();
    for (const auto& g : v.gpus)
        gpus.push_back({{"address", g.address},
                        {"affinity", host::affinity_id(g.affinity)},
                        {"numa_node", g.affinity == host::NumaAffinity::node   ? json(g.node)
                                      : g.affinity == host::NumaAffinity::none ? json(-1)
                                                                               : json(nullptr)},
                        {"local_cpus", cpus_json(g.local_cpus)}});
    json mounts = json::array();
    for (const auto& m : f.hugetlb_mounts)
        mounts.push_back({{"path", m.path}, {"page_kib", opt(m.page_kib)}});
    const auto& ml = f.memlock;
    const char* verdict = v.memlock.kind == vm::MemlockVerdict::enough    ? "enough"
                          : v.memlock.kind == vm::MemlockVerdict::too_low ? "too_low"
                                                                          : "unknown";
    return {{"nodes_known", f.nodes_known},
            {"nodes", nodes},
            {"hugepages", pools_json(f.host_hugepages)},
            {"default_hugepage_kib", opt(f.default_hugepage_kib)},
            {"hugetlb_mounts", mounts},
            {"gpus", gpus},
            {"memlock",
             {{"limit_bytes", ml.known && ml.soft_bytes ? json(*ml.soft_bytes) : json(nullptr)},
              {"unlimited", ml.known ? json(!ml.soft_bytes) : json(nullptr)},
              {"cap_ipc_lock", opt(ml.cap_ipc_lock)},
              {"vm_memory_mib", v.vm_memory_mib},
              {"verdict", verdict},
              {"text", v.memlock.text}}}};
}

std::string numa_text(const NumaView& v) {
    const auto& f = v.facts;
    std::string o = "\nNUMA\n";
    if (!f.nodes_known)
        o += "  nodes: unknown (/sys/devices/system/node cannot be read)\n";
    else if (f.nodes.empty())
        o += "  nodes: none listed\n";
    for (const auto& n : f.nodes)
        o += fmt::format("  node {}: CPUs {}; memory {} of {} free; huge pages {}\n", n.id,
                         cpus_text(n.cpus),
                         n.mem_free_kib ? size_words(*n.mem_free_kib / 1024 * 1024) : "?",
                         n.mem_total_kib ? size_words(*n.mem_total_kib / 1024 * 1024) : "?",
                         pools_text(n.hugepages));
    if (f.nodes.empty() || !f.host_hugepages.empty())
        o += "  huge pages (host): " + pools_text(f.host_hugepages) + "\n";
    std::vector<std::string> mounts;
    for (const auto& m : f.hugetlb_mounts)
        mounts.push_back(m.path + " (" + (m.page_kib ? size_words(*m.page_kib) : "?") + ")");
    o += "  hugetlbfs:  " +
         (mounts.empty() ? std::string("not mounted") : util::join(mounts, ", ")) + "\n";
    for (const auto& g : v.gpus) {
        std::string where = g.affinity == host::NumaAffinity::node
                                ? "node " + std::to_string(g.node)
                            : g.affinity == host::NumaAffinity::none
                                ? std::string("no NUMA affinity (numa_node -1)")
                                : std::string("node unknown");
        o +=
            fmt::format("  GPU {}: {}, local CPUs {}\n", g.address, where, cpus_text(g.local_cpus));
    }
    o += fmt::format("  locked memory: {}{}\n",
                     v.memlock.kind == vm::MemlockVerdict::too_low ? "TOO LOW: " : "",
                     v.memlock.text);
    return o;
}

} // namespace vfioctl::cli

namespace vfioctl::cli {

Result<vm::PlacementPlan> place_vm(const host::Tree& t, const vm::Profile& p,
                                   const std::vector<std::string>& addresses) {
    vm::PlacementFacts f;
    f.numa = host::read_numa(t);
    for (const auto& a : addresses)
        f.devices.push_back(host::read_device_numa(t, a));
    return vm::plan_placement(p.memory_mib, p.numa, p.hugepages, p.pin_vcpus, f);
}

nlohmann::json placement_json(const vm::PlacementPlan& plan, const std::vector<int>& pinned) {
    const char* backend = plan.backend == vm::MemoryBackend::file  ? "memory-backend-file"
                          : plan.backend == vm::MemoryBackend::ram ? "memory-backend-ram"
                                                                   : nullptr;
    return {{"node", plan.node ? nlohmann::json(*plan.node) : nlohmann::json(nullptr)},
            {"backend", backend ? nlohmann::json(backend) : nlohmann::json(nullptr)},
            {"page_kib", plan.page_kib},
            {"mem_path",
             plan.mem_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(plan.mem_path)},
            {"pin_cpus", plan.pin_cpus.empty()
                             ? nlohmann::json(nullptr)
                             : nlohmann::json(host::format_cpulist(plan.pin_cpus))},
            {"pinned_threads", pinned},
            {"fallbacks", plan.fallbacks},
            {"summary", plan.summary()}};
}

} // namespace vfioctl::cli
