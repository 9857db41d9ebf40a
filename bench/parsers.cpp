// Benchmark: every parser that reads host or user text, at size N and 10 N.
// Linear work costs about 10x for 10x the input; the quadratic boot-parameter
// parser of issue #11 cost about 100x. Prints a Markdown table of the best of
// five runs per size and the growth; docs/bench.md records the results.
//   build/bench/vfioctl-bench-parsers [N_KB]     (N defaults to 100 KB)

#include "boot/cmdline.hpp"
#include "boot/params.hpp"
#include "boot/shell.hpp"
#include "host/system.hpp"
#include "iommu/explain.hpp"
#include "vfio/journal.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

using namespace vfioctl;

namespace {

double best_of_five(const std::function<void()>& f) {
    double best = 1e9;
    for (int k = 0; k < 5; ++k) {
        auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

// unit repeated until the text holds at least n bytes.
std::string repeat(const std::string& unit, size_t n) {
    std::string s;
    s.reserve(n + unit.size());
    while (s.size() < n)
        s += unit;
    return s;
}

struct Case {
    const char* name;
    std::function<std::string(size_t)> make; // input of about n bytes
    std::function<void(const std::string&)> parse;
};

} // namespace

int main(int argc, char** argv) {
    const size_t n = (argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100) * 1024;
    static host::SystemFacts facts;
    static pci::Inventory inv;
    static std::vector<iommu::IommuGroup> groups;
    static iommu::IommuState state;
    static boot::IommuCmdline cmdline;
    const iommu::ExplainContext ctx{facts, inv, groups, state, cmdline};

    const std::vector<Case> cases = {
        {"kernel command line (tokens)", [](size_t k) { return repeat("p=v quiet ", k); },
         [](const std::string& t) { (void)boot::tokenize(t); }},
        {"/etc/kernel/cmdline (view)", [](size_t k) { return repeat("p=v quiet ", k); },
         [](const std::string& t) {
             boot::ParamSet p("cmdline", {{"/etc/kernel/cmdline", boot::Format::cmdline_file, t}});
             (void)p.view();
         }},
        {"GRUB file, one long line (view)",
         [](size_t k) { return "GRUB_CMDLINE_LINUX_DEFAULT=\"" + repeat("p=v ", k) + "\"\n"; },
         [](const std::string& t) {
             boot::ParamSet p("GRUB defaults",
                              {{"/etc/default/grub", boot::Format::grub_shell, t}});
             (void)p.view();
         }},
        {"GRUB file, many lines ending in CR",
         [](size_t k) { return repeat("GRUB_TIMEOUT=5\r", k); },
         [](const std::string& t) { (void)boot::parse_shell(t); }},
        {"loader entry (view)",
         [](size_t k) { return "title x\noptions " + repeat("p=v ", k) + "\n"; },
         [](const std::string& t) {
             boot::ParamSet p("entry",
                              {{"/boot/loader/entries/x.conf", boot::Format::loader_entry, t}});
             (void)p.view();
         }},
        {"explain, one line of '('",
         [](size_t k) { return "vfio 0000:8a:00.0: " + std::string(k, '(') + " x"; },
         [&](const std::string& t) { (void)iommu::explain(t, ctx); }},
        {"explain, a log of messages",
         [](size_t k) { return repeat("vfio-pci 0000:8a:00.0: group 7 is not viable\n", k); },
         [&](const std::string& t) { (void)iommu::explain(t, ctx); }},
        {"mountinfo",
         [](size_t k) {
             return repeat("26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n", k);
         },
         [](const std::string& t) { (void)host::parse_mountinfo(t); }},
        {"/proc/net/route",
         [](size_t k) {
             return "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIR"
                    "TT\n" +
                    repeat("eno1\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n", k);
         },
         [](const std::string& t) { (void)host::parse_default_routes(t, ""); }},
        {"bind journal",
         [](size_t k) {
             std::string e =
                 "{\"address\":\"0000:8a:00.0\",\"group\":1,\"original_driver\":\"nvidia\","
                 "\"original_override\":null,\"phase\":\"bound\"}";
             std::string s = "{\"format\":1,\"devices\":[" + e;
             while (s.size() < k)
                 s += "," + e;
             return s + "]}";
         },
         [](const std::string& t) { (void)vfio::parse_journal(t, "journal.json"); }},
    };

    std::printf("| parser | %zu KB | %zu KB | growth (linear: about 10) |\n", n / 1024,
                10 * n / 1024);
    std::printf("|---|---:|---:|---:|\n");
    for (const auto& c : cases) {
        const std::string small = c.make(n), large = c.make(10 * n);
        const double a = best_of_five([&] { c.parse(small); });
        const double b = best_of_five([&] { c.parse(large); });
        std::printf("| %s | %.2f ms | %.2f ms | %.1f |\n", c.name, a * 1e3, b * 1e3, b / a);
    }
    return 0;
}
