// Bad input: malformed arguments, roots that are not host trees, and host
// trees with truncated or garbage files. Always a clear error or a warning,
// never a crash.

#include "host/host.hpp"
#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

using namespace vfioctl;
using fixture::HostTree;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& text, const std::string& needle) {
    return text.find(needle) != std::string::npos;
}

} // namespace

TEST(BadInput, MalformedAddressIsAUsageErrorWithNothingOnStdout) {
    for (const char* bad : {"zz:00.0", "8a:00.8", "8a:20.0", "0000:8a:00:0.1"}) {
        const auto& o = test::shared_run("seed_after", {"groups", "--device", bad});
        EXPECT_NE(o.exit_code, 0) << bad;
        EXPECT_TRUE(has(o.err, "malformed PCI address")) << bad << ": " << o.err;
        EXPECT_TRUE(has(o.err, "hint:")) << o.err;
        EXPECT_EQ(o.out, "") << bad;
    }
    // With --json the error is a JSON object on stdout as well.
    const auto& j = test::shared_run("seed_after", {"--json", "groups", "--device", "zz:00.0"});
    EXPECT_NE(j.exit_code, 0);
    json e = test::json_of(j);
    EXPECT_TRUE(has(e.value("error", ""), "malformed PCI address")) << j.out;
    EXPECT_EQ(e["exit_code"], j.exit_code);
}

TEST(BadInput, UnknownDevicesAreNamedInTheError) {
    const auto& id = test::shared_run("seed_after", {"groups", "--device", "10de:ffff"});
    EXPECT_EQ(id.exit_code, 1);
    EXPECT_TRUE(has(id.err, "no PCI device with ID 10de:ffff")) << id.err;
    EXPECT_EQ(id.out, "");
    const auto& at = test::shared_run("seed_after", {"groups", "--device", "0000:8b:00.0"});
    EXPECT_EQ(at.exit_code, 1);
    EXPECT_TRUE(has(at.err, "no PCI device at 0000:8b:00.0")) << at.err;
    const auto& word = test::shared_run("seed_after", {"groups", "--device", "gpu0"});
    EXPECT_EQ(word.exit_code, 1);
    EXPECT_TRUE(has(word.err, "neither a PCI address nor a vendor:device ID")) << word.err;
}

TEST(BadInput, RootThatIsNoHostTree) {
    fixture::TempDir empty;
    auto o = test::run_vfioctl({"--root", empty.path.string(), "status"});
    // No sys/ and no proc/: a usage error before anything is read.
    EXPECT_EQ(o.exit_code, 2);
    EXPECT_TRUE(has(o.err, "vfioctl: error:")) << o.err;
    EXPECT_TRUE(has(o.err, "--root is not a host tree")) << o.err;
    EXPECT_TRUE(has(o.err, "--root must name a host tree")) << o.err;
    EXPECT_EQ(o.out, "");

    auto missing = test::run_vfioctl({"--root", empty.path.string() + "/nowhere", "groups"});
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_TRUE(has(missing.err, "--root is not a directory")) << missing.err;

    HostTree file;
    file.write("/plain", "not a directory\n");
    auto plain = test::run_vfioctl({"--root", file.path("/plain").string(), "status", "--json"});
    EXPECT_EQ(plain.exit_code, 2);
    EXPECT_TRUE(has(plain.err, "--root is not a directory")) << plain.err;
}

TEST(BadInput, UnknownCommandIsAUsageError) {
    auto o = test::run_vfioctl({"frobnicate"});
    EXPECT_EQ(o.exit_code, 2);
    EXPECT_TRUE(has(o.err, "hint:")) << o.err;
}

// One way of breaking a fixture host, and what vfioctl must say about it.
struct Damage {
    std::string name;
    std::function<void(HostTree&)> apply;
    std::string says;   // expected on stderr
    bool fatal = false; // an error (exit 1) rather than a warning
    bool gpu_still_found = true;
    bool libpci_error = false; // libpci's fatal handler runs (its state is then leaked on purpose)
};

class DamagedHost : public ::testing::TestWithParam<Damage> {};

TEST_P(DamagedHost, ClearErrorOrWarningNeverACrash) {
    const Damage& dmg = GetParam();
    HostTree t = fixture::critical_group_host();
    dmg.apply(t);
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"status", "--json"}, {"groups", "--json"}, {"groups"}}) {
        SCOPED_TRACE(cmd[0] + (cmd.size() > 1 ? " " + cmd[1] : ""));
        auto o = test::run_on(t, cmd, dmg.fatal || dmg.libpci_error);
        EXPECT_EQ(o.signal, 0);
        EXPECT_TRUE(has(o.err, dmg.says)) << o.err;
        if (dmg.fatal) {
            EXPECT_EQ(o.exit_code, 1);
            EXPECT_TRUE(has(o.err, "vfioctl: error:")) << o.err;
            continue;
        }
        EXPECT_TRUE(o.exit_code == 0 || o.exit_code == 3) << o.exit_code << "\n" << o.err;
        EXPECT_TRUE(has(o.err, "vfioctl: warning:")) << o.err;
        if (cmd[0] == "status") {
            json j = test::json_of(o);
            bool found = false;
            for (const auto& g : j["gpus"])
                found |= g["address"] == fixture::k_critical_gpu && g["id"] == "10de:2331";
            EXPECT_EQ(found, dmg.gpu_still_found) << j["gpus"].dump();
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
    Fixture, DamagedHost,
    ::testing::Values(
        Damage{"EmptyVendor",
               [](HostTree& t) { t.write(t.device_path(fixture::k_critical_gpu) + "/vendor", ""); },
               "0000:13:00.0: vendor is empty; using the config header instead"},
        Damage{"GarbageClass",
               [](HostTree& t) {
                   t.write(t.device_path(fixture::k_critical_gpu) + "/class", "display?\n");
               },
               "0000:13:00.0: class holds 'display?'; using the config header instead"},
        Damage{"TruncatedConfig",
               [](HostTree& t) {
                   const std::string p = t.device_path(fixture::k_critical_gpu) + "/config";
                   t.write(p, t.read(p).substr(0, 10));
               },
               "0000:13:00.0: config space is unreadable or shorter than the 64-byte header"},
        Damage{"EmptyVendorAndTruncatedConfig",
               [](HostTree& t) {
                   const std::string dev = t.device_path(fixture::k_critical_gpu);
                   t.write(dev + "/vendor", "");
                   t.write(dev + "/config", "");
               },
               "0000:13:00.0: vendor is empty; the device's identity is unknown", false, false},
        Damage{"DanglingIommuGroupLink",
               [](HostTree& t) {
                   const std::string dev = t.device_path(fixture::k_critical_gpu);
                   t.symlink(dev + "/iommu_group",
                             HostTree::relative_link(dev + "/iommu_group",
                                                     "/sys/kernel/iommu_groups/9999"));
               },
               "iommu_group link leads to group 9999, which does not exist"},
        Damage{"IommuGroupEntryNotANumber",
               [](HostTree& t) { t.mkdir("/sys/kernel/iommu_groups/forty-two/devices"); },
               "/sys/kernel/iommu_groups/forty-two is not a group number; skipped"},
        Damage{"GroupMemberNotAnAddress",
               [](HostTree& t) {
                   t.write("/sys/kernel/iommu_groups/77/type", "identity\n");
                   t.symlink("/sys/kernel/iommu_groups/77/devices/garbage",
                             "../../../../devices/nowhere");
               },
               "devices/garbage is not a PCI address; skipped"},
        Damage{"MissingCmdline", [](HostTree& t) { t.remove("/proc/cmdline"); },
               "cannot read the kernel command line"},
        Damage{"GarbageResource",
               [](HostTree& t) {
                   t.write(t.device_path(fixture::k_critical_gpu) + "/resource", "BAR0 16M\n");
               },
               "Syntax error in", false, true, true},
        Damage{"MissingResource",
               [](HostTree& t) { t.remove(t.device_path(fixture::k_critical_gpu) + "/resource"); },
               "resource: No such file or directory", false, true, true},
        Damage{"GarbageBusEntry", [](HostTree& t) { t.mkdir("/sys/bus/pci/devices/not-a-device"); },
               "Couldn't parse entry name not-a-device", true}),
    [](const auto& info) { return info.param.name; });

// A --gpu before "--" takes one value: the command after "--" keeps its own
// options ("sh -c ..."), and the missing kernel is reported before any
// device is touched.
TEST(BadInput, GpuBeforeTheCommandSeparatorTakesOneValue) {
    HostTree t = fixture::seed_after();
    const std::string root = t.root().string();
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"vm", "run", "--kernel", "/nonexistent/bzImage", "--gpu",
                                   "8a:00.0", "--", "sh", "-c", "exit 0"},
          std::vector<std::string>{"verify", "--gpu", "8a:00.0", "--expect", "10de:2336",
                                   "--kernel", "/nonexistent/bzImage"}}) {
        std::vector<std::string> argv{"--root", root};
        argv.insert(argv.end(), args.begin(), args.end());
        auto o = test::run_vfioctl(argv);
        EXPECT_EQ(o.err.find("not expected"), std::string::npos) << o.err;
        EXPECT_EQ(o.exit_code, 1) << o.err;
        EXPECT_NE(o.err.find("/nonexistent/bzImage"), std::string::npos) << o.err;
        EXPECT_EQ(t.read("/sys/bus/pci/devices/0000:8a:00.0/driver_override"), "(null)\n");
    }
}

// A FIFO where a tree has a file blocked the open (or the read) for ever:
// under a root only regular files and directories are read, and a device
// node (/dev/zero, which never ends) is refused the same way.
TEST(BadInput, FifoOrDeviceNodeInTheTreeIsNotRead) {
    HostTree t = fixture::seed_after();
    t.remove("/proc/cmdline");
    ASSERT_EQ(::mkfifo(t.path("/proc/cmdline").c_str(), 0644), 0);
    host::Host h(t.root());
    auto r = h.read("/proc/cmdline");
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().describe(), "not a regular file")) << r.error().describe();
    EXPECT_FALSE(h.attr("/proc/cmdline").has_value());
    auto o = fixture::run_program({VFIOCTL_BINARY, "--root", t.root_str(), "status"}, 20000);
    EXPECT_EQ(o.signal, 0) << "status hung on the FIFO";
    EXPECT_TRUE(has(o.err, "/proc/cmdline")) << o.err;
    // A device node, where this process may make one (root).
    t.remove("/proc/cmdline");
    if (::mknod(t.path("/proc/cmdline").c_str(), S_IFCHR | 0644, makedev(1, 5)) == 0) {
        auto z = h.read("/proc/cmdline");
        ASSERT_FALSE(z.ok());
        EXPECT_TRUE(has(z.error().describe(), "not a regular file")) << z.error().describe();
    }
}

// libpci opens a device's files itself, links followed: a device whose
// directory leads out of the tree, or whose config is a FIFO, is left out
// with a warning (its group keeps it as an unknown member), never read.
TEST(BadInput, LibpciReadsNothingOutsideTheTree) {
    HostTree t = fixture::seed_after();
    fixture::TempDir outside;
    const std::string gpu = fixture::k_seed_gpu;
    const auto real = fs::canonical(t.path("/sys/bus/pci/devices/" + gpu));
    fs::copy(real, outside.path / "dev",
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    std::string cfg = t.read("/sys/bus/pci/devices/" + gpu + "/config");
    cfg[0] = '\x34', cfg[1] = '\x12'; // vendor 1234 outside the tree
    { std::ofstream(outside.path / "dev" / "config", std::ios::binary) << cfg; }
    { std::ofstream(outside.path / "dev" / "vendor") << "0x1234\n"; }
    t.symlink("/sys/bus/pci/devices/" + gpu, (outside.path / "dev").string());
    auto o = test::run_on(t, {"--json", "groups", "--all"});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    EXPECT_FALSE(has(o.out, "1234:")) << "read outside the tree:\n" << o.out;
    EXPECT_TRUE(has(o.err, gpu + ": left out: its directory leads out of the tree")) << o.err;
    auto devs = test::vfioctl_devices(test::json_of(o));
    ASSERT_EQ(devs.count(gpu), 1u);
    EXPECT_EQ(devs[gpu].value("unknown", false), true) << devs[gpu].dump();

    HostTree f = fixture::seed_after();
    f.remove("/sys/bus/pci/devices/" + gpu + "/config");
    ASSERT_EQ(::mkfifo(f.path("/sys/bus/pci/devices/" + gpu + "/config").c_str(), 0644), 0);
    auto p = fixture::run_program(
        {VFIOCTL_BINARY, "--root", f.root_str(), "--json", "bind", "--dry-run", gpu}, 20000);
    EXPECT_EQ(p.signal, 0) << "libpci hung on the FIFO";
    EXPECT_EQ(p.exit_code, 1) << p.err;
    EXPECT_TRUE(has(p.err, gpu + ": left out: config is not a regular file")) << p.err;
}

// A group link that names no number, or one too big for an int: unbind
// threw std::stoi's exception ("internal error: stoi"), and the inventory
// wrapped 99999999999 to group 1215752191.
TEST(BadInput, GroupLinkThatNamesNoNumber) {
    const std::string gpu = fixture::k_seed_gpu;
    for (const std::string name : {"abc", "99999999999"}) {
        SCOPED_TRACE(name);
        HostTree t = fixture::seed_after();
        t.mkdir("/sys/kernel/iommu_groups/" + name + "/devices");
        t.symlink("/sys/bus/pci/devices/" + gpu + "/iommu_group",
                  "../../../../kernel/iommu_groups/" + name);
        auto o = test::run_on(t, {"unbind", gpu});
        EXPECT_FALSE(has(o.err, "internal error")) << o.err;
        EXPECT_FALSE(has(o.err, "1215752191")) << o.err;
        auto g = test::run_on(t, {"--json", "groups", "--device", gpu});
        auto devs = test::vfioctl_devices(test::json_of(g));
        ASSERT_EQ(devs.count(gpu), 1u) << g.out;
        EXPECT_TRUE(devs[gpu]["iommu_group"].is_null() || devs[gpu].value("unknown", false))
            << devs[gpu].dump();
    }
}
