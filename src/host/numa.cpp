#include "host/numa.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <sys/resource.h>

namespace vfioctl::host {

namespace {

constexpr const char* k_node_dir = "/sys/devices/system/node";
constexpr const char* k_mm_hugepages = "/sys/kernel/mm/hugepages";
constexpr const char* k_memlock_record = "/.vfioctl/memlock";

// "hugepages-2048kB" to 2048.
std::optional<uint64_t> pool_size_kib(const std::string& name) {
    if (!util::starts_with(name, "hugepages-") || name.size() < 13 ||
        name.compare(name.size() - 2, 2, "kB") != 0)
        return std::nullopt;
    return util::parse_dec(name.substr(10, name.size() - 12));
}

// The pools under dir (hugepages-SIZEkB/{nr,free}_hugepages), smallest first.
std::vector<HugePagePool> read_pools(const Tree& t, const std::string& dir) {
    std::vector<HugePagePool> out;
    for (const auto& name : t.list(dir).value_or({})) {
        auto kib = pool_size_kib(name);
        if (!kib) continue;
        HugePagePool p;
        p.size_kib = *kib;
        p.total = t.attr_dec(dir + "/" + name + "/nr_hugepages");
        p.free = t.attr_dec(dir + "/" + name + "/free_hugepages");
        out.push_back(p);
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.size_kib < b.size_kib; });
    return out;
}

// "Node 0 MemFree:   123456 kB" lines of a node's meminfo, or
// "Hugepagesize:    2048 kB" of /proc/meminfo: the number before "kB".
std::optional<uint64_t> meminfo_kib(const std::string& text, std::string_view key) {
    for (const auto& line : util::split(text, '\n')) {
        auto words = util::split_ws(line);
        for (size_t i = 0; i + 1 < words.size(); ++i)
            if (words[i] == key) return util::parse_dec(words[i + 1]);
    }
    return std::nullopt;
}

// "2M", "1G", "2048k" (hugetlbfs pagesize=) to KiB.
std::optional<uint64_t> size_option_kib(std::string_view s) {
    if (s.empty()) return std::nullopt;
    uint64_t mul = 0;
    switch (s.back()) {
    case 'k':
    case 'K':
        mul = 1;
        break;
    case 'm':
    case 'M':
        mul = 1024;
        break;
    case 'g':
    case 'G':
        mul = 1024ull * 1024;
        break;
    default:
        break;
    }
    if (mul == 0) {
        auto b = util::parse_dec(s);
        return b ? std::optional<uint64_t>(*b / 1024) : std::nullopt;
    }
    auto n = util::parse_dec(s.substr(0, s.size() - 1));
    return n ? std::optional<uint64_t>(*n * mul) : std::nullopt;
}

// hugetlbfs lines of /proc/self/mountinfo: "ID PARENT M:N ROOT MOUNTPOINT
// OPTS... - hugetlbfs SOURCE SUPEROPTS".
std::vector<HugetlbMount> read_hugetlb_mounts(const Tree& t, std::optional<uint64_t> dflt) {
    std::vector<HugetlbMount> out;
    auto text = t.read("/proc/self/mountinfo");
    if (!text) return out;
    for (const auto& line : util::split(*text, '\n')) {
        auto w = util::split_ws(line);
        const auto dash = static_cast<size_t>(std::find(w.begin(), w.end(), "-") - w.begin());
        if (w.size() < 5 || dash + 1 >= w.size() || w[dash + 1] != "hugetlbfs") continue;
        HugetlbMount m;
        m.path = w[4];
        m.page_kib = dflt;
        if (dash + 3 < w.size())
            for (const auto& opt : util::split(w[dash + 3], ','))
                if (util::starts_with(opt, "pagesize="))
                    m.page_kib = size_option_kib(std::string_view(opt).substr(9));
        out.push_back(m);
    }
    return out;
}

MemlockLimit recorded_memlock(const Tree& t) {
    MemlockLimit m;
    auto text = t.read(k_memlock_record);
    if (!text) return m;
    for (const auto& line : util::split(*text, '\n')) {
        auto w = util::split_ws(line);
        if (w.size() != 2) continue;
        if (w[0] == "soft") {
            if (w[1] == "unlimited") {
                m.known = true;
            } else if (auto n = util::parse_dec(w[1])) {
                m.known = true;
                m.soft_bytes = *n;
            }
        } else if (w[0] == "cap_ipc_lock" && (w[1] == "yes" || w[1] == "no")) {
            m.cap_ipc_lock = w[1] == "yes";
        }
    }
    return m;
}

// CAP_IPC_LOCK (bit 14) in CapEff of /proc/self/status.
std::optional<bool> live_cap_ipc_lock() {
    auto text = Tree("/").read("/proc/self/status");
    if (!text) return std::nullopt;
    for (const auto& line : util::split(*text, '\n')) {
        if (!util::starts_with(line, "CapEff:")) continue;
        auto v = util::parse_hex(util::trim(std::string_view(line).substr(7)));
        if (!v) return std::nullopt;
        return ((*v >> 14) & 1u) != 0;
    }
    return std::nullopt;
}

} // namespace

const NumaNode* NumaFacts::node(int id) const {
    for (const auto& n : nodes)
        if (n.id == id) return &n;
    return nullptr;
}

const char* affinity_id(NumaAffinity a) {
    switch (a) {
    case NumaAffinity::node:
        return "node";
    case NumaAffinity::none:
        return "none";
    default:
        return "unknown";
    }
}

std::optional<std::vector<int>> parse_cpulist(std::string_view text) {
    std::vector<int> out;
    const std::string_view t = util::trim(text);
    if (t.empty()) return out;
    for (const auto& part : util::split(t, ',')) {
        const auto dash = part.find('-');
        auto lo = util::parse_dec(part.substr(0, dash));
        auto hi = dash == std::string::npos ? lo : util::parse_dec(part.substr(dash + 1));
        if (!lo || !hi || *hi < *lo || *hi > 1u << 20) return std::nullopt;
        for (uint64_t c = *lo; c <= *hi; ++c)
            out.push_back(static_cast<int>(c));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::string format_cpulist(const std::vector<int>& cpus) {
    std::string out;
    for (size_t i = 0; i < cpus.size();) {
        size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1)
            ++j;
        if (!out.empty()) out += ",";
        out += std::to_string(cpus[i]);
        if (j > i) out += "-" + std::to_string(cpus[j]);
        i = j + 1;
    }
    return out;
}

MemlockLimit live_memlock() {
    MemlockLimit m;
    rlimit rl{};
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
        m.known = true;
        if (rl.rlim_cur != RLIM_INFINITY) m.soft_bytes = static_cast<uint64_t>(rl.rlim_cur);
    }
    m.cap_ipc_lock = live_cap_ipc_lock();
    return m;
}

std::string memlock_record(const MemlockLimit& m) {
    if (!m.known) return {};
    std::string out =
        "soft " + (m.soft_bytes ? std::to_string(*m.soft_bytes) : std::string("unlimited")) + "\n";
    if (m.cap_ipc_lock)
        out += std::string("cap_ipc_lock ") + (*m.cap_ipc_lock ? "yes" : "no") + "\n";
    return out;
}

NumaFacts read_numa(const Tree& t) {
    NumaFacts f;
    if (auto names = t.list(k_node_dir)) {
        f.nodes_known = true;
        // Ids sorted first: nodes are built in order, never moved around.
        std::vector<int> ids;
        for (const auto& name : *names) {
            if (!util::starts_with(name, "node")) continue;
            auto id = util::parse_dec(std::string_view(name).substr(4));
            if (id && *id <= 4096) ids.push_back(static_cast<int>(*id));
        }
        std::sort(ids.begin(), ids.end());
        for (int id : ids) {
            const std::string dir = std::string(k_node_dir) + "/node" + std::to_string(id);
            NumaNode& n = f.nodes.emplace_back();
            n.id = id;
            if (auto c = t.attr(dir + "/cpulist")) n.cpus = parse_cpulist(*c);
            if (auto mi = t.read(dir + "/meminfo")) {
                n.mem_total_kib = meminfo_kib(*mi, "MemTotal:");
                n.mem_free_kib = meminfo_kib(*mi, "MemFree:");
            }
            n.hugepages = read_pools(t, dir + "/hugepages");
        }
    }
    f.host_hugepages = read_pools(t, k_mm_hugepages);
    if (auto mi = t.read("/proc/meminfo"))
        f.default_hugepage_kib = meminfo_kib(*mi, "Hugepagesize:");
    f.hugetlb_mounts = read_hugetlb_mounts(t, f.default_hugepage_kib);
    f.memlock = t.is_live() ? live_memlock() : recorded_memlock(t);
    return f;
}

DeviceNuma read_device_numa(const Tree& t, const std::string& address) {
    DeviceNuma d;
    d.address = address;
    const std::string dir = "/sys/bus/pci/devices/" + address;
    if (auto n = t.attr(dir + "/numa_node")) {
        if (*n == "-1") {
            d.affinity = NumaAffinity::none;
        } else if (auto v = util::parse_dec(*n); v && *v <= 4096) {
            d.affinity = NumaAffinity::node;
            d.node = static_cast<int>(*v);
        }
    }
    if (auto c = t.attr(dir + "/local_cpulist")) d.local_cpus = parse_cpulist(*c);
    return d;
}

std::vector<std::string> numa_files(const Tree& t) {
    std::vector<std::string> out{"/proc/meminfo", "/proc/self/mountinfo", k_memlock_record};
    auto pools = [&](const std::string& dir) {
        for (const auto& name : t.list(dir).value_or({})) {
            if (!pool_size_kib(name)) continue;
            out.push_back(dir + "/" + name + "/nr_hugepages");
            out.push_back(dir + "/" + name + "/free_hugepages");
        }
    };
    for (const auto& name : t.list(k_node_dir).value_or({})) {
        if (!util::starts_with(name, "node") || !util::parse_dec(std::string_view(name).substr(4)))
            continue;
        const std::string dir = std::string(k_node_dir) + "/" + name;
        out.push_back(dir + "/cpulist");
        out.push_back(dir + "/meminfo");
        pools(dir + "/hugepages");
    }
    pools(k_mm_hugepages);
    return out;
}

} // namespace vfioctl::host
