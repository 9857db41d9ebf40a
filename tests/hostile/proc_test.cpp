// Category 3: /proc files. The kernel command line, the mount table, the
// routing table, cpuinfo and modules: missing, empty, garbage, NUL bytes,
// CRLF, escapes, huge, a directory or a FIFO in their place. The diagnosis
// commands answer or fail clearly; bind refuses the root disk and blocks
// the default-route NIC whenever the table that names them cannot be read.

#include "hostile.hpp"

#include <sys/stat.h>

namespace vfioctl::hostile {
namespace {

Mutation put(std::string path, std::string data) {
    return [path, data](Env& e) {
        e.tree.remove(path);
        e.tree.write(path, data);
    };
}
Mutation drop(std::string path) {
    return [path](Env& e) { e.tree.remove(path); };
}
Mutation as_dir(std::string path) {
    return [path](Env& e) {
        e.tree.remove(path);
        e.tree.mkdir(path);
    };
}
Mutation as_fifo(std::string path) {
    return [path](Env& e) {
        e.tree.remove(path);
        if (::mkfifo(e.tree.path(path).c_str(), 0644) != 0)
            throw std::runtime_error("mkfifo " + path);
    };
}
// The file with f applied to its text.
Mutation edit(std::string path, std::function<std::string(const std::string&)> f) {
    return [path, f](Env& e) {
        const std::string text = e.tree.read(path);
        e.tree.write(path, f(text));
    };
}
std::string crlf(const std::string& s) {
    std::string out;
    for (char c : s)
        out += c == '\n' ? std::string("\r\n") : std::string(1, c);
    return out;
}

const std::string k_cmdline = "/proc/cmdline";
const std::string k_mountinfo = "/proc/self/mountinfo";
const std::string k_route = "/proc/net/route";

std::vector<Case> cmdline_cases() {
    auto tokens = [] {
        std::string s;
        for (int i = 0; i < 20000; ++i)
            s += "opt" + std::to_string(i) + "=" + std::to_string(i) + " ";
        return s + "intel_iommu=on\n";
    };
    const std::vector<std::pair<std::string, Mutation>> muts = {
        {"missing", drop(k_cmdline)},
        {"empty", put(k_cmdline, "")},
        {"only_whitespace", put(k_cmdline, " \t \n")},
        {"directory", as_dir(k_cmdline)},
        {"fifo", as_fifo(k_cmdline)},
        {"not_utf8",
         put(k_cmdline, "BOOT_IMAGE=/vmlinuz \xff\xfe\xc0\xaf ro intel_iommu=on iommu=pt\n")},
        {"escapes",
         put(k_cmdline, "BOOT_IMAGE=/vmlinuz " + k_osc + " " + k_csi + k_c1 + " intel_iommu=on\n")},
        {"nul_bytes",
         put(k_cmdline,
             std::string("BOOT_IMAGE=/vmlinuz\0intel_iommu=off\0 intel_iommu=on iommu=pt\n", 56))},
        {"crlf", put(k_cmdline, "BOOT_IMAGE=/vmlinuz ro intel_iommu=on iommu=pt\r\n")},
        {"one_megabyte",
         put_made(k_cmdline, [] { return "intel_iommu=on " + std::string(1 << 20, 'x') + "\n"; })},
        {"twenty_thousand_tokens", put_made(k_cmdline, tokens)},
        {"unterminated_quote",
         put(k_cmdline, "BOOT_IMAGE=/vmlinuz root=\"/dev/sda intel_iommu=on iommu=pt\n")},
        {"conflicting_switches",
         put(k_cmdline, "intel_iommu=on intel_iommu=off iommu=pt iommu=off\n")},
    };
    std::vector<Case> v;
    for (const auto& [name, m] : muts) {
        v.push_back(Case{.name = "cmdline_" + name + "__status",
                         .mutate = m,
                         .args = {"status"},
                         .exits = {0, 3}});
        v.push_back(Case{.name = "cmdline_" + name + "__status_json",
                         .mutate = m,
                         .args = {"--json", "status"},
                         .exits = {0, 3}});
        v.push_back(Case{.name = "cmdline_" + name + "__iommu_show_json",
                         .mutate = m,
                         .args = {"--json", "iommu", "show"},
                         .exits = {0}});
    }
    return v;
}

// The mount table: every way of not knowing what holds / refuses the root
// NVMe, --force or not, and changes nothing.
std::vector<Case> mountinfo_cases() {
    const std::string nvme = fixture::k_root_nvme;
    const std::string overlay =
        "26 1 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/u,workdir=/w\n";
    struct M {
        std::string name;
        Mutation mutate;
        std::vector<std::string> kinds; // the refusal kinds that are right
    };
    const std::vector<std::string> unknown = {"unknown_root"},
                                   either = {"unknown_root", "root_filesystem"};
    const std::vector<M> muts = {
        {"missing", drop(k_mountinfo), unknown},
        {"empty", put(k_mountinfo, ""), unknown},
        {"garbage",
         put(k_mountinfo, "\x7f"
                          "ELF\x01\x02 not a mount table\n\n42\n"),
         unknown},
        {"nul_bytes", put(k_mountinfo, std::string(4096, '\0')), unknown},
        {"directory", as_dir(k_mountinfo), unknown},
        {"fifo", as_fifo(k_mountinfo), unknown},
        {"overlay_root",
         edit(k_mountinfo,
              [overlay](const std::string& t) {
                  const auto at = t.find("26 1 259:2 / / ");
                  return t.substr(0, at) + overlay + t.substr(t.find('\n', at) + 1);
              }),
         unknown},
        {"crlf", edit(k_mountinfo, crlf), either},
        {"megabyte_line_first",
         edit(k_mountinfo,
              [](const std::string& t) { return std::string(1 << 20, 'm') + "\n" + t; }),
         either},
        {"root_line_truncated",
         edit(k_mountinfo,
              [](const std::string& t) {
                  const auto at = t.find("26 1 259:2 / / ");
                  return t.substr(0, at) + "26 1 259:2 / / rw,rel";
              }),
         unknown},
        {"overlay_stacked_on_root",
         edit(k_mountinfo,
              [overlay](const std::string& t) {
                  return t + "40 26 0:60 / / rw - overlay overlay rw,lowerdir=/x\n";
              }),
         either},
        {"nul_in_root_line",
         edit(k_mountinfo,
              [](const std::string& t) {
                  std::string out = t;
                  out[out.find("259:2") + 1] = '\0';
                  return out;
              }),
         either},
    };
    std::vector<Case> v;
    for (const auto& m : muts)
        for (bool force : {false, true}) {
            std::vector<std::string> args = {"--json", "bind"};
            if (force) args.push_back("--force");
            args.push_back(nvme);
            v.push_back(
                Case{.name = "mountinfo_" + m.name +
                             (force ? "__bind_root_nvme_forced" : "__bind_root_nvme"),
                     .mutate = m.mutate,
                     .args = args,
                     .exits = {1},
                     .check = [m, nvme](Env&, const Outcome& o) {
                         json j = parse_json(o);
                         auto kinds = kinds_for(j["refused"], nvme);
                         ASSERT_FALSE(kinds.empty()) << "the root NVMe is not refused:\n"
                                                     << o.out.substr(0, 3000);
                         for (const auto& k : kinds)
                             EXPECT_NE(std::find(m.kinds.begin(), m.kinds.end(), k), m.kinds.end())
                                 << k << "\n"
                                 << o.out.substr(0, 3000);
                         EXPECT_EQ(j.value("changed", true), false);
                     }});
        }
    return v;
}

// The routing table: where it cannot be read, every NIC is blocked as
// unknown_route (eno2, down, carries nothing); eno1 (up, the default
// route) is blocked whatever the table says.
std::vector<Case> route_cases() {
    const std::string eno1 = fixture::k_host_nic, eno2 = "0000:02:00.1";
    struct R {
        std::string name;
        Mutation mutate;
        bool unknown; // the table cannot be read
    };
    auto big = [] {
        std::string s =
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n";
        for (int i = 0; i < 50000; ++i)
            s += "eth" + std::to_string(i % 7) +
                 "\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
        return s;
    };
    const std::vector<R> rs = {
        {"missing", drop(k_route), true},
        {"garbage",
         put(k_route, "\x7f"
                      "ELF garbage\n"),
         true},
        {"directory", as_dir(k_route), true},
        {"fifo", as_fifo(k_route), true},
        {"nul_bytes", put(k_route, std::string(512, '\0')), true},
        {"bad_line", edit(k_route, [](const std::string& t) { return t + "eno2\tnot a route\n"; }),
         true},
        {"hex_garbage",
         edit(k_route,
              [](const std::string& t) {
                  return t + "eno2\tZZZZZZZZ\t00000000\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
              }),
         true},
        {"header_only",
         put(k_route,
             "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"),
         false},
        {"crlf", edit(k_route, crlf), false},
        {"fifty_thousand_routes", put_made(k_route, big), false},
    };
    std::vector<Case> v;
    for (const auto& r : rs) {
        v.push_back(Case{.name = "route_" + r.name + "__bind_eno1",
                         .mutate = r.mutate,
                         .args = {"--json", "bind", "--dry-run", eno1},
                         .exits = {1},
                         .check = [eno1](Env&, const Outcome& o) {
                             EXPECT_FALSE(kinds_for(parse_json(o)["blocked"], eno1).empty())
                                 << o.out.substr(0, 3000);
                         }});
        v.push_back(Case{
            .name = "route_" + r.name + "__bind_eno2",
            .mutate = r.mutate,
            .args = {"--json", "bind", "--dry-run", eno2},
            .exits = {r.unknown ? 1 : 0},
            .check = [r, eno2](Env&, const Outcome& o) {
                auto kinds = kinds_for(parse_json(o)["blocked"], eno2);
                if (r.unknown) {
                    EXPECT_EQ(o.exit_code, 1);
                    EXPECT_NE(std::find(kinds.begin(), kinds.end(), "unknown_route"), kinds.end())
                        << o.out.substr(0, 3000);
                } else {
                    EXPECT_EQ(std::find(kinds.begin(), kinds.end(), "unknown_route"), kinds.end())
                        << o.out.substr(0, 3000);
                }
            }});
    }
    return v;
}

std::vector<Case> other_proc_cases() {
    std::vector<Case> v;
    auto status = [&v](const std::string& name, Mutation m, std::string host = "seed_after") {
        v.push_back(Case{.name = name + "__status_json",
                         .host = host,
                         .mutate = m,
                         .args = {"--json", "status"},
                         .exits = {0, 3}});
    };
    status("cpuinfo_missing", drop("/proc/cpuinfo"));
    status("cpuinfo_empty", put("/proc/cpuinfo", ""));
    status("cpuinfo_garbage", put("/proc/cpuinfo", ":::\n\x01\x02\n:\nflags\n"));
    status("cpuinfo_escapes",
           put("/proc/cpuinfo", "vendor_id\t: Genuine" + k_osc + "\xff\nmodel name\t: " + k_csi +
                                    "\nflags\t\t: vmx\n"));
    status("cpuinfo_megabyte_flags", put_made("/proc/cpuinfo", [] {
               return "vendor_id\t: GenuineIntel\nflags\t\t: " + std::string(1 << 20, 'v') +
                      " vmx\n";
           }));
    status("modules_missing", drop("/proc/modules"));
    status("modules_garbage", put("/proc/modules", "\x01\x02\x03 garbage\n\n   \n"));
    status("modules_nul_bytes", put("/proc/modules", std::string(300, '\0')));
    status("osrelease_path", put("/proc/sys/kernel/osrelease", "../../etc/default/grub\n"));
    status("osrelease_escapes", put("/proc/sys/kernel/osrelease", "6.8.0" + k_osc + "\n"));
    status("nvidia_information_garbage",
           put("/proc/driver/nvidia/gpus/0000:8a:00.0/information", std::string(10000, '\xff')));
    status("ipv6_route_garbage", put("/proc/net/ipv6_route", "zz zz zz\n\x01\n"));
    // A process whose open files lead out of the tree and into nothing.
    status(
        "holder_fd_links_out",
        [](Env& e) {
            e.tree.symlink("/proc/" + std::to_string(fixture::k_holder_pid) + "/fd/9",
                           e.sentinel->dir.string() + "/secret");
            e.tree.symlink("/proc/" + std::to_string(fixture::k_holder_pid) + "/fd/10",
                           "/dev/../../../../dev/nvidia0");
        },
        "seed_before_held");
    status("holder_comm_garbage",
           put("/proc/" + std::to_string(fixture::k_holder_pid) + "/comm",
               std::string(5000, 'c') + k_osc),
           "seed_before_held");
    return v;
}

} // namespace

INSTANTIATE_TEST_SUITE_P(ProcCmdline, Hostile, testing::ValuesIn(cmdline_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(ProcMountinfo, Hostile, testing::ValuesIn(mountinfo_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(ProcRoute, Hostile, testing::ValuesIn(route_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(ProcOther, Hostile, testing::ValuesIn(other_proc_cases()), case_name);

} // namespace vfioctl::hostile
