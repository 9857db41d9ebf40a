// Persistent bindings (vfio/persist.hpp): reading driverctl's and vfioctl's
// entries, vfio-pci ids on the command line and in modprobe.d, conflicts;
// 'bind --at-boot' on FakeKernel; 'bind/unbind --persistent', status,
// groups and snapshot on fixture hosts.

#include "boot/journal.hpp"
#include "cli_run.hpp"
#include "fake_kernel.hpp"
#include "host/snapshot.hpp"
#include "vfio/journal.hpp"
#include "vfio/persist.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace vfioctl;
using fake::FakeKernel;
using fixture::HostTree;
using nlohmann::json;
using test::contains;
using test::run_cli;
using vfio::Source;

namespace {

const std::string k_gpu_entry = std::string("/etc/vfioctl/bind.d/pci-") + fixture::k_seed_gpu;

// The udev rule, the unit and its enablement, as the package installs them.
void install_hooks(HostTree& t) {
    t.write("/lib/udev/rules.d/61-vfioctl.rules", "ACTION==\"add\"\n");
    t.write("/lib/systemd/system/vfioctl-bind.service", "[Unit]\n");
    t.symlink("/etc/systemd/system/sysinit.target.wants/vfioctl-bind.service",
              "/lib/systemd/system/vfioctl-bind.service");
}

std::vector<std::string> problem_texts(const std::vector<vfio::ConfigProblem>& ps) {
    std::vector<std::string> out;
    for (const auto& p : ps)
        out.push_back(p.where + ": " + p.text);
    return out;
}

pci::PciDevice device(uint16_t vendor, uint16_t dev, uint16_t sv = 0, uint16_t sd = 0,
                      uint16_t cls = 0x0302) {
    pci::PciDevice d;
    d.vendor = vendor;
    d.device = dev;
    d.subsys_vendor = sv;
    d.subsys_device = sd;
    d.class_code = cls;
    return d;
}

struct Persist : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);
};

} // namespace

TEST(PersistParse, IdMatchTakesWhatVfioPciTakes) {
    auto plain = vfio::IdMatch::parse("10de:2336");
    ASSERT_TRUE(plain);
    EXPECT_TRUE(plain->matches(device(0x10de, 0x2336, 0x10de, 0x16c1)));
    EXPECT_FALSE(plain->matches(device(0x10de, 0x2330)));
    EXPECT_EQ(plain->str(), "10de:2336");
    auto sub = vfio::IdMatch::parse("10DE:2336:10de:16c1");
    ASSERT_TRUE(sub);
    EXPECT_TRUE(sub->matches(device(0x10de, 0x2336, 0x10de, 0x16c1)));
    EXPECT_FALSE(sub->matches(device(0x10de, 0x2336, 0x10de, 0x16c2)));
    EXPECT_EQ(sub->str(), "10de:2336:10de:16c1");
    // Every display controller: class 03xxxx under mask ff0000.
    auto cls = vfio::IdMatch::parse("ffffffff:ffffffff:ffffffff:ffffffff:030000:ff0000");
    ASSERT_TRUE(cls);
    EXPECT_TRUE(cls->matches(device(0x1002, 0x744c, 0, 0, 0x0300)));
    EXPECT_FALSE(cls->matches(device(0x8086, 0x10d3, 0, 0, 0x0200)));
    for (const char* bad : {"10de", "10de:", "g0de:2336", "10de:2336:1:2:3:4:5", "123456789:1", ""})
        EXPECT_FALSE(vfio::IdMatch::parse(bad)) << bad;
}

TEST(PersistParse, ModprobeConfReadsIdsSoftdepsCommentsContinuationsAndCrlf) {
    const std::string text = "# a comment: options vfio-pci ids=dead:beef\r\n"
                             "   \r\n"
                             "options vfio_pci ids=10de:2336,10de:22a3 disable_vga=1\r\n"
                             "options vfio-pci \\\r\n"
                             "  ids=\"1002:744c\"\n"
                             "options nvidia NVreg_EnableMSI=1\n"
                             "softdep nvidia pre: vfio-pci post: nvidia-drm\n"
                             "softdep amdgpu pre: vfio_pci\n"
                             "softdep snd_hda_intel post: vfio-pci\n"
                             "blacklist nouveau\n";
    auto c = vfio::parse_modprobe_conf(text, "/etc/modprobe.d/vfio.conf");
    EXPECT_TRUE(c.problems.empty()) << testing::PrintToString(problem_texts(c.problems));
    ASSERT_EQ(c.claims.size(), 3u);
    EXPECT_EQ(c.claims[0].ids->str(), "10de:2336");
    EXPECT_EQ(c.claims[0].where, "/etc/modprobe.d/vfio.conf:3");
    EXPECT_EQ(c.claims[1].ids->str(), "10de:22a3");
    // A continued line is named by its first line.
    EXPECT_EQ(c.claims[2].ids->str(), "1002:744c");
    EXPECT_EQ(c.claims[2].where, "/etc/modprobe.d/vfio.conf:4");
    EXPECT_EQ(c.claims[2].source, Source::modprobe);
    EXPECT_EQ(c.claims[2].driver, "vfio-pci");
    ASSERT_EQ(c.softdeps.size(), 2u);
    EXPECT_EQ(c.softdeps[0].module, "nvidia");
    EXPECT_EQ(c.softdeps[0].where, "/etc/modprobe.d/vfio.conf:7");
    EXPECT_EQ(c.softdeps[1].module, "amdgpu");
}

TEST(PersistParse, MalformedLinesAreReportedNeverGuessed) {
    const std::string text = "options vfio-pci ids=10de:zz36,10de:2336\n"
                             "options vfio-pci ids=\n"
                             "options\n"
                             "options vfio-pci ids=1002:744c # the AMD card\n"
                             "options vfio-pci idz=10de:2336\n"
                             "softdep nvidia vfio-pci\n"
                             "options vfio-pci ids=\xff\xfe:2336\n";
    auto c = vfio::parse_modprobe_conf(text, "m.conf");
    ASSERT_EQ(c.claims.size(), 2u);
    EXPECT_EQ(c.claims[0].ids->str(), "10de:2336"); // the good entry of line 1
    EXPECT_EQ(c.claims[1].ids->str(), "1002:744c"); // before the '#'
    EXPECT_TRUE(c.softdeps.empty());
    auto texts = problem_texts(c.problems);
    ASSERT_EQ(texts.size(), 7u) << testing::PrintToString(texts);
    EXPECT_TRUE(contains(texts[0], "m.conf:1: '10de:zz36' is no vendor:device")) << texts[0];
    EXPECT_TRUE(contains(texts[1], "m.conf:2: 'ids=' is no list of IDs")) << texts[1];
    EXPECT_TRUE(contains(texts[2], "m.conf:3: 'options' without a module")) << texts[2];
    EXPECT_TRUE(contains(texts[3], "m.conf:4: a '#' inside the line")) << texts[3];
    EXPECT_TRUE(contains(texts[4], "m.conf:5: 'idz=10de:2336' is no parameter")) << texts[4];
    EXPECT_TRUE(contains(texts[5], "m.conf:6: 'softdep nvidia' is followed by no")) << texts[5];
    EXPECT_TRUE(contains(texts[6], "m.conf:7: '\xff\xfe:2336'")) << texts[6];
    for (const auto& p : c.problems)
        EXPECT_FALSE(p.unreadable);
}

TEST(PersistParse, CommandLineIdsEitherSpelling) {
    std::vector<vfio::ConfigProblem> problems;
    auto claims = vfio::cmdline_claims(
        "BOOT_IMAGE=/vmlinuz quiet vfio-pci.ids=10de:2336,1002:744c vfio_pci.ids=8086:10d3,nope",
        Source::cmdline, "/proc/cmdline", problems);
    ASSERT_EQ(claims.size(), 3u);
    EXPECT_EQ(claims[0].ids->str(), "10de:2336");
    EXPECT_EQ(claims[2].ids->str(), "8086:10d3");
    EXPECT_EQ(claims[2].where, "/proc/cmdline");
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_TRUE(contains(problems[0].text, "'nope'"));
}

TEST(PersistRead, EverySourceWithItsPlaceAndModprobeMasking) {
    HostTree t = fixture::seed_after();
    t.set_cmdline("root=/dev/nvme0n1p2 intel_iommu=on vfio-pci.ids=10de:2336");
    t.write(k_gpu_entry, "vfio-pci\n");
    t.write("/etc/driverctl.d/pci-0000:02:00.0", "e1000e\n");
    t.write("/etc/driverctl.d/usb-1-1", "usbhid\n"); // another bus: not judged
    t.write("/etc/modprobe.d/vfio.conf", "options vfio-pci ids=10de:2336\n");
    t.write("/lib/modprobe.d/vfio.conf", "options vfio-pci ids=dead:beef\n"); // hidden by /etc's
    t.write("/lib/modprobe.d/nvidia.conf", "softdep nvidia pre: vfio-pci\n");
    t.write("/etc/modprobe.d/notes.txt", "options vfio-pci ids=dead:beef\n"); // not *.conf
    host::Host h(t.root());
    auto cfg = vfio::read_persist(h, std::string("quiet vfio-pci.ids=10de:2336,1002:744c"));
    EXPECT_TRUE(cfg.problems.empty()) << testing::PrintToString(problem_texts(cfg.problems));
    auto gpu = *pci::PciAddress::parse(fixture::k_seed_gpu);
    const auto* v = cfg.claim_for(Source::vfioctl, gpu);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->where, k_gpu_entry);
    const auto* d = cfg.claim_for(Source::driverctl, *pci::PciAddress::parse("02:00.0"));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->driver, "e1000e");
    size_t cmdline = 0, next = 0, modprobe = 0;
    for (const auto& c : cfg.claims) {
        cmdline += c.source == Source::cmdline;
        next += c.source == Source::next_cmdline;
        if (c.source == Source::modprobe) {
            ++modprobe;
            EXPECT_EQ(c.where, "/etc/modprobe.d/vfio.conf:1");
        }
    }
    EXPECT_EQ(cmdline, 1u);
    EXPECT_EQ(next, 2u);
    EXPECT_EQ(modprobe, 1u);
    EXPECT_EQ(cfg.masked, std::vector<std::string>{"/lib/modprobe.d/vfio.conf"});
    ASSERT_EQ(cfg.softdeps.size(), 1u);
    EXPECT_EQ(cfg.softdeps[0].where, "/lib/modprobe.d/nvidia.conf:1");
    // The next boot adds 1002:744c: reported, as the running ids differ.
    auto inv = pci::enumerate(h);
    ASSERT_TRUE(inv.ok());
    auto conflicts = vfio::find_conflicts(cfg, *inv);
    ASSERT_EQ(conflicts.size(), 1u);
    EXPECT_EQ(conflicts[0].kind, vfio::ConflictKind::cmdline_vs_next);
}

TEST(PersistRead, UnreadableIsUnknownNeverNoConfiguration) {
    HostTree t = fixture::seed_after();
    // bind.d is a file: it cannot be listed.
    t.write("/etc/vfioctl/bind.d", "vfio-pci\n");
    // An entry that is a directory: it cannot be read.
    t.mkdir("/etc/driverctl.d/pci-0000:8a:00.0");
    host::Host h(t.root());
    auto cfg = vfio::read_persist(h);
    EXPECT_FALSE(cfg.known(Source::vfioctl));
    EXPECT_FALSE(cfg.known(Source::driverctl));
    EXPECT_TRUE(cfg.known(Source::modprobe));
    EXPECT_TRUE(cfg.claims.empty());
    // bind --persistent refuses: what driverctl says is unknown.
    auto gpu = *pci::PciAddress::parse(fixture::k_seed_gpu);
    vfio::BootHooks hooks;
    auto plan = vfio::plan_persist(cfg, hooks, {gpu});
    ASSERT_FALSE(plan.ok());
    EXPECT_TRUE(contains(plan.error().message, "cannot read vfioctl's persistent bindings"))
        << plan.error().message;
}

TEST(PersistRead, SymlinksOutOfTheRootAreNotFollowed) {
    // A file outside the root that a link inside it names by absolute path.
    fixture::TempDir outside;
    const auto evil = outside.path / "evil.conf";
    std::ofstream(evil) << "options vfio-pci ids=dead:beef\n";
    HostTree t = fixture::seed_after();
    t.symlink("/etc/modprobe.d/evil.conf", evil.string());
    t.symlink("/etc/vfioctl/bind.d/pci-0000:8a:00.0", evil.string());
    host::Host h(t.root());
    auto cfg = vfio::read_persist(h);
    for (const auto& c : cfg.claims)
        EXPECT_FALSE(c.ids && c.ids->str() == "dead:beef") << c.where;
    EXPECT_EQ(cfg.claim_for(Source::vfioctl, *pci::PciAddress::parse(fixture::k_seed_gpu)),
              nullptr);
    // Resolved inside the root the links name nothing: unknown, not "none".
    EXPECT_FALSE(cfg.known(Source::modprobe));
    EXPECT_FALSE(cfg.known(Source::vfioctl));
}

TEST(PersistRead, ConflictsAreTyped) {
    HostTree t = fixture::seed_after();
    t.set_cmdline("intel_iommu=on vfio-pci.ids=10de:2336");
    t.write(k_gpu_entry, "vfio-pci\n");
    t.write("/etc/driverctl.d/pci-0000:8a:00.0", "nvidia\n");
    t.write("/etc/modprobe.d/a.conf", "options vfio-pci ids=10de:22a3\n");
    t.write("/etc/modprobe.d/b.conf", "options vfio-pci ids=10de:2336\n");
    host::Host h(t.root());
    auto cfg = vfio::read_persist(h);
    auto inv = pci::enumerate(h);
    ASSERT_TRUE(inv.ok());
    std::vector<vfio::ConflictKind> kinds;
    for (const auto& c : vfio::find_conflicts(cfg, *inv))
        kinds.push_back(c.kind);
    using K = vfio::ConflictKind;
    EXPECT_EQ(kinds,
              (std::vector<K>{K::driverctl_vs_vfioctl, K::ids_vs_driverctl, K::ids_vs_driverctl,
                              K::cmdline_vs_modprobe, K::modprobe_twice}));
}

TEST(PersistAtBoot, OverrideIsSetBeforeVfioPciIsLoadedAndProbed) {
    HostTree t = fixture::seed_after();
    t.write(k_gpu_entry, "vfio-pci\n");
    FakeKernel k(t);
    // The boot before any driver: the GPU has none, vfio-pci is not loaded.
    ASSERT_TRUE(k.write("/sys/bus/pci/drivers/nvidia/unbind", fixture::k_seed_gpu).ok());
    k.unload_vfio();
    const size_t before = k.writes().size();
    auto items = vfio::bind_at_boot(k, vfio::read_persist(k), {}, 1000);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].outcome, vfio::AtBootOutcome::bound);
    EXPECT_FALSE(items[0].from);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
    EXPECT_EQ(k.override_of(fixture::k_seed_gpu), "vfio-pci");
    std::vector<std::string> writes(k.writes().begin() + static_cast<long>(before),
                                    k.writes().end());
    ASSERT_EQ(writes.size(), 3u) << testing::PrintToString(writes);
    EXPECT_TRUE(contains(writes[0], "driver_override")) << writes[0];
    EXPECT_EQ(writes[1], "modprobe vfio_pci");
    EXPECT_TRUE(contains(writes[2], "drivers_probe")) << writes[2];
    // A second run (the udev rule's, a restart) changes nothing.
    auto again = vfio::bind_at_boot(k, vfio::read_persist(k), {}, 1000);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].outcome, vfio::AtBootOutcome::already);
}

TEST(PersistAtBoot, ADriverFromTheInitramfsIsUnboundAndTheFixIsNamed) {
    HostTree t = fixture::seed_after();
    t.write(k_gpu_entry, "vfio-pci\n");
    FakeKernel k(t);
    auto items = vfio::bind_at_boot(k, vfio::read_persist(k), {}, 1000);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].outcome, vfio::AtBootOutcome::taken_back);
    EXPECT_EQ(items[0].from, std::optional<std::string>("nvidia"));
    EXPECT_TRUE(contains(items[0].note, "update-initramfs -u")) << items[0].note;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
}

// An entry for the controller of the root filesystem (the seed's NVMe at
// 01:00.0) is never applied at boot: its driver keeps it, the run fails.
TEST_F(Persist, AtBootNeverTakesTheRootFilesystemsController) {
    HostTree t = fixture::seed_after();
    t.write("/etc/vfioctl/bind.d/pci-0000:01:00.0", "vfio-pci\n");
    FakeKernel k(t);
    const std::string before = k.driver_of("0000:01:00.0");
    ASSERT_EQ(before, "nvme");
    auto r = run_cli(k, {"--json", "bind", "--at-boot"}, paths);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    json j = r.json();
    ASSERT_EQ(j["items"].size(), 1u) << r.out;
    EXPECT_EQ(j["items"][0]["outcome"], "failed");
    EXPECT_TRUE(contains(j["items"][0]["note"].get<std::string>(), "root filesystem"))
        << j["items"][0]["note"];
    EXPECT_EQ(k.driver_of("0000:01:00.0"), "nvme");
    EXPECT_EQ(k.override_of("0000:01:00.0"), "(null)") << "not even its override is set";
}

TEST_F(Persist, AtBootReportsAbsentDevicesAndGoesOnPastAFailure) {
    HostTree t = fixture::seed_after();
    t.write(k_gpu_entry, "vfio-pci\n");
    t.write("/etc/vfioctl/bind.d/pci-0000:99:00.0", "vfio-pci\n");
    t.write("/etc/vfioctl/bind.d/pci-0000:02:00.0", "vfio-pci\n"); // the host NIC
    t.write("/etc/vfioctl/bind.d/junk", "x\n");
    FakeKernel k(t);
    k.unbind_fails(fixture::k_seed_gpu);
    auto r = run_cli(k, {"--json", "bind", "--at-boot"}, paths);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    json j = r.json();
    ASSERT_EQ(j["items"].size(), 3u) << r.out;
    EXPECT_EQ(j["items"][0]["address"], "0000:02:00.0");
    EXPECT_EQ(j["items"][0]["outcome"], "taken_back");
    EXPECT_EQ(j["items"][1]["address"], fixture::k_seed_gpu);
    EXPECT_EQ(j["items"][1]["outcome"], "failed");
    EXPECT_EQ(j["items"][2]["outcome"], "absent");
    ASSERT_EQ(j["problems"].size(), 1u);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");

    // Only absent devices: not a failure.
    HostTree t2 = fixture::seed_after();
    t2.write("/etc/vfioctl/bind.d/pci-0000:99:00.0", "vfio-pci\n");
    FakeKernel k2(t2);
    auto ok = run_cli(k2, {"bind", "--at-boot"}, paths);
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_TRUE(contains(ok.out, "0000:99:00.0: absent: no such device on this boot")) << ok.out;
    // Usage: --at-boot takes addresses only.
    EXPECT_EQ(run_cli(k2, {"bind", "--at-boot", "--persistent"}, paths).exit_code, 2);
    EXPECT_EQ(run_cli(k2, {"bind", "--at-boot", "10de:2336"}, paths).exit_code, 2);
}

TEST_F(Persist, BindPersistentRefusesWithoutTheBootHooksAndChangesNothing) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto r = run_cli(k, {"bind", "--persistent", fixture::k_seed_gpu}, paths);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.err, "would not be applied at boot on this host: the udev rule "
                                "61-vfioctl.rules is not installed"))
        << r.err;
    EXPECT_TRUE(contains(r.err, "nothing was changed")) << r.err;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_FALSE(k.exists(k_gpu_entry));
    EXPECT_FALSE(k.exists(vfio::journal_path(paths.state_dir)));
    // Installed but not enabled: still refused.
    t.write("/lib/udev/rules.d/61-vfioctl.rules", "\n");
    t.write("/lib/systemd/system/vfioctl-bind.service", "\n");
    auto r2 = run_cli(k, {"bind", "--persistent", fixture::k_seed_gpu}, paths);
    EXPECT_EQ(r2.exit_code, 1);
    EXPECT_TRUE(contains(r2.err, "vfioctl-bind.service is not enabled")) << r2.err;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
}

TEST_F(Persist, BindPersistentRecordsTheAddressAndUnbindPersistentRemovesIt) {
    HostTree t = fixture::seed_after();
    install_hooks(t);
    FakeKernel k(t);
    auto dry = run_cli(k, {"--json", "bind", "--persistent", "--dry-run", "10de:2336"}, paths);
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_EQ(dry.json()["persistent_plan"]["write"], json::array({k_gpu_entry}));
    EXPECT_FALSE(k.exists(k_gpu_entry));

    auto r = run_cli(k, {"bind", "--persistent", "10de:2336", "--timeout", "2"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "Bound at every boot:\n  recorded " + k_gpu_entry)) << r.out;
    EXPECT_TRUE(contains(r.out, "Give back with: vfioctl unbind --persistent 10de:2336")) << r.out;
    EXPECT_EQ(t.read(k_gpu_entry), "vfio-pci\n");
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
    // Journaled like the boot configuration: a created file, its fingerprint.
    auto bj = boot::load_journal(k, paths.state_dir);
    ASSERT_TRUE(bj.ok()) << bj.error().describe();
    ASSERT_EQ(bj->operations.size(), 1u);
    EXPECT_EQ(bj->operations[0].action, "persist");
    ASSERT_EQ(bj->operations[0].files.size(), 1u);
    EXPECT_EQ(bj->operations[0].files[0].path, k_gpu_entry);
    EXPECT_TRUE(bj->operations[0].files[0].created);
    EXPECT_EQ(bj->operations[0].files[0].backup, "");

    // status, groups and bind --dry-run show it.
    auto st = run_cli(k, {"--json", "status"}, paths);
    json sj = st.json();
    ASSERT_TRUE(sj.contains("persistent")) << st.out;
    ASSERT_EQ(sj["persistent"]["bindings"].size(), 1u);
    EXPECT_EQ(sj["persistent"]["bindings"][0]["source"], "vfioctl");
    EXPECT_EQ(sj["persistent"]["bindings"][0]["address"], fixture::k_seed_gpu);
    EXPECT_EQ(sj["persistent"]["boot_hooks"]["installed"], true);
    auto gr = run_cli(k, {"--json", "groups"}, paths);
    EXPECT_EQ(gr.json()["persistent"]["bindings"].size(), 1u) << gr.out;
    auto text = run_cli(k, {"status"}, paths);
    EXPECT_TRUE(
        contains(text.out, "Persistent bindings (at every boot)\n  0000:8a:00.0 -> vfio-pci "
                           "at every boot: vfioctl (" +
                               k_gpu_entry + ")"))
        << text.out;
    auto again = run_cli(k, {"bind", "--persistent", "--dry-run", fixture::k_seed_gpu}, paths);
    EXPECT_TRUE(contains(again.out, "already bound at every boot")) << again.out;

    auto un = run_cli(k, {"unbind", "--persistent", fixture::k_seed_gpu}, paths);
    ASSERT_EQ(un.exit_code, 0) << un.err;
    EXPECT_TRUE(contains(un.out, "Not bound at boot any more:\n  removed " + k_gpu_entry))
        << un.out;
    EXPECT_FALSE(k.exists(k_gpu_entry));
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    // Removed, journaled with its bytes; no backup beside it in bind.d,
    // which would keep the unit's ConditionDirectoryNotEmpty true.
    bj = boot::load_journal(k, paths.state_dir);
    ASSERT_TRUE(bj.ok());
    ASSERT_EQ(bj->operations.size(), 2u);
    EXPECT_EQ(bj->operations[1].action, "unpersist");
    ASSERT_EQ(bj->operations[1].files.size(), 1u);
    EXPECT_TRUE(bj->operations[1].files[0].removed);
    EXPECT_EQ(bj->operations[1].files[0].backup, "");
    EXPECT_EQ(bj->operations[1].files[0].content, "vfio-pci\n");
    auto left = k.list("/etc/vfioctl/bind.d");
    EXPECT_TRUE(!left || left->empty()) << "bind.d is empty or gone";
    auto cfg = vfio::read_persist(k);
    EXPECT_TRUE(cfg.claims.empty() || cfg.claims[0].source != Source::vfioctl);
    EXPECT_TRUE(cfg.problems.empty()) << testing::PrintToString(problem_texts(cfg.problems));
    auto at_boot = run_cli(k, {"bind", "--at-boot"}, paths);
    EXPECT_EQ(at_boot.exit_code, 0);
    EXPECT_EQ(at_boot.out, "No persistent binding to apply\n");
}

TEST_F(Persist, DriverctlIsRespectedNotFought) {
    HostTree t = fixture::seed_after();
    install_hooks(t);
    t.write("/etc/driverctl.d/pci-0000:8a:00.0", "nvidia\n");
    FakeKernel k(t);
    auto r = run_cli(k, {"--json", "bind", "--persistent", fixture::k_seed_gpu}, paths);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.err, "driverctl sends 0000:8a:00.0 to nvidia")) << r.err;
    EXPECT_TRUE(contains(r.err, "'driverctl unset-override 0000:8a:00.0'")) << r.err;
    EXPECT_EQ(r.json()["changed"], false);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_FALSE(k.exists(k_gpu_entry));

    // driverctl already sends it to vfio-pci: kept, no second entry.
    t.write("/etc/driverctl.d/pci-0000:8a:00.0", "vfio-pci\n");
    auto ok = run_cli(k, {"bind", "--persistent", fixture::k_seed_gpu}, paths);
    ASSERT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_TRUE(contains(ok.out, "driverctl already binds it to vfio-pci at boot")) << ok.out;
    EXPECT_FALSE(k.exists(k_gpu_entry));
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
}

TEST(PersistSnapshot, RecordsEntriesModprobeAndHooks) {
    HostTree t = fixture::seed_after();
    install_hooks(t);
    t.write(k_gpu_entry, "vfio-pci\n");
    t.write("/etc/driverctl.d/pci-0000:02:00.0", "e1000e\n");
    t.write("/lib/modprobe.d/vfio.conf", "options vfio-pci ids=10de:2336\n");
    t.write("/run/modprobe.d/x.conf", "softdep nvidia pre: vfio-pci\n");
    fixture::TempDir out;
    auto s = host::snapshot(host::Host(t.root()), out.path / "snap");
    ASSERT_TRUE(s.ok()) << s.error().describe();
    host::Host snap(out.path / "snap");
    auto a = vfio::read_persist(host::Host(t.root()));
    auto b = vfio::read_persist(snap);
    ASSERT_EQ(a.claims.size(), b.claims.size());
    for (size_t i = 0; i < a.claims.size(); ++i)
        EXPECT_EQ(a.claims[i].where, b.claims[i].where);
    EXPECT_EQ(b.softdeps.size(), 1u);
    EXPECT_TRUE(vfio::boot_hooks(snap).ok())
        << testing::PrintToString(vfio::boot_hooks(snap).missing);
}

TEST(PersistRead, EntriesWithCrlfAndBytesThatAreNotUtf8) {
    HostTree t = fixture::seed_after();
    t.write(k_gpu_entry, "vfio-pci\r\n");
    t.write("/etc/driverctl.d/pci-0000:02:00.0", "e1000\xff\n");
    t.write("/etc/vfioctl/bind.d/pci-0000:02:00.0", "nvidia\n"); // not vfioctl's content
    t.write("/etc/vfioctl/bind.d/pci-8a:00.0", "vfio-pci\n");    // not the full form
    host::Host h(t.root());
    auto cfg = vfio::read_persist(h);
    auto gpu = *pci::PciAddress::parse(fixture::k_seed_gpu);
    auto nic = *pci::PciAddress::parse("02:00.0");
    ASSERT_TRUE(cfg.claim_for(Source::vfioctl, gpu));
    EXPECT_FALSE(cfg.claim_for(Source::vfioctl, nic));
    ASSERT_TRUE(cfg.claim_for(Source::driverctl, nic));
    EXPECT_EQ(cfg.claim_for(Source::driverctl, nic)->driver, "e1000\xff");
    auto texts = problem_texts(cfg.problems);
    ASSERT_EQ(texts.size(), 2u) << testing::PrintToString(texts);
    EXPECT_TRUE(contains(texts[0], "pci-0000:02:00.0: names 'nvidia'")) << texts[0];
    EXPECT_TRUE(contains(texts[1], "pci-8a:00.0: the name is no pci-DDDD:BB:DD.F")) << texts[1];
    EXPECT_TRUE(cfg.known(Source::vfioctl)); // malformed is not unreadable
}

TEST_F(Persist, StatusShowsBytesEscapedAndJsonStaysValid) {
    HostTree t = fixture::seed_after();
    t.write("/etc/driverctl.d/pci-0000:8a:00.0", "nv\x1b[31m\xff\n");
    FakeKernel k(t);
    auto text = run_cli(k, {"status"}, paths);
    EXPECT_TRUE(contains(text.out, "0000:8a:00.0 -> nv\\x1b[31m\\xff at every boot: driverctl"))
        << text.out;
    auto js = run_cli(k, {"--json", "status"}, paths);
    json j = js.json();
    ASSERT_FALSE(j.is_null()) << js.out;
    EXPECT_EQ(j["persistent"]["bindings"][0]["source"], "driverctl");
}

TEST_F(Persist, UnbindPersistentAllRemovesEveryEntry) {
    HostTree t = fixture::seed_after();
    install_hooks(t);
    t.write(k_gpu_entry, "vfio-pci\n");
    t.write("/etc/vfioctl/bind.d/pci-0000:99:00.0", "vfio-pci\n"); // absent device
    FakeKernel k(t);
    auto r = run_cli(k, {"--json", "unbind", "--persistent", "--all"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = r.json();
    EXPECT_EQ(j["persistent"]["removed"].size(), 2u) << r.out;
    EXPECT_FALSE(k.exists(k_gpu_entry));
    EXPECT_FALSE(k.exists("/etc/vfioctl/bind.d/pci-0000:99:00.0"));
    EXPECT_TRUE(vfio::read_persist(k).claims.empty());
}

TEST_F(Persist, UnbindPersistentOfAnAbsentDeviceRemovesItsEntryOnly) {
    HostTree t = fixture::seed_after();
    install_hooks(t);
    t.write("/etc/vfioctl/bind.d/pci-0000:99:00.0", "vfio-pci\n");
    FakeKernel k(t);
    ASSERT_TRUE(run_cli(k, {"bind", fixture::k_seed_gpu}, paths).exit_code == 0);
    auto r = run_cli(k, {"unbind", "--persistent", "0000:99:00.0"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "removed /etc/vfioctl/bind.d/pci-0000:99:00.0")) << r.out;
    EXPECT_FALSE(k.exists("/etc/vfioctl/bind.d/pci-0000:99:00.0"));
    // The journaled GPU was not given back: only the absent device was named.
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
    // Without --persistent an absent device is still an error.
    EXPECT_EQ(run_cli(k, {"unbind", "0000:99:00.0"}, paths).exit_code, 1);
}
