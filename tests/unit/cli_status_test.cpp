// 'vfioctl status' in process (cli::run): the bind journal is read from
// the state dir that bind wrote it to (--state-dir).

#include "cli_run.hpp"
#include "fake_kernel.hpp"

#include <gtest/gtest.h>

using namespace vfioctl;
using fake::FakeKernel;
using fixture::HostTree;
using nlohmann::json;
using test::contains;
using test::run_cli;

namespace {

struct CliStatus : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);
};

// The addresses in status's journal_pending.
std::vector<std::string> pending(const json& status) {
    std::vector<std::string> out;
    for (const auto& e : status["journal_pending"])
        out.push_back(e.value("address", std::string()));
    return out;
}

} // namespace

TEST_F(CliStatus, SeesTheJournalOfItsStateDir) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto bind = run_cli(k, {"bind", fixture::k_seed_gpu, "--state-dir", "/srv/vfioctl"}, paths);
    ASSERT_EQ(bind.exit_code, 0) << bind.err;

    auto elsewhere = run_cli(k, {"--json", "status"}, paths);
    EXPECT_TRUE(pending(elsewhere.json()).empty()) << elsewhere.out;

    auto here = run_cli(k, {"--json", "status", "--state-dir", "/srv/vfioctl"}, paths);
    EXPECT_EQ(pending(here.json()), std::vector<std::string>{fixture::k_seed_gpu}) << here.out;
    auto text = run_cli(k, {"status", "--state-dir", "/srv/vfioctl"}, paths);
    EXPECT_TRUE(contains(text.out, "Devices vfioctl moved to vfio-pci (journal)")) << text.out;

    auto bad = run_cli(k, {"status", "--state-dir", "relative"}, paths);
    EXPECT_EQ(bad.exit_code, 2);
}
