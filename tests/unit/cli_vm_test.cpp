// 'vfioctl vm' in process (cli::run) on fixture hosts: status, list and
// stop with an empty run directory, and the refusals of 'vm start' that
// come before QEMU runs.

#include "cli_run.hpp"
#include "fake_kernel.hpp"

#include <filesystem>
#include <gtest/gtest.h>

using namespace vfioctl;
using fake::FakeKernel;
using fixture::HostTree;
using nlohmann::json;
using test::contains;
using test::run_cli;

namespace {

struct CliVm : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);
};

} // namespace

TEST_F(CliVm, ListAndStatusOnAnEmptyRunDirectory) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto list = run_cli(k, {"vm", "list"}, paths);
    EXPECT_EQ(list.exit_code, 0) << list.err;
    EXPECT_EQ(list.out, "No VMs are running\n");
    auto status = run_cli(k, {"vm", "status"}, paths);
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_EQ(status.out, "No VMs are running\n");
    auto json_list = run_cli(k, {"--json", "vm", "list"}, paths);
    EXPECT_EQ(json_list.exit_code, 0) << json_list.err;
    EXPECT_EQ(json_list.json(), json({{"schema_version", 1}, {"vms", json::array()}}));
}

TEST_F(CliVm, StatusAndStopOfAnUnknownVmFail) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    const std::string dir = paths.run_base + "/nosuch";
    auto status = run_cli(k, {"vm", "status", "nosuch"}, paths);
    EXPECT_EQ(status.exit_code, 1);
    EXPECT_EQ(status.out, "");
    EXPECT_TRUE(contains(status.err, "vfioctl: error: no VM 'nosuch': " + dir + "\n"))
        << status.err;
    auto stop = run_cli(k, {"--json", "vm", "stop", "nosuch"}, paths);
    EXPECT_EQ(stop.exit_code, 1);
    EXPECT_TRUE(contains(stop.err, "vfioctl: error: no VM 'nosuch' is running: " + dir + "\n"))
        << stop.err;
    EXPECT_EQ(stop.json()["exit_code"], 1) << stop.out;
    EXPECT_EQ(stop.json()["hint"], "'vfioctl vm list' shows the VMs") << stop.out;
    auto bad = run_cli(k, {"vm", "stop", "../x"}, paths);
    EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

TEST_F(CliVm, StartRefusesAGpuThatWillNotWorkWithExitThree) {
    // IOMMU off: the 'status' verdict refuses before anything changes.
    HostTree t = fixture::seed_before();
    t.write("/boot/vmlinuz-test", "kernel");
    FakeKernel k(t);
    auto r = run_cli(
        k, {"vm", "start", "gpuvm", "--kernel", "/boot/vmlinuz-test", "--gpu", fixture::k_seed_gpu},
        paths);
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_TRUE(contains(r.err, "vfioctl: error: passthrough of 0000:8a:00.0 ")) << r.err;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_FALSE(std::filesystem::exists(paths.run_base + "/gpuvm"));

    auto j = run_cli(k,
                     {"--json", "vm", "start", "gpuvm", "--kernel", "/boot/vmlinuz-test", "--gpu",
                      fixture::k_seed_gpu},
                     paths);
    EXPECT_EQ(j.exit_code, 3);
    EXPECT_EQ(j.json()["exit_code"], 3) << j.out;
}

TEST_F(CliVm, StartRefusesAMissingKernel) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto r = run_cli(k, {"vm", "start", "nokernel", "--kernel", "/boot/missing"}, paths);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.err, "vfioctl: error: kernel not found: /boot/missing: "
                                "No such file or directory\n"))
        << r.err;
    EXPECT_TRUE(contains(r.err, "hint: check the path in the profile or on the command line\n"))
        << r.err;
    EXPECT_FALSE(std::filesystem::exists(paths.run_base + "/nokernel"));
}

TEST_F(CliVm, RunRefusesAGpuTheHostUsesWithExitThree) {
    // vm run takes devices through the same service as vm start: the
    // preflight gives the 'status' verdict for a GPU a process holds.
    HostTree t = fixture::seed_after();
    t.add_process(fixture::k_holder_pid, fixture::k_holder_comm, {"/dev/nvidia0"});
    t.write("/boot/vmlinuz-test", "kernel");
    FakeKernel k(t);
    auto r = run_cli(k,
                     {"vm", "run", "--kernel", "/boot/vmlinuz-test", "--accel", "tcg", "--gpu",
                      fixture::k_seed_gpu, "--", "true"},
                     paths);
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_TRUE(contains(r.err, "vfioctl: error: passthrough of 0000:8a:00.0 WILL NOT WORK now"))
        << r.err;
    EXPECT_TRUE(contains(r.err, "pid 4242 (nvidia-persistenced) holds /dev/nvidia0")) << r.err;
    EXPECT_TRUE(contains(r.err, "hint: then try again: stop that process")) << r.err;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    // The scratch run directory is gone again.
    EXPECT_TRUE(std::filesystem::is_empty(paths.run_base));
}

TEST_F(CliVm, VerifyRefusesAGpuThatWillNotWorkBeforeBooting) {
    // verify boots through 'vm run', which takes devices through the same
    // service: IOMMU off is exit 3, with nothing changed.
    HostTree t = fixture::seed_before();
    t.write("/boot/vmlinuz-test", "kernel");
    FakeKernel k(t);
    auto r = run_cli(k,
                     {"verify", "--gpu", fixture::k_seed_gpu, "--kernel", "/boot/vmlinuz-test",
                      "--accel", "tcg"},
                     paths);
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_TRUE(contains(r.err, "vfioctl: error: passthrough of 0000:8a:00.0 ")) << r.err;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_TRUE(std::filesystem::is_empty(paths.run_base));
}

TEST_F(CliVm, StartWithASelectionThatNamesNothingChangesNothing) {
    HostTree t = fixture::seed_after();
    t.write("/boot/vmlinuz-test", "kernel");
    FakeKernel k(t);
    auto r = run_cli(
        k, {"vm", "start", "fabric", "--kernel", "/boot/vmlinuz-test", "--with-nvswitches"}, paths);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "--with-nvswitches: this host has no NVSwitch")) << r.err;
    EXPECT_FALSE(std::filesystem::exists(paths.run_base + "/fabric"));

    // IOMMU off: --all-gpus finds no GPU that can go, and says why.
    HostTree off = fixture::seed_before();
    off.write("/boot/vmlinuz-test", "kernel");
    FakeKernel ko(off);
    auto a = run_cli(ko, {"vm", "start", "fabric", "--kernel", "/boot/vmlinuz-test", "--all-gpus"},
                     paths);
    EXPECT_EQ(a.exit_code, 1) << a.err;
    EXPECT_TRUE(contains(a.err, "--all-gpus: no NVIDIA GPU can go to a VM now")) << a.err;
    EXPECT_EQ(ko.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_FALSE(std::filesystem::exists(paths.run_base + "/fabric"));
}

TEST_F(CliVm, StartRefusesAnUnknownOwnerBeforeTakingAnyDevice) {
    HostTree t = fixture::seed_after();
    t.write("/boot/vmlinuz-test", "kernel");
    t.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    FakeKernel k(t);
    auto r = run_cli(k,
                     {"vm", "start", "owned", "--kernel", "/boot/vmlinuz-test", "--gpu",
                      fixture::k_seed_gpu, "--owner", "nosuch"},
                     paths);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(contains(r.err, "no user 'nosuch' in /etc/passwd")) << r.err;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_FALSE(std::filesystem::exists(paths.run_base + "/owned"));
}
