// host::read_kvm_state: the one KVM rule that 'status' (read_system) and
// 'vm run' (vm::read_kvm_state) both use, on fixture trees.

#include "fixture/fixture.hpp"
#include "host/system.hpp"
#include "vm/machine.hpp"

#include <gtest/gtest.h>

using namespace vfioctl;

namespace {

// A tree with /dev/kvm (when dev_kvm) and the given /sys/module entries.
fixture::HostTree kvm_tree(bool dev_kvm, std::initializer_list<const char*> modules) {
    fixture::HostTree t;
    t.mkdir("/sys/module");
    if (dev_kvm) t.write("/dev/kvm", "");
    for (const char* m : modules)
        t.mkdir(std::string("/sys/module/") + m);
    return t;
}

// Both readers on one tree: the rule gives them the same answer.
void expect_same(const host::KvmState& a, const host::KvmState& b) {
    EXPECT_EQ(a.present, b.present);
    EXPECT_EQ(a.usable, b.usable);
    EXPECT_EQ(a.backend, b.backend);
    EXPECT_EQ(a.reason, b.reason);
}

TEST(KvmRule, IntelBackendOnARecordedTreeIsUsable) {
    auto t = kvm_tree(true, {"kvm", "kvm_intel"});
    host::Host h(t.root());
    auto k = host::read_kvm_state(h);
    EXPECT_TRUE(k.present);
    EXPECT_TRUE(k.usable);
    EXPECT_EQ(k.backend, "kvm_intel");
    EXPECT_EQ(k.reason, "");
    expect_same(k, vm::read_kvm_state(h));
}

TEST(KvmRule, AmdBackendIsUsable) {
    auto t = kvm_tree(true, {"kvm", "kvm_amd"});
    host::Host h(t.root());
    auto k = host::read_kvm_state(h);
    EXPECT_TRUE(k.usable);
    EXPECT_EQ(k.backend, "kvm_amd");
}

TEST(KvmRule, PvmIsNotUsableEvenWithAnotherBackend) {
    auto t = kvm_tree(true, {"kvm", "kvm_pvm", "kvm_intel"});
    host::Host h(t.root());
    auto k = host::read_kvm_state(h);
    EXPECT_TRUE(k.present);
    EXPECT_FALSE(k.usable);
    EXPECT_EQ(k.backend, "kvm_pvm");
    EXPECT_NE(k.reason.find("PVM"), std::string::npos) << k.reason;
    expect_same(k, vm::read_kvm_state(h));
}

TEST(KvmRule, NoBackendModuleIsNotUsable) {
    auto t = kvm_tree(true, {"kvm"});
    host::Host h(t.root());
    auto k = host::read_kvm_state(h);
    EXPECT_FALSE(k.usable);
    EXPECT_EQ(k.backend, "");
    EXPECT_EQ(k.reason, "/dev/kvm exists but neither kvm_intel nor kvm_amd is loaded");
}

TEST(KvmRule, MissingDevKvmSaysSoAndNamesTheCpuWhenItLacksVirtualization) {
    auto t = kvm_tree(false, {"kvm_intel"});
    host::Host h(t.root());
    auto k = host::read_kvm_state(h);
    EXPECT_FALSE(k.present);
    EXPECT_FALSE(k.usable);
    EXPECT_EQ(k.reason, "/dev/kvm does not exist");
    EXPECT_EQ(host::read_kvm_state(h, false).reason,
              "/dev/kvm does not exist and the CPU shows neither vmx nor svm");
    expect_same(k, vm::read_kvm_state(h));
}

TEST(KvmRule, StatusReadsTheSameAsVmRun) {
    auto t = kvm_tree(true, {"kvm", "kvm_amd"});
    host::Host h(t.root());
    auto facts = host::read_system(h);
    EXPECT_EQ(facts.kvm.present, true);
    EXPECT_EQ(facts.kvm.usable, vm::read_kvm_state(h).usable);
    EXPECT_EQ(facts.kvm.backend, vm::read_kvm_state(h).backend);
}

} // namespace
