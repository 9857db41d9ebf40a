// 'vfioctl explain' in process (cli::run): text from the arguments or from
// standard input, and nothing to explain on a terminal.

#include "cli_run.hpp"
#include "fake_kernel.hpp"

#include <gtest/gtest.h>

using namespace vfioctl;
using fake::FakeKernel;
using fixture::HostTree;
using test::contains;
using test::run_cli;

namespace {

struct CliExplain : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);
};

const char* const k_no_group = "qemu-system-x86_64: -device vfio-pci,host=0000:8a:00.0: vfio "
                               "0000:8a:00.0: no iommu_group found: Invalid argument";

} // namespace

TEST_F(CliExplain, ReadsAPipedLog) {
    HostTree t = fixture::seed_before();
    FakeKernel k(t);
    auto r =
        run_cli(k, {"--json", "explain", "-"}, paths, std::string("boot\n") + k_no_group + "\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = r.json();
    EXPECT_EQ(j["recognised"], true);
    ASSERT_EQ(j["explanations"].size(), 1u) << r.out;
    EXPECT_EQ(j["explanations"][0]["id"], "no_iommu_group");
    EXPECT_EQ(j["explanations"][0]["device"], fixture::k_seed_gpu);
}

TEST_F(CliExplain, ArgumentsAndNothingOnATerminal) {
    HostTree t = fixture::seed_before();
    FakeKernel k(t);
    auto r = run_cli(k, {"explain", k_no_group}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "Message:  ")) << r.out;

    auto none = run_cli(k, {"explain"}, paths, "", true);
    EXPECT_EQ(none.exit_code, 2);
    EXPECT_TRUE(contains(none.err, "vfioctl: error: nothing to explain\n")) << none.err;

    auto unknown = run_cli(k, {"explain", "-"}, paths, "all is well\n");
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_TRUE(
        contains(unknown.err, "vfioctl: no known QEMU, VFIO or NVIDIA message in the text\n"))
        << unknown.err;
}
