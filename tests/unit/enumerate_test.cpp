// lspci as the oracle: on every fixture host, and on the machine the tests run
// on, vfioctl must list the same functions, IDs, names, classes and drivers.

#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>

using namespace vfioctl;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Compares lspci's and vfioctl's views of one host, field by field.
void expect_same_devices(const std::map<std::string, test::LspciDevice>& ls,
                         const std::map<std::string, json>& vf) {
    ASSERT_FALSE(ls.empty()) << "lspci listed nothing";
    for (const auto& [addr, l] : ls) {
        auto it = vf.find(addr);
        if (it == vf.end()) {
            ADD_FAILURE() << "vfioctl does not list " << addr << " (lspci: " << l.name << ")";
            continue;
        }
        const json& d = it->second;
        EXPECT_EQ(d.value("id", ""), l.id) << addr;
        EXPECT_EQ(test::lspci_style_name(d), l.name) << addr;
        EXPECT_EQ(d.value("class", ""), l.cls) << addr;
        EXPECT_EQ(d["driver"].is_string() ? d["driver"].get<std::string>() : "", l.driver) << addr;
    }
    for (const auto& [addr, _] : vf)
        EXPECT_TRUE(ls.count(addr)) << "lspci does not list " << addr;
}

// The PCI address in a resolved sysfs path: the last component that is one.
std::string pci_owner(const fs::path& p) {
    std::string found;
    for (const auto& part : p) {
        const std::string s = part.string();
        if (s.size() == 12 && s[4] == ':' && s[7] == ':' && s[10] == '.') found = s;
    }
    return found;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Why this machine is not the kind the live checks are written for, or "".
std::string live_layout_mismatch() {
    if (test::lspci_path().empty()) return "lspci is not installed";
    const fs::path devs = "/sys/bus/pci/devices";
    for (const char* a : {"0000:00:02.0", "0000:00:03.0"})
        if (!fs::exists(devs / a)) return std::string("no PCI function ") + a;
    if (read_file(devs / "0000:00:02.0/vendor") != "0x1af4\n" ||
        read_file(devs / "0000:00:02.0/device") != "0x1042\n")
        return "0000:00:02.0 is not a virtio block device";
    if (read_file(devs / "0000:00:03.0/vendor") != "0x1af4\n" ||
        read_file(devs / "0000:00:03.0/device") != "0x1041\n")
        return "0000:00:03.0 is not a virtio network device";
    if (!fs::exists("/sys/module/kvm_pvm")) return "/dev/kvm is not provided by kvm_pvm here";
    return "";
}

} // namespace

class LspciOracle : public ::testing::TestWithParam<std::string> {};

TEST_P(LspciOracle, VfioctlListsWhatLspciLists) {
    if (test::lspci_path().empty()) GTEST_SKIP() << "lspci is not installed";
    const auto& t = test::shared_host(GetParam());
    const auto& o = test::shared_run(GetParam(), {"groups", "--json"});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    auto vf = test::vfioctl_devices(test::json_of(o));
    auto ls = test::lspci_devices(t.root_str());
    expect_same_devices(ls, vf);
    EXPECT_EQ(ls.size(), t.addresses().size());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LspciOracle, ::testing::ValuesIn(test::host_names()),
                         [](const auto& info) { return info.param; });

TEST(LiveHost, VfioctlListsWhatLspciLists) {
    if (test::lspci_path().empty()) GTEST_SKIP() << "lspci is not installed";
    if (!fs::exists("/sys/bus/pci/devices") || fs::is_empty("/sys/bus/pci/devices"))
        GTEST_SKIP() << "this machine shows no PCI devices in /sys";
    auto o = test::run_vfioctl({"groups", "--json"});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    expect_same_devices(test::lspci_devices("/"), test::vfioctl_devices(test::json_of(o)));
}

TEST(LiveHost, StatusOnThisMachine) {
    if (auto why = live_layout_mismatch(); !why.empty())
        GTEST_SKIP() << "not this kind of machine: " << why;
    auto o = test::run_vfioctl({"status", "--json"});
    json j = test::json_of(o);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(o.exit_code, 3) << o.err;
    EXPECT_EQ(j["exit_code"], 3);

    // The IOMMU: what /sys shows, read here independently.
    const bool units = fs::exists("/sys/class/iommu") && !fs::is_empty("/sys/class/iommu");
    const bool groups =
        fs::exists("/sys/kernel/iommu_groups") && !fs::is_empty("/sys/kernel/iommu_groups");
    const bool tables = fs::exists("/sys/firmware/acpi/tables/DMAR") ||
                        fs::exists("/sys/firmware/acpi/tables/IVRS");
    EXPECT_FALSE(units || groups || tables) << "this machine was expected to have no IOMMU";
    EXPECT_EQ(j["iommu"]["enabled"], units || groups);
    EXPECT_EQ(j["iommu"]["platform"], "none");
    EXPECT_EQ(j["iommu"]["group_count"], 0);

    EXPECT_EQ(j["kvm"]["present"], fs::exists("/dev/kvm"));
    EXPECT_EQ(j["kvm"]["usable"], false);
    EXPECT_EQ(j["kvm"]["backend"], "kvm_pvm");
    EXPECT_EQ(j["kvm"]["accelerator"], "tcg");

    bool display = false;
    for (const auto& e : fs::directory_iterator("/sys/bus/pci/devices"))
        display |= read_file(e.path() / "class").rfind("0x03", 0) == 0;
    EXPECT_FALSE(display) << "this machine was expected to have no display device";
    EXPECT_TRUE(j["gpus"].empty());
    EXPECT_EQ(j["verdict"], "will_not_work");

    // The root filesystem's controller: from stat("/") and /sys/dev/block.
    struct stat st {};
    ASSERT_EQ(::stat("/", &st), 0);
    const fs::path blk = "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" +
                         std::to_string(minor(st.st_dev));
    std::error_code ec;
    const std::string root_dev = pci_owner(fs::canonical(blk, ec));
    EXPECT_EQ(root_dev, "0000:00:02.0");
    // The default route's interface: from /proc/net/route and /sys/class/net.
    std::string iface;
    std::istringstream route(read_file("/proc/net/route"));
    for (std::string line; std::getline(route, line);) {
        std::istringstream f(line);
        std::string name, dest;
        if (f >> name >> dest && dest == "00000000") iface = name;
    }
    ASSERT_FALSE(iface.empty()) << "no default route";
    const std::string net_dev = pci_owner(fs::canonical("/sys/class/net/" + iface, ec));
    EXPECT_EQ(net_dev, "0000:00:03.0");

    std::map<std::string, std::string> critical;
    for (const auto& c : j["host_critical"])
        critical[c["address"]] += c["reason"].get<std::string>() + ";";
    EXPECT_NE(critical[root_dev].find("root filesystem"), std::string::npos)
        << j["host_critical"].dump();
    EXPECT_NE(critical[net_dev].find("default route via " + iface), std::string::npos)
        << j["host_critical"].dump();
}
