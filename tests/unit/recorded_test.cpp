// Snapshots recorded inside real guests (tests/e2e/record-fixtures.sh) load
// as host trees: status on the recording says what the guest itself said.

#include "fixture/fixture.hpp"
#include "host/host.hpp"
#include "pci/device.hpp"
#include "vm/argv.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace {

using nlohmann::json;
using namespace vfioctl;

const std::string k_recorded = std::string(VFIOCTL_SOURCE_DIR) + "/tests/fixtures/recorded/";

// A recording is a directory, or NAME.tar.gz where its empty directories
// matter (git keeps no empty directory; tar does): unpacked into `tmp`.
std::string recording(const std::string& name, fixture::TempDir& tmp) {
    const std::string tarball = k_recorded + name + ".tar.gz";
    if (::access(tarball.c_str(), R_OK) != 0) return k_recorded + name;
    auto r = fixture::run_program({"/bin/tar", "-xzf", tarball, "-C", tmp.path.string()});
    if (r.exit_code != 0) ADD_FAILURE() << "cannot unpack " << tarball << ": " << r.err;
    return (tmp.path / name).string();
}

class Recorded : public ::testing::TestWithParam<const char*> {};

TEST_P(Recorded, StatusOnTheSnapshotMatchesTheGuest) {
    std::ifstream in(k_recorded + GetParam() + ".status.json");
    ASSERT_TRUE(in) << "missing " << k_recorded << GetParam() << ".status.json";
    json inside = json::parse(in);
    fixture::TempDir tmp;
    const std::string root = recording(GetParam(), tmp);
    auto run = vfioctl::fixture::run_program({VFIOCTL_BINARY, "--root", root, "status", "--json"});
    ASSERT_EQ(run.signal, 0);
    json outside = json::parse(run.out);
    EXPECT_EQ(run.exit_code, inside["exit_code"].get<int>());
    for (const char* key :
         {"platform", "acpi_table", "enabled", "group_count", "default_domain", "units"})
        EXPECT_EQ(outside["iommu"][key], inside["iommu"][key]) << key;
    EXPECT_EQ(outside["kernel"]["cmdline"], inside["kernel"]["cmdline"]);
    // The recording has the fields of its day; fields added since (kind)
    // are left out of the comparison, every recorded one must match.
    ASSERT_EQ(outside["host_critical"].size(), inside["host_critical"].size())
        << outside["host_critical"];
    for (size_t i = 0; i < inside["host_critical"].size(); ++i)
        for (const auto& [key, value] : inside["host_critical"][i].items())
            EXPECT_EQ(outside["host_critical"][i][key], value) << i << " " << key;
    ASSERT_EQ(outside["gpus"].size(), inside["gpus"].size());
    for (size_t i = 0; i < inside["gpus"].size(); ++i) {
        EXPECT_EQ(outside["gpus"][i]["address"], inside["gpus"][i]["address"]);
        EXPECT_EQ(outside["gpus"][i]["verdict"], inside["gpus"][i]["verdict"]);
        // The H100 guest was recorded before vfioctl told a VM's missing
        // virtual IOMMU from a firmware setting; its causes are checked in
        // RecordedH100.ACloudGuestIsToldToAskItsHypervisor instead.
        if (std::string(GetParam()) != "h100-firecracker") {
            EXPECT_EQ(outside["gpus"][i]["causes"], inside["gpus"][i]["causes"]);
        }
    }
    EXPECT_EQ(outside["verdict"], inside["verdict"]);
    EXPECT_EQ(outside["kvm"], inside["kvm"]);
}

INSTANTIATE_TEST_SUITE_P(RealKernels, Recorded,
                         ::testing::Values("iommu-on", "iommu-off", "h100-firecracker"));

// Recorded on a cloud guest with a real H100 SXM5 passed through (Firecracker,
// no IOMMU inside, PVM's /dev/kvm, nvidia bound): the facts read back from it.
TEST(RecordedH100, TheRealCardsBarsSizeTheVmWindow) {
    fixture::TempDir tmp;
    host::Host h(recording("h100-firecracker", tmp));
    auto inv = pci::enumerate(h);
    ASSERT_TRUE(inv.ok()) << inv.error().describe();
    auto gpus = inv->gpus();
    ASSERT_EQ(gpus.size(), 1u);
    const pci::PciDevice& gpu = *gpus[0];
    EXPECT_EQ(gpu.id().str(), "10de:2330");
    EXPECT_EQ(gpu.driver, std::optional<std::string>("nvidia"));
    EXPECT_FALSE(gpu.iommu_group.has_value());
    constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;
    uint64_t largest = 0;
    for (const auto& b : gpu.bars)
        largest = std::max(largest, b.size);
    EXPECT_EQ(largest, 128 * GiB);
    // Passing it to a 16 GiB VM: QEMU's default 32 GiB window cannot hold the
    // 128 GiB BAR, so the window and the guest's address bits grow.
    auto slots = vm::group_slots({&gpu});
    ASSERT_EQ(slots.size(), 1u);
    auto m = vm::plan_mmio(slots, 16 * 1024);
    EXPECT_EQ(m.bar_bytes, 128 * GiB + 16 * MiB + 32 * MiB);
    EXPECT_EQ(m.hole64_bytes, 512 * GiB);
    EXPECT_GE(m.phys_bits, 40);
}

// The recording is a VM (the CPU's hypervisor flag; Firecracker gives it no
// DMI) without a virtual IOMMU and with a kernel without VFIO: the steps name
// the VM's settings and a VFIO kernel, not a firmware setup, and the
// summary's "after the steps" column says what those steps give.
TEST(RecordedH100, ACloudGuestIsToldToAskItsHypervisor) {
    fixture::TempDir tmp;
    const std::string dir = recording("h100-firecracker", tmp);
    auto run = vfioctl::fixture::run_program({VFIOCTL_BINARY, "--root", dir, "status", "--json"});
    ASSERT_EQ(run.signal, 0);
    EXPECT_EQ(run.exit_code, 3);
    json j = json::parse(run.out);
    EXPECT_EQ(j["machine"]["guest"], true);
    EXPECT_EQ(j["machine"]["hypervisor"], "unknown");
    EXPECT_EQ(j["machine"]["dmi_sys_vendor"], nullptr);
    ASSERT_EQ(j["gpus"].size(), 1u);
    const json& g = j["gpus"][0];
    EXPECT_EQ(g["verdict"], "will_not_work");
    const std::string causes = g["causes"].dump(), steps = g["steps"].dump();
    EXPECT_NE(causes.find("this is a virtual machine"), std::string::npos) << causes;
    EXPECT_EQ(causes.find("firmware setup"), std::string::npos) << causes;
    EXPECT_EQ(steps.find("BIOS/UEFI"), std::string::npos) << steps;
    EXPECT_NE(steps.find("virtual IOMMU"), std::string::npos) << steps;
    EXPECT_NE(steps.find("boot a kernel built with VFIO"), std::string::npos) << steps;
    std::map<std::string, json> rows;
    for (const auto& r : j["summary"])
        rows[r["feature"]] = r;
    EXPECT_EQ(rows["VM GPU passthrough"]["now"], "Fails");
    EXPECT_EQ(rows["VM GPU passthrough"]["after"], "Works");
    EXPECT_EQ(rows["VFIO support"]["after"], "Yes");
    EXPECT_EQ(rows["IOMMU groups"]["after"], "Many (after the steps)");
    EXPECT_EQ(rows["Reboot required"]["after"], "Yes");
}

TEST(RecordedH100, VerifyInGuestOnTheRecordingSeesTheCard) {
    fixture::TempDir tmp;
    const std::string dir = recording("h100-firecracker", tmp);
    auto run = vfioctl::fixture::run_program(
        {VFIOCTL_BINARY, "--root", dir, "--json", "verify", "--in-guest"});
    ASSERT_EQ(run.signal, 0);
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
    json r = json::parse(run.out);
    ASSERT_EQ(r["devices"].size(), 1u);
    EXPECT_EQ(r["devices"][0]["id"], "10de:2330");
    EXPECT_EQ(r["devices"][0]["driver"], "nvidia");
    EXPECT_EQ(r["devices"][0]["bars"].size(), 3u);
    EXPECT_TRUE(r["ok"].get<bool>());
}

} // namespace
