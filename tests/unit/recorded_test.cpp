// Snapshots recorded inside real guests (tests/e2e/record-fixtures.sh) load
// as host trees: status on the recording says what the guest itself said.

#include "fixture/fixture.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;

class Recorded : public ::testing::TestWithParam<const char*> {};

TEST_P(Recorded, StatusOnTheSnapshotMatchesTheGuest) {
    const std::string dir = std::string(VFIOCTL_SOURCE_DIR) + "/tests/fixtures/recorded/";
    std::ifstream in(dir + GetParam() + ".status.json");
    ASSERT_TRUE(in) << "missing " << dir << GetParam() << ".status.json";
    json inside = json::parse(in);
    auto run = vfioctl::fixture::run_program({VFIOCTL_BINARY, "--root", dir + GetParam(), "status", "--json"});
    ASSERT_EQ(run.signal, 0);
    json outside = json::parse(run.out);
    EXPECT_EQ(run.exit_code, inside["exit_code"].get<int>());
    for (const char* key : {"platform", "acpi_table", "enabled", "group_count", "default_domain", "units"})
        EXPECT_EQ(outside["iommu"][key], inside["iommu"][key]) << key;
    EXPECT_EQ(outside["kernel"]["cmdline"], inside["kernel"]["cmdline"]);
    EXPECT_EQ(outside["host_critical"], inside["host_critical"]);
    ASSERT_EQ(outside["gpus"].size(), inside["gpus"].size());
    for (size_t i = 0; i < inside["gpus"].size(); ++i) {
        EXPECT_EQ(outside["gpus"][i]["address"], inside["gpus"][i]["address"]);
        EXPECT_EQ(outside["gpus"][i]["verdict"], inside["gpus"][i]["verdict"]);
        EXPECT_EQ(outside["gpus"][i]["causes"], inside["gpus"][i]["causes"]);
    }
    EXPECT_EQ(outside["verdict"], inside["verdict"]);
}

INSTANTIATE_TEST_SUITE_P(RealKernels, Recorded, ::testing::Values("iommu-on", "iommu-off"));

} // namespace
