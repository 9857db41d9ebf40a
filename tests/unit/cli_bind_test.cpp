// 'vfioctl bind', 'unbind' and 'recover' in process (cli::run) against
// FakeKernel on fixture hosts: the text, the JSON and the exit codes.

#include "cli_run.hpp"
#include "fake_kernel.hpp"
#include "host/users.hpp"
#include "vfio/journal.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace vfioctl;
using fake::FakeKernel;
using fixture::HostTree;
using nlohmann::json;
using test::contains;
using test::run_cli;

namespace {

struct CliBind : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);
};

} // namespace

TEST_F(CliBind, BindsTheGpuAndUnbindGivesItBack) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto bind = run_cli(k, {"bind", fixture::k_seed_gpu, "--timeout", "2"}, paths);
    ASSERT_EQ(bind.exit_code, 0) << bind.err;
    EXPECT_TRUE(contains(bind.out, "IOMMU group ")) << bind.out;
    EXPECT_TRUE(contains(bind.out, ": nvidia -> vfio-pci\n")) << bind.out;
    EXPECT_TRUE(contains(bind.out, "Bound to vfio-pci:\n  0000:8a:00.0: nvidia -> vfio-pci ("))
        << bind.out;
    EXPECT_TRUE(contains(bind.out, "Give back with: vfioctl unbind 0000:8a:00.0\n")) << bind.out;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
    auto journal = vfio::load_journal(k, paths.state_dir);
    ASSERT_TRUE(journal.ok());
    ASSERT_EQ(journal->entries.size(), 1u);

    auto unbind = run_cli(k, {"--json", "unbind", fixture::k_seed_gpu}, paths);
    ASSERT_EQ(unbind.exit_code, 0) << unbind.err;
    json j = unbind.json();
    ASSERT_EQ(j["changes"].size(), 1u) << unbind.out;
    EXPECT_EQ(j["changes"][0]["address"], fixture::k_seed_gpu);
    EXPECT_EQ(j["changes"][0]["from"], "vfio-pci");
    EXPECT_EQ(j["changes"][0]["to"], "nvidia");
    EXPECT_EQ(j["changes"][0]["changed"], true);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    // JSON mode prints no progress lines.
    EXPECT_EQ(unbind.err, "");
}

TEST_F(CliBind, DryRunPrintsThePlanAndChangesNothing) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto text = run_cli(k, {"bind", "--gpu", "0", "--dry-run"}, paths);
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_TRUE(contains(text.out, "dry run: nothing changed\n")) << text.out;
    auto dry = run_cli(k, {"--json", "bind", fixture::k_seed_gpu, "--dry-run"}, paths);
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    json j = dry.json();
    EXPECT_EQ(j["dry_run"], true);
    EXPECT_EQ(j["changed"], false);
    ASSERT_EQ(j["plan"].size(), 1u) << dry.out;
    EXPECT_EQ(j["plan"][0]["address"], fixture::k_seed_gpu);
    EXPECT_EQ(j["plan"][0]["driver"], "nvidia");
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_FALSE(k.exists(vfio::journal_path(paths.state_dir)));
}

TEST_F(CliBind, IommuOffIsRefusedWithExitOneAndTheObstacleInJson) {
    HostTree t = fixture::seed_before();
    FakeKernel k(t);
    auto r = run_cli(k, {"--json", "bind", fixture::k_seed_gpu}, paths);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.err, "vfioctl: error: refusing to bind: ")) << r.err;
    EXPECT_TRUE(contains(r.err, "hint: nothing was changed; 'vfioctl groups' shows each group's "
                                "members and roles"))
        << r.err;
    json j = r.json();
    EXPECT_EQ(j["exit_code"], 1);
    EXPECT_EQ(j["changed"], false);
    ASSERT_EQ(j["refused"].size(), 1u) << r.out;
    EXPECT_EQ(j["refused"][0]["kind"], "no_iommu_group");
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
}

TEST_F(CliBind, HolderBlocksUnlessForced) {
    HostTree t = fixture::seed_after();
    t.add_process(fixture::k_holder_pid, fixture::k_holder_comm, {"/dev/nvidia0"});
    FakeKernel k(t);
    auto blocked = run_cli(k, {"bind", fixture::k_seed_gpu}, paths);
    EXPECT_EQ(blocked.exit_code, 1);
    EXPECT_TRUE(contains(blocked.out, "blocked: ")) << blocked.out;
    EXPECT_TRUE(contains(blocked.err, "pid 4242 (nvidia-persistenced)")) << blocked.err;
    EXPECT_TRUE(contains(blocked.err, "hint: nothing was changed; stop what uses the device, or "
                                      "pass --force to take it anyway"))
        << blocked.err;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");

    auto forced = run_cli(k, {"--json", "bind", fixture::k_seed_gpu, "--force"}, paths);
    ASSERT_EQ(forced.exit_code, 0) << forced.err;
    EXPECT_EQ(forced.json()["forced"], true);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
}

TEST_F(CliBind, UsageErrorsExitTwo) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto none = run_cli(k, {"bind"}, paths);
    EXPECT_EQ(none.exit_code, 2);
    EXPECT_TRUE(contains(none.err, "vfioctl: error: no device given\n")) << none.err;
    auto both = run_cli(k, {"unbind", "--all", fixture::k_seed_gpu}, paths);
    EXPECT_EQ(both.exit_code, 2);
    EXPECT_TRUE(contains(both.err, "vfioctl: error: give either devices or --all\n")) << both.err;
    auto unknown = run_cli(k, {"bind", "ffff:ffff"}, paths);
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_TRUE(contains(unknown.err, "vfioctl: error: no PCI device with ID ffff:ffff\n"))
        << unknown.err;
}

TEST_F(CliBind, UnbindAndRecoverOnAnEmptyJournal) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto unbind = run_cli(k, {"unbind", "--all"}, paths);
    ASSERT_EQ(unbind.exit_code, 0) << unbind.err;
    EXPECT_EQ(unbind.out, "Nothing to give back: the journal is empty\n");
    auto recover = run_cli(k, {"recover"}, paths);
    ASSERT_EQ(recover.exit_code, 0) << recover.err;
    EXPECT_EQ(recover.out, "Nothing to recover: the journal is empty\n");
    auto jrecover = run_cli(k, {"--json", "recover"}, paths);
    ASSERT_EQ(jrecover.exit_code, 0) << jrecover.err;
    json j = jrecover.json();
    EXPECT_EQ(j["changes"], json::array()) << jrecover.out;
    EXPECT_EQ(j["settled"], nullptr) << jrecover.out;
    EXPECT_EQ(j["left"], json::array()) << jrecover.out;
    EXPECT_EQ(j["at_boot"], false) << jrecover.out;
}

TEST_F(CliBind, RecoverGivesBackWhatABindInAnotherStateDirTook) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto bind = run_cli(k, {"bind", fixture::k_seed_gpu, "--state-dir", "/srv/vfioctl"}, paths);
    ASSERT_EQ(bind.exit_code, 0) << bind.err;
    EXPECT_TRUE(k.exists("/srv/vfioctl/journal.json"));
    EXPECT_FALSE(k.exists(vfio::journal_path(paths.state_dir)));
    // The default state dir knows nothing of it.
    auto other = run_cli(k, {"recover"}, paths);
    EXPECT_EQ(other.out, "Nothing to recover: the journal is empty\n");
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");

    auto recover = run_cli(k, {"recover", "--state-dir", "/srv/vfioctl"}, paths);
    ASSERT_EQ(recover.exit_code, 0) << recover.err;
    EXPECT_TRUE(contains(recover.out, "Recovered:\n  0000:8a:00.0: vfio-pci -> nvidia ("))
        << recover.out;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
}

TEST_F(CliBind, PathsFromTheServicesAreTheDefaultStateDir) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    services::Paths elsewhere = paths;
    elsewhere.state_dir = "/opt/state";
    auto bind = run_cli(k, {"bind", fixture::k_seed_gpu}, elsewhere);
    ASSERT_EQ(bind.exit_code, 0) << bind.err;
    EXPECT_TRUE(k.exists("/opt/state/journal.json"));
    auto unbind = run_cli(k, {"unbind", "--all"}, elsewhere);
    ASSERT_EQ(unbind.exit_code, 0) << unbind.err;
    EXPECT_TRUE(contains(unbind.out, "Given back:\n")) << unbind.out;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
}

// --owner: the group's node goes to the user, so QEMU may run as that user;
// an unknown user is refused before anything changes.
TEST_F(CliBind, OwnerGetsTheGroupNodeAndAnUnknownOwnerChangesNothing) {
    HostTree t = fixture::seed_after();
    // Root may give a node to anyone; another user only to itself.
    const unsigned uid = ::geteuid() == 0 ? 1234u : static_cast<unsigned>(::geteuid());
    const unsigned gid = ::geteuid() == 0 ? 1235u : static_cast<unsigned>(::getegid());
    t.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
                           "broken line\n"
                           "dev:x:" +
                               std::to_string(uid) + ":" + std::to_string(gid) +
                               "::/home/dev:/bin/bash\n");
    FakeKernel k(t);
    auto bad = run_cli(k, {"bind", fixture::k_seed_gpu, "--owner", "nosuch"}, paths);
    EXPECT_EQ(bad.exit_code, 2) << bad.err;
    EXPECT_TRUE(contains(bad.err, "no user 'nosuch' in /etc/passwd")) << bad.err;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    auto colon = run_cli(k, {"bind", fixture::k_seed_gpu, "--owner", "a:b"}, paths);
    EXPECT_EQ(colon.exit_code, 2) << colon.err;

    auto r = run_cli(k, {"--json", "bind", fixture::k_seed_gpu, "--owner", "dev"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = r.json();
    EXPECT_EQ(j["owner"]["user"], "dev");
    EXPECT_EQ(j["owner"]["uid"], uid);
    ASSERT_EQ(j["owner"]["nodes"].size(), 1u) << r.out;
    const std::string node = j["owner"]["nodes"][0];
    struct stat st {};
    ASSERT_EQ(::stat((t.root().string() + node).c_str(), &st), 0) << node;
    EXPECT_EQ(st.st_uid, uid);
    EXPECT_EQ(st.st_gid, gid);

    // A uid names the same user.
    auto by_uid = host::find_user(k, std::to_string(uid));
    ASSERT_TRUE(by_uid.ok()) << by_uid.error().describe();
    EXPECT_EQ(by_uid->name, "dev");
}

TEST_F(CliBind, ASecondBindSaysNothingChanged) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto first = run_cli(k, {"--json", "bind", fixture::k_seed_gpu, "--timeout", "2"}, paths);
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_EQ(first.json()["changed"], true);
    auto again = run_cli(k, {"--json", "bind", fixture::k_seed_gpu, "--timeout", "2"}, paths);
    ASSERT_EQ(again.exit_code, 0) << again.err;
    const auto j = again.json();
    EXPECT_EQ(j["changed"], false) << again.out;
    for (const auto& c : j["changes"])
        EXPECT_EQ(c["changed"], false) << c;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
}
