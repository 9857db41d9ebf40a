// Issue #11: safety decisions are typed; a fact that cannot be read refuses
// (unknown root, unknown route, unreadable IOMMU groups); --root contains
// every read and write. Each test checks the exact outcome: exit code, kind
// in --json output, and that a sentinel directory beside the fixture root is
// byte-for-byte unchanged.

#include "fake_kernel.hpp"
#include "host/system.hpp"
#include "iommu/diagnosis.hpp"
#include "iommu/groups.hpp"
#include "sentinel.hpp"
#include "support.hpp"
#include "util/strings.hpp"
#include "vfio/bind.hpp"
#include "vfio/journal.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <set>
#include <sstream>

using namespace vfioctl;
using fake::FakeKernel;
using fixture::HostTree;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& data) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << data;
}

using test::Sentinel;

// The fixture's mountinfo with the line for "/" replaced by lines (empty:
// removed).
void replace_root_line(HostTree& t, const std::string& lines) {
    std::string out;
    bool replaced = false;
    for (const auto& line : util::split(t.read("/proc/self/mountinfo"), '\n')) {
        if (line.empty()) continue;
        auto f = util::split_ws(line);
        if (f.size() > 4 && f[4] == "/") {
            out += lines;
            replaced = true;
        } else {
            out += line + "\n";
        }
    }
    ASSERT_TRUE(replaced) << "the fixture has no root line";
    t.write("/proc/self/mountinfo", out);
}

// The objects of a bind --json array ("refused", "blocked") for address.
std::vector<std::string> kinds_for(const nlohmann::json& arr, const std::string& address) {
    std::vector<std::string> out;
    if (!arr.is_array()) return out;
    for (const auto& o : arr)
        if (o.value("address", "") == address) out.push_back(o.value("kind", ""));
    return out;
}

std::string text_for(const nlohmann::json& arr, const std::string& address) {
    if (!arr.is_array()) return {};
    for (const auto& o : arr)
        if (o.value("address", "") == address) return o.value("text", "");
    return {};
}

// bind --json --force ADDR on t: refused as unknown_root, nothing changed.
void expect_root_unknown_refused(const HostTree& t, const std::string& what) {
    SCOPED_TRACE(what);
    Sentinel s(t);
    const std::string before =
        t.read("/sys/bus/pci/devices/" + std::string(fixture::k_root_nvme) + "/driver_override");
    auto o = test::run_on(t, {"--json", "bind", "--force", fixture::k_root_nvme});
    EXPECT_EQ(o.exit_code, 1) << o.err;
    auto j = test::json_of(o);
    EXPECT_EQ(kinds_for(j["refused"], fixture::k_root_nvme),
              std::vector<std::string>{"unknown_root"})
        << o.out;
    EXPECT_EQ(j["changed"], false);
    const std::string text = text_for(j["refused"], fixture::k_root_nvme);
    EXPECT_NE(text.find("findmnt /"), std::string::npos) << text;
    EXPECT_NE(text.find("not even with --force"), std::string::npos) << text;
    EXPECT_EQ(
        t.read("/sys/bus/pci/devices/" + std::string(fixture::k_root_nvme) + "/driver_override"),
        before);
    EXPECT_FALSE(fs::exists(t.path("/var/lib/vfioctl/journal.json")));
    EXPECT_EQ(s.snapshot(), s.before);
}

} // namespace

// Item 1: the root disk's refusal and the route's blocker carry their kinds
// in --json, next to the texts that scripts already read.
TEST(SafetyKinds, BindJsonCarriesTypedKinds) {
    HostTree t = fixture::seed_after();
    auto root = test::run_on(t, {"--json", "bind", "--force", "--dry-run", fixture::k_root_nvme});
    EXPECT_EQ(root.exit_code, 1);
    auto j = test::json_of(root);
    EXPECT_EQ(kinds_for(j["refused"], fixture::k_root_nvme),
              std::vector<std::string>{"root_filesystem"});
    EXPECT_TRUE(test::any_contains(j["refusals"], "root filesystem (/dev/nvme0n1p2)")) << root.out;
    auto nic = test::run_on(t, {"--json", "bind", "--dry-run", fixture::k_host_nic});
    EXPECT_EQ(nic.exit_code, 1);
    auto jn = test::json_of(nic);
    auto kinds = kinds_for(jn["blocked"], fixture::k_host_nic);
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), "default_route"), kinds.end()) << nic.out;
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), "interface_up_with_address"), kinds.end())
        << nic.out;
    EXPECT_TRUE(kinds_for(jn["refused"], fixture::k_host_nic).empty());
    // The default route is overridable: --force passes the plan.
    EXPECT_EQ(
        test::run_on(t, {"--json", "bind", "--force", "--dry-run", fixture::k_host_nic}).exit_code,
        0);
}

// The decision follows the kind, not the words: a root_filesystem use whose
// text says nothing of a root filesystem is still refused, and a
// default_route whose detail mentions one is still only a blocker.
TEST(SafetyKinds, DecisionSwitchesOnKindNotText) {
    HostTree t = fixture::seed_after();
    host::Host h(t.root());
    auto inv = pci::enumerate(h);
    ASSERT_TRUE(inv.ok());
    host::SystemFacts f = host::read_system(h, true);
    f.critical.clear();
    const auto nvme = *pci::PciAddress::parse(fixture::k_root_nvme);
    const auto nic = *pci::PciAddress::parse(fixture::k_host_nic);
    f.critical.push_back({nvme, host::CriticalKind::root_filesystem, "zpool rpool"});
    f.critical.push_back({nic, host::CriticalKind::default_route, "root filesystem (pretend)"});
    std::vector<std::string> w;
    auto groups = iommu::read_groups(h, *inv, w);
    auto p1 = vfio::plan_bind({inv->find(nvme)}, *inv, f, groups);
    ASSERT_EQ(p1.refusals.size(), 1u);
    EXPECT_EQ(p1.refusals[0].kind, "root_filesystem");
    auto p2 = vfio::plan_bind({inv->find(nic)}, *inv, f, groups);
    EXPECT_TRUE(p2.refusals.empty());
    ASSERT_FALSE(p2.blockers.empty());
    EXPECT_EQ(p2.blockers[0].kind, "default_route");
}

// Item 2, root: every way of not knowing where / lives refuses the storage
// controllers, --force included.
TEST(SafetyUnknownRoot, MissingMountinfo) {
    HostTree t = fixture::seed_after();
    t.remove("/proc/self/mountinfo");
    expect_root_unknown_refused(t, "missing");
}

TEST(SafetyUnknownRoot, EmptyMountinfo) {
    HostTree t = fixture::seed_after();
    t.write("/proc/self/mountinfo", "");
    expect_root_unknown_refused(t, "empty");
}

TEST(SafetyUnknownRoot, GarbageMountinfo) {
    HostTree t = fixture::seed_after();
    t.write("/proc/self/mountinfo", "this is not\x01 a mount table\n\n42\n");
    expect_root_unknown_refused(t, "garbage");
}

TEST(SafetyUnknownRoot, UnreadableMountinfo) {
    HostTree t = fixture::seed_after();
    t.remove("/proc/self/mountinfo");
    t.mkdir("/proc/self/mountinfo"); // exists, read(2) fails with EISDIR
    expect_root_unknown_refused(t, "unreadable");
}

TEST(SafetyUnknownRoot, OnlyTheRootLineMalformed) {
    HostTree t = fixture::seed_after();
    // The optional-fields separator is gone: the line cannot be parsed.
    replace_root_line(t, "26 1 259:2 / / rw,relatime shared:1 ext4 /dev/nvme0n1p2 rw\n");
    expect_root_unknown_refused(t, "malformed root line");
}

TEST(SafetyUnknownRoot, OverlayWithUntraceableLayers) {
    HostTree t = fixture::seed_after();
    // A container's root: overlay layers that are not mounts in this view.
    replace_root_line(
        t, "26 1 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/l1:/var/lib/l2,"
           "upperdir=/var/lib/u,workdir=/var/lib/w\n");
    expect_root_unknown_refused(t, "overlay");
}

// The only unknown-root devices are storage controllers: a GPU still binds,
// and status says why the root is unknown.
TEST(SafetyUnknownRoot, OnlyStorageControllersAreAffected) {
    HostTree t = fixture::seed_after();
    t.remove("/proc/self/mountinfo");
    host::Host h(t.root());
    auto f = host::read_system(h, true);
    ASSERT_TRUE(f.root_unknown.has_value());
    EXPECT_NE(f.root_unknown->find("/proc/self/mountinfo"), std::string::npos) << *f.root_unknown;
    std::vector<std::string> unknown;
    for (const auto& c : f.critical)
        if (c.kind == host::CriticalKind::unknown_root) unknown.push_back(c.addr.str());
    std::vector<std::string> storage; // class 01xx in the fixture's own specs
    for (const auto& a : t.addresses())
        if ((t.spec(a).class_code >> 16) == 0x01) storage.push_back(a);
    ASSERT_GE(storage.size(), 2u) << "the seed host has the root NVMe and a SATA controller";
    EXPECT_EQ(unknown, storage);
    auto o = test::run_on(t, {"--json", "bind", "--dry-run", fixture::k_seed_gpu});
    EXPECT_EQ(o.exit_code, 0) << o.out << o.err;
}

// A guest's root on virtio-9p (class 0002, not storage) or on a virtio
// block disk: with mountinfo gone, the devices behind every virtio
// filesystem tag and every block device are refused too, --force included.
// (L1 of the e2e harness is such a host: its root is an overlay over 9p.)
TEST(SafetyUnknownRoot, VirtioFilesystemsAndBlockDevicesToo) {
    HostTree t = fixture::seed_after();
    Sentinel sentinel(t);
    const std::string p9 = "0000:00:04.0", blk = "0000:00:05.0";
    fixture::DeviceSpec d;
    d.addr = p9;
    d.vendor = 0x1af4;
    d.device = 0x1009;
    d.class_code = 0x000200; // what QEMU gives virtio-9p-pci: not storage
    d.driver = "virtio-pci";
    const std::string dir = t.add_device(d);
    t.write(dir + "/virtio7/device", "0x0009\n");
    t.write(dir + "/virtio7/mount_tag", std::string("hostroot\0", 9));
    t.symlink("/sys/bus/virtio/devices/virtio7",
              HostTree::relative_link("/sys/bus/virtio/devices/virtio7", dir + "/virtio7"));
    d.addr = blk;
    d.device = 0x1001;
    d.class_code = 0x000000; // a legacy virtio block device as some hosts report it
    t.add_device(d);
    t.add_virtio_disk(blk, 8, "vdb");
    t.remove("/proc/self/mountinfo");

    host::Host h(t.root());
    auto f = host::read_system(h, true);
    std::set<std::string> unknown;
    for (const auto& c : f.critical)
        if (c.kind == host::CriticalKind::unknown_root) unknown.insert(c.addr.str());
    EXPECT_TRUE(unknown.count(p9)) << "the virtio-9p device may hold /";
    EXPECT_TRUE(unknown.count(blk)) << "the virtio block device may hold /";
    EXPECT_TRUE(unknown.count(fixture::k_root_nvme));
    for (const std::string& a : {p9, blk}) {
        const std::string override_file = "/sys/bus/pci/devices/" + a + "/driver_override";
        const std::string before = t.read(override_file);
        auto o = test::run_on(t, {"--json", "bind", "--force", a});
        EXPECT_EQ(o.exit_code, 1) << a << ": " << o.out << o.err;
        auto j = test::json_of(o);
        EXPECT_EQ(j["changed"], false) << o.out;
        EXPECT_EQ(kinds_for(j["refused"], a), std::vector<std::string>{"unknown_root"}) << o.out;
        EXPECT_EQ(t.read(override_file), before);
    }
    EXPECT_EQ(sentinel.snapshot(), sentinel.before);
}

// Kept: an overlay whose lower layer is a traced mount names that device as
// the root filesystem (not unknown).
TEST(SafetyUnknownRoot, OverlayOnATracedLayerNamesTheDevice) {
    HostTree t = fixture::seed_after();
    replace_root_line(t,
                      "26 1 259:2 / /media/base rw,relatime - ext4 /dev/nvme0n1p2 rw\n"
                      "40 1 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/media/base/lower,"
                      "upperdir=/media/base/upper,workdir=/media/base/work\n");
    host::Host h(t.root());
    auto f = host::read_system(h, true);
    EXPECT_FALSE(f.root_unknown.has_value()) << f.root_unknown.value_or("");
    std::vector<std::string> kinds;
    for (const auto& c : f.critical)
        if (c.addr.str() == fixture::k_root_nvme) kinds.push_back(host::critical_kind_id(c.kind));
    EXPECT_EQ(kinds, std::vector<std::string>{"root_filesystem"});
    auto o = test::run_on(t, {"--json", "bind", "--force", "--dry-run", fixture::k_root_nvme});
    EXPECT_EQ(o.exit_code, 1);
    EXPECT_EQ(kinds_for(test::json_of(o)["refused"], fixture::k_root_nvme),
              std::vector<std::string>{"root_filesystem"});
}

// Item 2, route: an unreadable routing table makes every network controller
// unknown_route: blocked, and --force overrides it.
TEST(SafetyUnknownRoute, GarbageUnreadableOrMissingRouteTable) {
    const std::string eno2 = "0000:02:00.1"; // carries no default route when the table is readable
    for (const std::string how : {"no header", "bad line", "unreadable", "missing"}) {
        SCOPED_TRACE(how);
        HostTree t = fixture::seed_after();
        if (how == "no header") t.write("/proc/net/route", "\x7f\x45\x4c\x46 garbage\n");
        if (how == "bad line")
            t.write("/proc/net/route", t.read("/proc/net/route") + "eno2\tnot a route at all\n");
        if (how == "unreadable") {
            t.remove("/proc/net/route");
            t.mkdir("/proc/net/route");
        }
        if (how == "missing") t.remove("/proc/net/route");
        Sentinel s(t);
        auto o = test::run_on(t, {"--json", "bind", "--dry-run", eno2});
        EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
        auto j = test::json_of(o);
        EXPECT_EQ(kinds_for(j["blocked"], eno2), std::vector<std::string>{"unknown_route"})
            << o.out;
        EXPECT_TRUE(kinds_for(j["refused"], eno2).empty());
        EXPECT_NE(text_for(j["blocked"], eno2).find("ip route show default"), std::string::npos);
        auto forced = test::run_on(t, {"--json", "bind", "--force", "--dry-run", eno2});
        EXPECT_EQ(forced.exit_code, 0) << forced.out << forced.err;
        EXPECT_EQ(s.snapshot(), s.before);
    }
    // A readable table with no default route is known: eno2 is free.
    HostTree ok = fixture::seed_after();
    EXPECT_EQ(test::run_on(ok, {"--json", "bind", "--dry-run", eno2}).exit_code, 0);
}

// A zero-byte /proc/net/route is what a real kernel prints when it has no
// IPv4 main table at all (tests/fixtures/recorded/iommu-on recorded one):
// no IPv4 default route, known. eno2 binds; eno1 keeps its IPv6 default
// route from /proc/net/ipv6_route when there is one, or is free otherwise.
TEST(SafetyUnknownRoute, EmptyRouteTableMeansNoIpv4Routes) {
    HostTree t = fixture::seed_after();
    t.write("/proc/net/route", "");
    host::Host h(t.root());
    auto f = host::read_system(h, true);
    EXPECT_FALSE(f.route_unknown.has_value()) << f.route_unknown.value_or("");
    for (const auto& c : f.critical)
        EXPECT_NE(c.kind, host::CriticalKind::unknown_route) << c.reason();
    auto o = test::run_on(t, {"--json", "bind", "--dry-run", "0000:02:00.1"});
    EXPECT_EQ(o.exit_code, 0) << o.out << o.err;
}

// Item 2, groups: the critical group host's GPU shares its group with the
// root disk (WILL NOT WORK). Unreadable groups must not make it WILL WORK:
// the verdict is unknown, exit 3, and bind refuses.
TEST(SafetyUnknownGroups, UnlistableGroupsDirectoryMakesTheVerdictUnknown) {
    HostTree t = fixture::critical_group_host();
    auto base = test::run_on(t, {"--json", "status"});
    EXPECT_EQ(base.exit_code, 3);
    EXPECT_EQ(test::json_of(base)["verdict"], "will_not_work");
    t.remove("/sys/kernel/iommu_groups");
    t.write("/sys/kernel/iommu_groups", "not a directory\n"); // exists, cannot be listed
    auto o = test::run_on(t, {"--json", "status"});
    EXPECT_EQ(o.exit_code, 3) << o.err;
    auto j = test::json_of(o);
    EXPECT_EQ(j["verdict"], "unknown") << o.out;
    bool found = false;
    for (const auto& g : j["gpus"])
        if (g["address"] == fixture::k_critical_gpu) {
            found = true;
            EXPECT_EQ(g["verdict"], "unknown");
        }
    EXPECT_TRUE(found);
    auto b = test::run_on(t, {"--json", "bind", "--force", "--dry-run", fixture::k_critical_gpu});
    EXPECT_EQ(b.exit_code, 1);
    EXPECT_EQ(kinds_for(test::json_of(b)["refused"], fixture::k_critical_gpu),
              std::vector<std::string>{"unknown_group"});
}

TEST(SafetyUnknownGroups, UnreadableIommuGroupLinkMakesTheVerdictUnknown) {
    for (bool listed : {true, false}) {
        SCOPED_TRACE(listed ? "the group still lists the disk"
                            : "the group does not list the disk");
        HostTree t = fixture::critical_group_host();
        // The root disk's link is no link. While its group lists it, the disk
        // stays a member (WILL NOT WORK); where nothing shows it in the group,
        // membership is unknown.
        const std::string link =
            "/sys/bus/pci/devices/" + std::string(fixture::k_critical_nvme) + "/iommu_group";
        t.remove(link);
        t.write(link, "42\n");
        if (!listed)
            t.remove("/sys/kernel/iommu_groups/" +
                     std::to_string(*t.group_of(fixture::k_critical_nvme)) + "/devices/" +
                     fixture::k_critical_nvme);
        auto o = test::run_on(t, {"--json", "status"});
        EXPECT_EQ(o.exit_code, 3) << o.err;
        auto j = test::json_of(o);
        EXPECT_EQ(j["verdict"], listed ? "will_not_work" : "unknown") << o.out;
        EXPECT_NE(j["verdict"], "will_work");
    }
}

// The group listings and the devices' own links are two views of one
// membership. Where they disagree (the root disk listed in the GPU's group
// but its link missing, or naming a group that does not exist), the root
// disk must not drop out of the GPU's group: it stays a member (WILL NOT
// WORK), membership is flagged unknown and bind refuses, --force
// included. 'groups' shows the disk once.
TEST(SafetyUnknownGroups, ListingAndLinksThatDisagreeMakeTheVerdictUnknown) {
    const std::string link =
        "/sys/bus/pci/devices/" + std::string(fixture::k_critical_nvme) + "/iommu_group";
    for (const std::string how : {"link missing", "link to a group that does not exist"}) {
        SCOPED_TRACE(how);
        HostTree t = fixture::critical_group_host();
        if (how == "link missing")
            t.remove(link);
        else
            t.symlink(link, "../../../../kernel/iommu_groups/4242");
        auto o = test::run_on(t, {"--json", "status"});
        EXPECT_EQ(o.exit_code, 3) << o.err;
        auto j = test::json_of(o);
        EXPECT_EQ(j["verdict"], "will_not_work") << o.out;
        for (const auto& g : j["gpus"]) {
            EXPECT_EQ(g["verdict"], "will_not_work") << g.dump();
            EXPECT_TRUE(test::any_contains(g["group_members"], fixture::k_critical_nvme))
                << g.dump();
        }
        EXPECT_NE(o.err.find("IOMMU group membership is unknown"), std::string::npos) << o.err;
        auto b =
            test::run_on(t, {"--json", "bind", "--force", "--dry-run", fixture::k_critical_gpu});
        EXPECT_EQ(b.exit_code, 1);
        EXPECT_EQ(kinds_for(test::json_of(b)["refused"], fixture::k_critical_gpu),
                  std::vector<std::string>{"unknown_group"})
            << b.out;
        auto g = test::run_on(t, {"--json", "groups", "--all"});
        EXPECT_EQ(g.exit_code, 0);
        EXPECT_EQ(test::vfioctl_devices(test::json_of(g)).count(fixture::k_critical_nvme),
                  1u); // once, not twice
    }
    // The views of the unchanged host agree.
    HostTree ok = fixture::critical_group_host();
    host::Host h(ok.root());
    EXPECT_FALSE(host::read_system(h, true).groups_unreadable.has_value());
}

// Item 3: an absolute symlink inside the tree resolves inside the root, so
// bind's driver_override write never reaches the file it names outside.
TEST(SafetyRoot, AbsoluteLinkedDriverOverrideStaysInsideTheRoot) {
    for (bool openat2 : {true, false}) {
        SCOPED_TRACE(openat2 ? "openat2" : "component walk");
        host::use_openat2(openat2);
        HostTree t = fixture::seed_after();
        Sentinel s(t);
        const std::string ov =
            "/sys/bus/pci/devices/" + std::string(fixture::k_seed_gpu) + "/driver_override";
        t.remove(ov);
        t.symlink(ov, (s.dir / "x" / "driver_override").string());
        FakeKernel k(t);
        auto inv = pci::enumerate(k);
        ASSERT_TRUE(inv.ok());
        auto facts = host::read_system(k, true);
        std::vector<std::string> w;
        auto groups = iommu::read_groups(k, *inv, w);
        auto plan = vfio::plan_bind({inv->find(*pci::PciAddress::parse(fixture::k_seed_gpu))}, *inv,
                                    facts, groups);
        vfio::ChangeOptions opt;
        opt.lock_timeout_ms = 200;
        opt.node_timeout_ms = 200;
        auto r = vfio::execute_bind(k, plan, opt);
        EXPECT_FALSE(r.ok());
        EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
        EXPECT_EQ(s.snapshot(), s.before);
        // Through the program (plain writes) as well.
        auto o = test::run_on(t, {"--json", "bind", fixture::k_seed_gpu});
        EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
        EXPECT_EQ(s.snapshot(), s.before);
    }
    host::use_openat2(true);
}

// Reads resolve inside the root too: an absolute link names the root's file
// of that path, and ".." stops at the root.
TEST(SafetyRoot, ReadsResolveLinksInsideTheRoot) {
    for (bool openat2 : {true, false}) {
        SCOPED_TRACE(openat2 ? "openat2" : "component walk");
        host::use_openat2(openat2);
        HostTree t = fixture::seed_after();
        Sentinel s(t);
        const std::string outside = (s.dir / "secret").string();
        t.write(outside, "inside\n"); // the same path, inside the root
        t.symlink("/etc/abs", outside);
        t.symlink("/etc/up", "../../../../../../../" + s.name() + "/secret");
        host::Host h(t.root());
        EXPECT_EQ(h.read("/etc/abs").value_or("?"), "inside\n");
        EXPECT_EQ(h.resolve("/etc/abs").value_or("?"), outside);
        EXPECT_FALSE(h.read("/etc/up").ok()) << "'..' must stop at the root";
        EXPECT_FALSE(h.read("/../" + s.name() + "/secret").ok());
        auto dir = h.open_dir("/etc");
        ASSERT_TRUE(dir.ok());
        EXPECT_EQ(dir->attr("abs").value_or("?"), "inside");
        EXPECT_TRUE(h.is_link("/etc/abs"));
        // State files through a linked directory land inside the root.
        t.symlink("/var/lib/vfioctl", s.dir.string());
        EXPECT_TRUE(h.make_dirs("/var/lib/vfioctl/sub").ok());
        EXPECT_TRUE(h.write_atomic("/var/lib/vfioctl/state.json", "{}\n").ok());
        EXPECT_TRUE(fs::exists(t.root() / fs::path(s.dir).relative_path() / "state.json"));
        EXPECT_TRUE(h.remove("/var/lib/vfioctl/state.json").ok());
        EXPECT_FALSE(h.make_dirs("/../" + s.name() + "/made").ok());
        EXPECT_EQ(s.snapshot(), s.before);
    }
    host::use_openat2(true);
}

// A journal entry whose address is a path ("../..") is an Error that names
// the journal and the entry; recover writes nothing.
TEST(SafetyRoot, JournalAddressMustBeAPciAddress) {
    HostTree t = fixture::seed_after();
    Sentinel s(t);
    const std::string evil = "../../../../../" + s.name() + "/x";
    t.write("/var/lib/vfioctl/journal.json", nlohmann::json{{"format", 1},
                                                            {"devices",
                                                             {{{"address", evil},
                                                               {"group", 1},
                                                               {"original_driver", "nvme"},
                                                               {"original_override", nullptr},
                                                               {"phase", "bound"},
                                                               {"since", ""}}}}}
                                                 .dump());
    auto o = test::run_on(t, {"--json", "recover"});
    EXPECT_EQ(o.exit_code, 1);
    auto j = test::json_of(o);
    const std::string err = j.value("error", "");
    EXPECT_NE(err.find("journal entry 0"), std::string::npos) << err;
    EXPECT_NE(err.find(evil), std::string::npos) << err;
    EXPECT_NE(err.find("journal.json"), std::string::npos) << err;
    EXPECT_EQ(s.snapshot(), s.before);
    host::Host h(t.root());
    auto loaded = vfio::load_journal(h, "/var/lib/vfioctl");
    EXPECT_FALSE(loaded.ok());
}

// The original driver's name becomes drivers/NAME/bind and a module name:
// one with '/', '..' or an escape sequence makes the journal corrupt (kept,
// nothing written). Wrong types are named by entry and key, in words.
TEST(SafetyRoot, JournalDriverMustBeADriverNameAndTypesAreNamed) {
    const std::string gpu = fixture::k_seed_gpu;
    auto journal = [&](const nlohmann::json& driver, const nlohmann::json& group) {
        return nlohmann::json{{"format", 1},
                              {"devices",
                               {{{"address", gpu},
                                 {"group", group},
                                 {"original_driver", driver},
                                 {"original_override", nullptr},
                                 {"phase", "bound"},
                                 {"since", ""}}}}}
            .dump();
    };
    struct C {
        nlohmann::json driver, group;
        std::string says;
    };
    for (const C& c : std::vector<C>{
             {"../../../../x", 165,
              "devices[0].original_driver '../../../../x' is not a driver's name"},
             {"nv\x1b]0;t\x07", 165, "is not a driver's name"},
             {"nvidia", "165", "devices[0].group is a string, not a group number"},
             {42, 165, "devices[0].original_driver is a number, not a string or null"}}) {
        SCOPED_TRACE(c.says);
        HostTree t = fixture::seed_after();
        const std::string text = journal(c.driver, c.group);
        t.write("/var/lib/vfioctl/journal.json", text);
        auto o = test::run_on(t, {"recover"});
        EXPECT_EQ(o.exit_code, 1);
        EXPECT_NE(o.err.find(c.says), std::string::npos) << o.err;
        EXPECT_EQ(o.err.find("type_error"), std::string::npos) << o.err;
        EXPECT_EQ(t.read("/var/lib/vfioctl/journal.json"), text);
        EXPECT_EQ(t.read("/sys/bus/pci/devices/" + gpu + "/driver_override"), "(null)\n");
    }
}

// Entries of devices that are gone are dropped in one save: thousands of
// them took a save of the whole journal each (over a minute for 10000).
TEST(SafetyRoot, RecoverDropsGoneDevicesInOneSave) {
    HostTree t = fixture::seed_after();
    nlohmann::json devs = nlohmann::json::array();
    for (int i = 0; i < 10000; ++i) {
        char a[16];
        std::snprintf(a, sizeof a, "%04x:ee:%02x.%x", i / 256, (i / 8) % 32, i % 8);
        devs.push_back({{"address", a},
                        {"group", 1},
                        {"original_driver", "nvme"},
                        {"original_override", nullptr},
                        {"phase", "bound"},
                        {"since", ""}});
    }
    t.write("/var/lib/vfioctl/journal.json",
            nlohmann::json{{"format", 1}, {"devices", devs}}.dump());
    const auto t0 = std::chrono::steady_clock::now();
    auto o = test::run_on(t, {"--json", "recover"});
    const auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(o.exit_code, 0) << o.err;
    EXPECT_LT(s, 30.0); // under a minute was over one before; ASan builds are slower
    EXPECT_EQ(test::json_of(o)["changes"].size(), 10000u);
    EXPECT_FALSE(fs::exists(t.path("/var/lib/vfioctl/journal.json")));
}

// --state-dir must be absolute without "..": anything else is a usage error
// and nothing is made anywhere.
TEST(SafetyRoot, StateDirOutsideTheRootIsAUsageError) {
    HostTree t = fixture::seed_after();
    Sentinel s(t);
    for (const std::string& dir : std::vector<std::string>{
             "../../..", "/../" + s.name(), "var/lib/vfioctl", "/var/../../" + s.name()}) {
        SCOPED_TRACE(dir);
        for (const char* cmd : {"recover", "unbind"}) {
            std::vector<std::string> args = {cmd, "--state-dir", dir};
            if (std::string(cmd) == "unbind") args.push_back("--all");
            auto o = test::run_on(t, args);
            EXPECT_EQ(o.exit_code, 2) << o.err;
            EXPECT_NE(o.err.find("--state-dir"), std::string::npos) << o.err;
        }
    }
    EXPECT_FALSE(fs::exists(t.path("/var/lib/vfioctl/lock")));
    EXPECT_EQ(s.snapshot(), s.before);
    // An absolute state dir still works.
    EXPECT_EQ(test::run_on(t, {"recover", "--state-dir", "/var/lib/vfioctl-test"}).exit_code, 0);
    EXPECT_TRUE(fs::exists(t.path("/var/lib/vfioctl-test/lock")));
}

// --root "" is not the live host, and a directory that is no host tree is
// refused before anything runs.
TEST(SafetyRoot, EmptyOrNonHostRootIsAUsageError) {
    auto empty = test::run_vfioctl({"--root", "", "--json", "groups"});
    EXPECT_EQ(empty.exit_code, 2);
    EXPECT_NE(empty.err.find("--root is empty"), std::string::npos) << empty.err;
    fixture::TempDir d;
    write_file(d.path / "etc" / "hostname", "x\n");
    auto bare = test::run_vfioctl({"--root", d.path.string(), "status"});
    EXPECT_EQ(bare.exit_code, 2);
    EXPECT_NE(bare.err.find("not a host tree"), std::string::npos) << bare.err;
    fs::create_directories(d.path / "sys");
    EXPECT_EQ(test::run_vfioctl({"--root", d.path.string(), "status"}).exit_code, 2)
        << "proc/ missing";
}
