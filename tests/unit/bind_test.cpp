// bind, unbind and recover against FakeKernel on fixture hosts.

#include "fake_kernel.hpp"
#include "services/host_model.hpp"
#include "services/paths.hpp"
#include "util/fault.hpp"
#include "vfio/bind.hpp"

#include <gtest/gtest.h>
#include <iostream>
#include <map>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace vfioctl;
using fake::FakeKernel;
using fake::quick;
using fixture::HostTree;

namespace {

services::HostModel load(const host::Host& h) {
    auto m = services::load_host(h, services::k_default_state_dir);
    EXPECT_TRUE(m.ok()) << m.error().describe();
    return m.ok() ? std::move(m).value() : services::HostModel{};
}

vfio::BindPlan plan_for(const host::Host& h, const std::string& addr) {
    services::HostModel m = load(h);
    const pci::PciDevice* d = m.inv.find(*pci::PciAddress::parse(addr));
    EXPECT_NE(d, nullptr);
    return vfio::plan_bind({d}, m.inv, m.facts, m.groups);
}

std::string group_node(const FakeKernel& k, const std::string& addr) {
    return "/dev/vfio/" +
           k.link_name("/sys/bus/pci/devices/" + addr + "/iommu_group").value_or("?");
}

} // namespace

TEST(BindPlan, SeedHostAfterRebootMovesTheH100Alone) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto plan = plan_for(k, fixture::k_seed_gpu);
    EXPECT_TRUE(plan.refusals.empty());
    EXPECT_TRUE(plan.blockers.empty());
    ASSERT_EQ(plan.items.size(), 1u);
    EXPECT_EQ(plan.items[0].driver, std::optional<std::string>("nvidia"));
    EXPECT_TRUE(plan.items[0].target);
}

TEST(BindPlan, IommuOffIsRefused) {
    HostTree t = fixture::seed_before();
    FakeKernel k(t);
    auto plan = plan_for(k, fixture::k_seed_gpu);
    ASSERT_EQ(plan.refusals.size(), 1u);
    EXPECT_EQ(plan.refusals[0].kind, "no_iommu_group");
    EXPECT_NE(plan.refusals[0].text.find("no IOMMU group"), std::string::npos);
}

TEST(BindPlan, SharedGroupMovesEveryEndpointButNotTheBridge) {
    HostTree t = fixture::shared_group_host();
    FakeKernel k(t);
    auto plan = plan_for(k, fixture::k_shared_gpu);
    std::vector<std::string> addrs;
    for (const auto& it : plan.items)
        addrs.push_back(it.addr.str());
    EXPECT_NE(std::find(addrs.begin(), addrs.end(), fixture::k_shared_other), addrs.end());
    EXPECT_EQ(std::find(addrs.begin(), addrs.end(), fixture::k_shared_bridge), addrs.end());
}

TEST(BindPlan, RootFilesystemControllerIsRefusedNeverForced) {
    HostTree t = fixture::critical_group_host();
    FakeKernel k(t);
    auto plan = plan_for(k, fixture::k_critical_gpu);
    ASSERT_FALSE(plan.refusals.empty());
    EXPECT_EQ(plan.refusals[0].kind, "root_filesystem");
    EXPECT_EQ(plan.refusals[0].addr.str(), fixture::k_critical_nvme);
    EXPECT_NE(plan.refusals[0].text.find("root filesystem"), std::string::npos);
}

TEST(BindPlan, HolderBlocksWithPidAndCommand) {
    HostTree after = fixture::seed_after();
    after.add_process(fixture::k_holder_pid, fixture::k_holder_comm, {"/dev/nvidia0"});
    FakeKernel k(after);
    auto plan = plan_for(k, fixture::k_seed_gpu);
    ASSERT_FALSE(plan.blockers.empty());
    EXPECT_EQ(plan.blockers[0].kind, "holder_process");
    EXPECT_NE(plan.blockers[0].text.find("pid 4242 (nvidia-persistenced)"), std::string::npos)
        << plan.blockers[0].text;
}

TEST(Bind, BindsVerifiesAndGivesBackExactly) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    k.unload_vfio();
    auto plan = plan_for(k, fixture::k_seed_gpu);
    auto r = vfio::execute_bind(k, plan, quick());
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
    EXPECT_EQ(k.override_of(fixture::k_seed_gpu), "vfio-pci");
    EXPECT_TRUE(k.exists(group_node(k, fixture::k_seed_gpu)));
    auto j = vfio::load_journal(k, "/var/lib/vfioctl");
    ASSERT_TRUE(j.ok());
    ASSERT_EQ(j->entries.size(), 1u);
    EXPECT_EQ(j->entries[0].original_driver, std::optional<std::string>("nvidia"));
    EXPECT_EQ(j->entries[0].phase, "bound");

    // Binding again is a success with nothing to do.
    auto again = vfio::execute_bind(k, plan_for(k, fixture::k_seed_gpu), quick());
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE((*again)[0].changed);

    auto back =
        vfio::give_back(k, {*pci::PciAddress::parse(fixture::k_seed_gpu)}, {}, false, quick());
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_EQ(k.override_of(fixture::k_seed_gpu), "(null)");
    EXPECT_FALSE(k.exists(group_node(k, fixture::k_seed_gpu)));
    EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json"));
}

TEST(Bind, SharedGroupBindsBothAndGivesBothBack) {
    HostTree t = fixture::shared_group_host();
    FakeKernel k(t);
    const std::string other_before = k.driver_of(fixture::k_shared_other);
    auto r = vfio::execute_bind(k, plan_for(k, fixture::k_shared_gpu), quick());
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(k.driver_of(fixture::k_shared_gpu), "vfio-pci");
    EXPECT_EQ(k.driver_of(fixture::k_shared_other), "vfio-pci");
    auto back = vfio::give_back(k, {}, {}, false, quick());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(k.driver_of(fixture::k_shared_other), other_before);
}

TEST(Bind, EbusyOnUnbindRollsBackTheOthers) {
    HostTree t = fixture::shared_group_host();
    FakeKernel k(t);
    const std::string gpu_before = k.driver_of(fixture::k_shared_gpu);
    k.unbind_fails(fixture::k_shared_other, EBUSY);
    auto r = vfio::execute_bind(k, plan_for(k, fixture::k_shared_gpu), quick());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().describe().find("Device or resource busy"), std::string::npos)
        << r.error().describe();
    EXPECT_NE(r.error().hint.find("rolled back"), std::string::npos) << r.error().hint;
    EXPECT_EQ(k.driver_of(fixture::k_shared_gpu), gpu_before);
    EXPECT_EQ(k.override_of(fixture::k_shared_gpu), "(null)");
    EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json"));
}

TEST(Bind, ProbeThatBindsNothingOrTheWrongDriverFailsAndRollsBack) {
    for (std::string wrong : {"", "nouveau"}) {
        HostTree t = fixture::seed_after();
        FakeKernel k(t);
        if (wrong.empty())
            k.probe_binds_nothing(fixture::k_seed_gpu);
        else {
            t.mkdir("/sys/bus/pci/drivers/nouveau");
            k.probe_binds(fixture::k_seed_gpu, wrong);
        }
        auto r = vfio::execute_bind(k, plan_for(k, fixture::k_seed_gpu), quick());
        ASSERT_FALSE(r.ok());
        EXPECT_NE(r.error().message.find(wrong.empty() ? "no driver" : "nouveau"),
                  std::string::npos)
            << r.error().message;
        // Rolling back binds the original driver directly, not by a probe.
        EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
        EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json"));
    }
}

TEST(Bind, DeviceThatDisappearsIsReportedAndDropped) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    k.vanish_on_probe(fixture::k_seed_gpu);
    auto r = vfio::execute_bind(k, plan_for(k, fixture::k_seed_gpu), quick());
    ASSERT_FALSE(r.ok());
    EXPECT_FALSE(k.exists("/sys/bus/pci/devices/" + std::string(fixture::k_seed_gpu)));
    EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json"));
}

TEST(Bind, BlockedUnbindIsBoundedAndRecoverableLater) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    k.unbind_blocks(fixture::k_seed_gpu, 1500);
    auto o = quick();
    o.unbind_timeout_ms = 200;
    auto t0 = std::chrono::steady_clock::now();
    auto r = vfio::execute_bind(k, plan_for(k, fixture::k_seed_gpu), o);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().errnum, ETIMEDOUT);
    EXPECT_LT(took, std::chrono::milliseconds(1400));
    EXPECT_TRUE(k.exists("/var/lib/vfioctl/journal.json")); // kept for recover
    std::this_thread::sleep_for(std::chrono::milliseconds(1600));
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), ""); // the kernel finished the unbind
    auto rec = vfio::recover(k, quick());
    ASSERT_TRUE(rec.ok()) << rec.error().describe();
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_EQ(k.override_of(fixture::k_seed_gpu), "(null)");
}

TEST(Bind, CorruptJournalChangesNothingAndIsKept) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    t.write("/var/lib/vfioctl/journal.json", "{\"format\": 1, \"devices\": [{\"addr");
    auto r = vfio::execute_bind(k, plan_for(k, fixture::k_seed_gpu), quick());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("corrupt"), std::string::npos);
    EXPECT_EQ(t.read("/var/lib/vfioctl/journal.json"), "{\"format\": 1, \"devices\": [{\"addr");
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    auto rec = vfio::recover(k, quick());
    EXPECT_FALSE(rec.ok());
}

TEST(Bind, SecondWriterWaitsBoundedThenFailsClearly) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    ASSERT_TRUE(k.make_dirs("/var/lib/vfioctl").ok());
    auto held = host::FileLock::acquire(k, "/var/lib/vfioctl/lock", 100);
    ASSERT_TRUE(held.ok());
    auto r = vfio::execute_bind(k, plan_for(k, fixture::k_seed_gpu), quick());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("another vfioctl"), std::string::npos);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
}

TEST(Unbind, RefusesWhileAVmHoldsTheGroupUnlessForced) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    ASSERT_TRUE(vfio::execute_bind(k, plan_for(k, fixture::k_seed_gpu), quick()).ok());
    int group = std::stoi(
        *k.link_name(std::string("/sys/bus/pci/devices/") + fixture::k_seed_gpu + "/iommu_group"));
    std::map<int, std::string> busy{{group, "pid 777 (qemu-system-x86)"}};
    auto addr = *pci::PciAddress::parse(fixture::k_seed_gpu);
    auto r = vfio::give_back(k, {addr}, busy, false, quick());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("pid 777 (qemu-system-x86)"), std::string::npos);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
    ASSERT_TRUE(vfio::give_back(k, {addr}, busy, true, quick()).ok());
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
}

// Kills the process at every fault point of bind and of unbind, for every
// device of a two-device group, and checks that recover restores all.
TEST(CrashSafety, RecoverRestoresAfterAKillAtEveryStep) {
    const std::vector<std::string> bind_points = {"bind.journaled", "bind.override", "bind.unbound",
                                                  "bind.probed", "bind.done"};
    const std::vector<std::string> restore_points = {"restore.journaled", "restore.override",
                                                     "restore.unbound", "restore.bound",
                                                     "restore.done"};
    int covered = 0;
    for (bool during_unbind : {false, true}) {
        for (const auto& point : during_unbind ? restore_points : bind_points) {
            for (int nth : {1, 2}) {
                HostTree t = fixture::shared_group_host();
                FakeKernel k(t);
                const std::string gpu0 = k.driver_of(fixture::k_shared_gpu);
                const std::string other0 = k.driver_of(fixture::k_shared_other);
                if (during_unbind) {
                    ASSERT_TRUE(
                        vfio::execute_bind(k, plan_for(k, fixture::k_shared_gpu), quick()).ok());
                }
                auto plan = plan_for(k, fixture::k_shared_gpu);
                pid_t pid = fork();
                ASSERT_GE(pid, 0);
                if (pid == 0) {
                    util::arm_fault_point(point, nth);
                    if (during_unbind) {
                        (void)vfio::give_back(k, {}, {}, false, quick());
                    } else {
                        (void)vfio::execute_bind(k, plan, quick());
                    }
                    _exit(0);
                }
                int st = 0;
                waitpid(pid, &st, 0);
                ASSERT_TRUE(WIFEXITED(st));
                EXPECT_EQ(WEXITSTATUS(st), 86) << point << " #" << nth << " was never reached";
                auto rec = vfio::recover(k, quick());
                ASSERT_TRUE(rec.ok()) << point << ": " << rec.error().describe();
                EXPECT_EQ(k.driver_of(fixture::k_shared_gpu), gpu0) << point << " #" << nth;
                EXPECT_EQ(k.driver_of(fixture::k_shared_other), other0) << point << " #" << nth;
                EXPECT_EQ(k.override_of(fixture::k_shared_gpu), "(null)") << point;
                EXPECT_EQ(k.override_of(fixture::k_shared_other), "(null)") << point;
                EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json")) << point;
                ++covered;
            }
        }
    }
    EXPECT_EQ(covered, 20);
    std::cout << "[ crash ] kill points covered: " << covered << "\n";
}

// Two binds of one device at once: the second planned while the device was
// still on nvidia and ran after the first had bound it. It replaced the
// first one's journal entry with one whose original driver was vfio-pci,
// so unbind could never give the device back to nvidia.
TEST(Bind, SecondOfTwoBindsKeepsTheFirstOnesOriginalDriver) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    const std::string gpu = fixture::k_seed_gpu;
    auto first = plan_for(k, gpu);
    auto second = plan_for(k, gpu); // made before the first one runs
    ASSERT_TRUE(vfio::execute_bind(k, first, quick()).ok());
    ASSERT_EQ(k.driver_of(gpu), "vfio-pci");
    auto again = vfio::execute_bind(k, second, quick());
    ASSERT_TRUE(again.ok()) << again.error().describe();
    EXPECT_EQ(k.driver_of(gpu), "vfio-pci");
    auto j = vfio::load_journal(k, "/var/lib/vfioctl");
    ASSERT_TRUE(j.ok());
    ASSERT_EQ(j->entries.size(), 1u);
    EXPECT_EQ(j->entries[0].original_driver, std::optional<std::string>("nvidia"));
    auto back = vfio::give_back(k, {*pci::PciAddress::parse(gpu)}, {}, false, quick());
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(k.driver_of(gpu), "nvidia");
}

// A bind killed after the unbind left the device on no driver and its
// entry (original: nvidia). A new bind before recover recorded "no driver"
// as the original; it now keeps the entry's, and unbind gives nvidia back.
TEST(Bind, BindAfterAKilledBindKeepsTheOriginalDriver) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    const std::string gpu = fixture::k_seed_gpu;
    vfio::Journal j;
    j.entries.push_back({gpu, 165, std::string("nvidia"), std::nullopt, "binding", "", {}});
    ASSERT_TRUE(vfio::save_journal(k, "/var/lib/vfioctl", j).ok());
    ASSERT_TRUE(k.write("/sys/bus/pci/drivers/nvidia/unbind", gpu).ok());
    ASSERT_EQ(k.driver_of(gpu), "");
    ASSERT_TRUE(vfio::execute_bind(k, plan_for(k, gpu), quick()).ok());
    EXPECT_EQ(k.driver_of(gpu), "vfio-pci");
    auto after = vfio::load_journal(k, "/var/lib/vfioctl");
    ASSERT_TRUE(after.ok());
    ASSERT_EQ(after->entries.size(), 1u);
    EXPECT_EQ(after->entries[0].original_driver, std::optional<std::string>("nvidia"));
    ASSERT_TRUE(vfio::give_back(k, {*pci::PciAddress::parse(gpu)}, {}, false, quick()).ok());
    EXPECT_EQ(k.driver_of(gpu), "nvidia");
}
