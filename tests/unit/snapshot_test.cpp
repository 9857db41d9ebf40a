// host/snapshot.cpp: a snapshot of a fixture host is a host tree that
// '--root' accepts, and vfioctl sees the same host in it as in the original
// (status, groups); what snapshot refuses and what it never copies.

#include "fixture/fixture.hpp"
#include "host/snapshot.hpp"
#include "support.hpp"
#include "util/strings.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace vfioctl;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// vfioctl --root ROOT ARGS..., with its exit code and stdout.
fixture::Outcome run_root(const fs::path& root, std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", root.string()});
    return test::run_vfioctl(args);
}

// Snapshots the tree into a new directory; a test failure when it fails.
fixture::TempDir snapshot_of(const fs::path& root, host::SnapshotStats* stats = nullptr) {
    fixture::TempDir out;
    auto s = host::snapshot(host::Host(root), out.path / "snap");
    EXPECT_TRUE(s.ok()) << s.error().describe();
    if (s.ok() && stats) *stats = *s;
    return out;
}

} // namespace

// status and groups, as text and JSON, are the same on the snapshot as on
// the host it was taken from, for hosts with the IOMMU off and on, AMD, a
// group shared with a host-critical device, a held GPU and a DGX.
TEST(Snapshot, StatusOnTheSnapshotEqualsStatusOnTheOriginal) {
    for (const char* name :
         {"seed_before", "seed_before_held", "seed_after", "amd", "critical_group", "dgx"}) {
        SCOPED_TRACE(name);
        const auto& tree = test::shared_host(name);
        host::SnapshotStats stats;
        auto out = snapshot_of(tree.root(), &stats);
        const fs::path snap = out.path / "snap";
        EXPECT_GT(stats.files, 0u);
        EXPECT_GT(stats.links, 0u);
        EXPECT_TRUE(stats.skipped.empty()) << stats.skipped.front();
        EXPECT_TRUE(fs::is_regular_file(snap / ".vfioctl/snapshot"));
        for (const auto& args : std::vector<std::vector<std::string>>{
                 {"status"}, {"--json", "status"}, {"groups", "--all"}, {"--json", "groups"}}) {
            SCOPED_TRACE(util::join(args, " "));
            const auto& want = test::shared_run(name, args);
            auto got = run_root(snap, args);
            EXPECT_EQ(got.exit_code, want.exit_code) << got.err;
            EXPECT_EQ(got.out, want.out);
            EXPECT_EQ(got.err, want.err);
        }
    }
}

// A VM's DMI strings come along, so a user's snapshot says which hypervisor
// lacks the virtual IOMMU; serial numbers and UUIDs stay behind.
TEST(Snapshot, RecordsWhichHypervisorThisRunsUnder) {
    fixture::HostTree t = fixture::firmware_off_host();
    fixture::CpuSpec cpu;
    cpu.flags = {"fpu", "pae", "x2apic", "hypervisor"};
    t.set_cpu(cpu);
    t.write("/sys/class/dmi/id/sys_vendor", "QEMU\n");
    t.write("/sys/class/dmi/id/product_name", "Standard PC (Q35 + ICH9, 2009)\n");
    t.write("/sys/class/dmi/id/bios_vendor", "SeaBIOS\n");
    t.write("/sys/class/dmi/id/product_uuid", "8c1c1d4c-0000-0000-0000-000000000000\n");
    auto out = snapshot_of(t.root());
    const fs::path snap = out.path / "snap";
    EXPECT_TRUE(fs::exists(snap / "sys/class/dmi/id/sys_vendor"));
    EXPECT_FALSE(fs::exists(snap / "sys/class/dmi/id/product_uuid"));
    auto want = run_root(t.root(), {"--json", "status"});
    auto got = run_root(snap, {"--json", "status"});
    EXPECT_EQ(got.out, want.out);
    json j = json::parse(got.out);
    EXPECT_EQ(j["machine"]["hypervisor"], "qemu_kvm");
    EXPECT_EQ(j["machine"]["dmi_sys_vendor"], "QEMU");
    EXPECT_NE(j["gpus"][0]["causes"].dump().find("virtual machine (QEMU/KVM)"), std::string::npos)
        << j["gpus"][0]["causes"].dump();
}

// A snapshot of a snapshot is the same host again.
TEST(Snapshot, SnapshotOfASnapshotIsTheSameHost) {
    const auto& tree = test::shared_host("seed_after");
    auto first = snapshot_of(tree.root());
    auto second = snapshot_of(first.path / "snap");
    auto a = run_root(first.path / "snap", {"--json", "status"});
    auto b = run_root(second.path / "snap", {"--json", "status"});
    EXPECT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(b.exit_code, a.exit_code) << b.err;
    EXPECT_EQ(b.out, a.out);
}

// The target must be new or empty: nothing is written into a non-empty
// directory, and a file is refused.
TEST(Snapshot, RefusesATargetThatIsNotNewOrEmpty) {
    const auto& tree = test::shared_host("seed_before");
    fixture::TempDir dir;
    std::ofstream(dir.path / "keep") << "mine\n";
    auto s = host::snapshot(host::Host(tree.root()), dir.path);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "snapshot target is not empty");
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 1);
    auto f = host::snapshot(host::Host(tree.root()), dir.path / "keep");
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.error().message, "snapshot target exists and is not a directory");

    fs::create_directory(dir.path / "empty");
    std::vector<std::string> phases;
    auto e = host::snapshot(host::Host(tree.root()), dir.path / "empty",
                            [&](const std::string& p) { phases.push_back(p); });
    ASSERT_TRUE(e.ok()) << e.error().describe();
    EXPECT_FALSE(phases.empty());
    EXPECT_TRUE(fs::exists(dir.path / "empty/.vfioctl/snapshot"));
}

// The boot id is recorded: status --json names the same boot on the
// snapshot, and judges the journal's entries against it the same way.
TEST(Snapshot, RecordsTheBootId) {
    auto tree = fixture::seed_before();
    tree.write("/proc/sys/kernel/random/boot_id", "db17fe4d-2249-4b29-ae05-5bff4d98fa16\n");
    auto out = snapshot_of(tree.root());
    const fs::path snap = out.path / "snap";
    EXPECT_TRUE(fs::is_regular_file(snap / "proc/sys/kernel/random/boot_id"));
    const std::vector<std::string> args{"--json", "status"};
    auto want = run_root(tree.root(), args);
    auto got = run_root(snap, args);
    EXPECT_NE(want.out.find("db17fe4d-2249-4b29-ae05-5bff4d98fa16"), std::string::npos) << want.out;
    EXPECT_EQ(got.out, want.out);
}

// Only what vfioctl reads is copied: a file the reader never looks at in
// the source tree (here a made-up secret under /etc) stays behind.
TEST(Snapshot, CopiesOnlyWhatVfioctlReads) {
    auto tree = fixture::seed_before();
    tree.write("/etc/ssh/ssh_host_ed25519_key", "PRIVATE\n");
    tree.write("/root/.bash_history", "secret\n");
    auto out = snapshot_of(tree.root());
    const fs::path snap = out.path / "snap";
    EXPECT_FALSE(fs::exists(snap / "etc/ssh/ssh_host_ed25519_key"));
    EXPECT_FALSE(fs::exists(snap / "root"));
    EXPECT_TRUE(fs::exists(snap / "proc/cmdline"));
    EXPECT_TRUE(fs::exists(snap / "sys/bus/pci/devices"));
}

// A merged /usr (Debian 12: /lib -> usr/lib) stays merged in the snapshot:
// /lib/modprobe.d and /usr/lib/modprobe.d are one directory there too, so
// that no file seems to mask its own twin, and status says the same. A link
// that leaves /usr is not copied as a link (the snapshot writes through it).
TEST(Snapshot, MergedUsrStaysMerged) {
    fixture::HostTree t = fixture::seed_after();
    t.write("/usr/lib/modprobe.d/aliases.conf", "alias foo bar\n");
    t.symlink("/lib", "usr/lib");
    t.symlink("/sbin", "/usr/sbin"); // absolute: recorded as what it holds
    auto out = snapshot_of(t.root());
    const fs::path snap = out.path / "snap";
    ASSERT_TRUE(fs::is_symlink(snap / "lib"));
    EXPECT_EQ(fs::read_symlink(snap / "lib"), "usr/lib");
    EXPECT_FALSE(fs::is_symlink(snap / "sbin"));
    EXPECT_TRUE(fs::is_regular_file(snap / "usr/lib/modprobe.d/aliases.conf"));
    auto want = run_root(t.root(), {"--json", "status"});
    auto got = run_root(snap, {"--json", "status"});
    EXPECT_EQ(got.exit_code, want.exit_code) << got.err;
    EXPECT_EQ(got.out, want.out);
    EXPECT_NE(want.out.find("\"masked\": []"), std::string::npos) << want.out.substr(0, 400);
}
