// 'vfioctl iommu show | enable | disable | revert' end to end through the
// built binary on fixture roots: the seed's host from intel_iommu=off to
// on and back, 'status' telling the same reboot fact, dry runs, the
// confirmation on a terminal and its refusal without one, setups it does
// not edit, and the failures a user meets (not root, a full disk).

#include "boot_test_helpers.hpp"
#include "support.hpp"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace vfioctl;
using boottest::CaseRoot;
using nlohmann::json;

namespace {

std::vector<std::string> backups_in(const std::filesystem::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().filename().string().find(".vfioctl-backup-") != std::string::npos)
            out.push_back(e.path().string());
    return out;
}

void drop_to_nobody() {
    ::setgroups(0, nullptr);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(125);
}

// Only root can drop to another user; only a binary nobody can reach can run as nobody.
bool can_run_as_nobody() {
    if (::geteuid() != 0) return false;
    std::filesystem::path p = VFIOCTL_BINARY;
    for (; p.has_relative_path(); p = p.parent_path()) {
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
    }
    return true;
}

} // namespace

TEST(BootCli, SeedHostFromOffToOnAndBack) {
    auto t = fixture::seed_before();
    const std::string root = t.root_str();
    const std::string original = t.read("/etc/default/grub");

    auto show = test::run_on(t, {"--json", "iommu", "show"});
    ASSERT_EQ(show.exit_code, 0) << show.err;
    json s = test::json_of(show);
    EXPECT_EQ(s["loader"], "grub");
    EXPECT_EQ(s["configured_cmdline"], "intel_iommu=off iommu=pt");
    EXPECT_EQ(s["reboot_pending"], false);
    EXPECT_EQ(s["platform"], "intel");

    auto st = test::run_on(t, {"--json", "status"});
    json sj = test::json_of(st);
    EXPECT_EQ(sj["boot"]["loader"], "grub");
    EXPECT_EQ(sj["boot"]["reboot_pending"], false);
    EXPECT_EQ(sj["verdict"], "will_work_after");
    EXPECT_TRUE(test::any_contains(sj["gpus"][0]["steps"], "vfioctl iommu enable"));

    auto en = test::run_on(t, {"--json", "iommu", "enable", "--permanent", "--yes"});
    ASSERT_EQ(en.exit_code, 0) << en.out << en.err;
    json e = test::json_of(en);
    EXPECT_EQ(e["changed"], true);
    EXPECT_EQ(e["applied"], true);
    EXPECT_EQ(e["regenerate"]["argv"], json::array({"/usr/bin/update-grub"}));
    EXPECT_EQ(e["regenerate"]["ran"], false);
    EXPECT_EQ(e["reboot_pending"], true);
    EXPECT_EQ(e["next_cmdline"], "intel_iommu=on iommu=pt");
    ASSERT_EQ(e["files"].size(), 1u);
    EXPECT_NE(e["files"][0]["diff"].get<std::string>().find(
                  "+GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on iommu=pt\""),
              std::string::npos);
    std::string backup = e["files"][0]["backup"];
    EXPECT_EQ(t.read(backup), original);
    EXPECT_EQ(t.read("/etc/default/grub").find("intel_iommu=off"), std::string::npos);

    // status tells the same fact: only the reboot is missing now.
    sj = test::json_of(test::run_on(t, {"--json", "status"}));
    EXPECT_EQ(sj["boot"]["reboot_pending"], true);
    EXPECT_EQ(sj["boot"]["configured_cmdline"], "intel_iommu=on iommu=pt");
    EXPECT_EQ(sj["reboot_required"], true);
    EXPECT_EQ(test::strings_of(sj["gpus"][0]["steps"]), std::vector<std::string>{"reboot"});
    auto text = test::run_on(t, {"status"});
    EXPECT_NE(text.out.find("reboot pending: yes"), std::string::npos) << text.out;
    auto showtext = test::run_on(t, {"iommu", "show"});
    EXPECT_NE(showtext.out.find("Reboot pending:  yes"), std::string::npos) << showtext.out;
    EXPECT_NE(showtext.out.find("'vfioctl iommu revert' undoes it"), std::string::npos)
        << showtext.out;

    // Again: nothing to do, no second backup.
    auto again = test::run_on(t, {"iommu", "enable", "--permanent", "--yes"});
    EXPECT_EQ(again.exit_code, 0);
    EXPECT_NE(again.out.find("Nothing to change"), std::string::npos) << again.out;
    EXPECT_EQ(backups_in(t.path("/etc/default")).size(), 1u);

    auto rv = test::run_on(t, {"iommu", "revert", "--yes"});
    ASSERT_EQ(rv.exit_code, 0) << rv.out << rv.err;
    EXPECT_NE(rv.out.find("restored from " + backup + " exactly"), std::string::npos) << rv.out;
    EXPECT_EQ(t.read("/etc/default/grub"), original);
    sj = test::json_of(test::run_on(t, {"--json", "status"}));
    EXPECT_EQ(sj["boot"]["reboot_pending"], false);
    auto none = test::run_on(t, {"iommu", "revert", "--yes"});
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_NE(none.err.find("nothing to revert"), std::string::npos) << none.err;
}

TEST(BootCli, DisableWritesTheSeedsStartingState) {
    auto t = fixture::seed_after();
    auto d = test::run_on(t, {"iommu", "disable", "--yes"});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_NE(
        t.read("/etc/default/grub").find("GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=off iommu=pt\""),
        std::string::npos);
    json sj = test::json_of(test::run_on(t, {"--json", "status"}));
    EXPECT_EQ(sj["boot"]["reboot_pending"], true);
    auto text = test::run_on(t, {"status"});
    EXPECT_NE(text.out.find("the next boot turns the IOMMU off"), std::string::npos) << text.out;
}

TEST(BootCli, DryRunAndConfirmation) {
    CaseRoot r("ubuntu-cloud", "BOOT_IMAGE=/vmlinuz ro console=tty1 console=ttyS0");
    const std::string dropin = r.read("/etc/default/grub.d/50-cloudimg-settings.cfg");
    auto dry = test::run_vfioctl({"--root", r.root, "iommu", "enable", "--permanent", "--dry-run"});
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("--- a/etc/default/grub.d/50-cloudimg-settings.cfg"), std::string::npos)
        << dry.out;
    EXPECT_NE(
        dry.out.find(
            "+GRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0 intel_iommu=on iommu=pt\""),
        std::string::npos)
        << dry.out;
    EXPECT_NE(dry.out.find("Then: /usr/sbin/update-grub"), std::string::npos) << dry.out;
    EXPECT_NE(dry.out.find("Dry run: nothing was changed"), std::string::npos);
    EXPECT_EQ(r.read("/etc/default/grub.d/50-cloudimg-settings.cfg"), dropin);
    EXPECT_FALSE(std::filesystem::exists(r.path("/var/lib/vfioctl")));

    auto jdry = test::json_of(test::run_vfioctl(
        {"--root", r.root, "--json", "iommu", "enable", "--permanent", "--dry-run"}));
    EXPECT_EQ(jdry["dry_run"], true);
    EXPECT_EQ(jdry["changed"], true);
    EXPECT_EQ(jdry["added"], json::array({"intel_iommu=on", "iommu=pt"}));

    // No terminal and no --yes: refused, exit 2.
    auto no = test::run_vfioctl({"--root", r.root, "iommu", "enable", "--permanent"});
    EXPECT_EQ(no.exit_code, 2);
    EXPECT_NE(no.err.find("--yes"), std::string::npos) << no.err;
    EXPECT_EQ(r.read("/etc/default/grub.d/50-cloudimg-settings.cfg"), dropin);

    // On a terminal: "n" keeps everything, "y" changes it.
    auto n = boottest::run_on_tty(
        {VFIOCTL_BINARY, "--root", r.root, "iommu", "enable", "--permanent"}, "n\n");
    EXPECT_EQ(n.exit_code, 1) << n.out;
    EXPECT_NE(n.out.find("nothing was changed"), std::string::npos) << n.out;
    EXPECT_EQ(r.read("/etc/default/grub.d/50-cloudimg-settings.cfg"), dropin);
    auto y = boottest::run_on_tty(
        {VFIOCTL_BINARY, "--root", r.root, "iommu", "enable", "--permanent"}, "y\n");
    EXPECT_EQ(y.exit_code, 0) << y.out;
    EXPECT_NE(r.read("/etc/default/grub.d/50-cloudimg-settings.cfg"), dropin);
    EXPECT_EQ(r.read("/etc/default/grub").find("intel_iommu"), std::string::npos)
        << "the main file is not what boots";
    auto s = boot::detect_setup(host::Host(r.root));
    EXPECT_EQ(boottest::sh_params(r, s.sets[0]),
              boottest::words("console=tty1 console=ttyS0 intel_iommu=on iommu=pt"));
}

TEST(BootCli, StateDirOptionAndNoPt) {
    CaseRoot r("debian12");
    auto o = test::run_vfioctl({"--root", r.root, "iommu", "enable", "--permanent", "--yes",
                                "--no-pt", "--state-dir", "/srv/vfioctl"});
    ASSERT_EQ(o.exit_code, 0) << o.err;
    EXPECT_TRUE(std::filesystem::exists(r.path("/srv/vfioctl/boot-journal.json")));
    EXPECT_NE(
        r.read("/etc/default/grub").find("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\""),
        std::string::npos);
    auto rv = test::run_vfioctl({"--root", r.root, "iommu", "revert", "--yes"});
    EXPECT_EQ(rv.exit_code, 1) << "the journal is elsewhere";
    rv = test::run_vfioctl(
        {"--root", r.root, "iommu", "revert", "--yes", "--state-dir", "/srv/vfioctl"});
    EXPECT_EQ(rv.exit_code, 0) << rv.err;
}

TEST(BootCli, SetupsItDoesNotEditGetInstructions) {
    CaseRoot n(
        "nixos",
        "BOOT_IMAGE=/nix/store/x-linux/bzImage init=/nix/store/y/init intel_iommu=off iommu=pt");
    auto o = test::run_vfioctl({"--root", n.root, "iommu", "enable", "--permanent", "--yes"});
    EXPECT_EQ(o.exit_code, 1);
    EXPECT_NE(o.out.find("boot.kernelParams"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("nixos-rebuild boot"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("remove \"intel_iommu=off\""), std::string::npos) << o.out;
    EXPECT_NE(o.err.find("nothing was changed"), std::string::npos) << o.err;
    auto j = test::json_of(
        test::run_vfioctl({"--root", n.root, "--json", "iommu", "enable", "--permanent", "--yes"}));
    EXPECT_EQ(j["changed"], false);
    EXPECT_FALSE(j["manual_steps"].empty());
    CaseRoot u("unknown");
    auto uo = test::run_vfioctl({"--root", u.root, "iommu", "enable", "--permanent", "--yes"});
    EXPECT_EQ(uo.exit_code, 1);
    EXPECT_NE(uo.out.find("add intel_iommu=on iommu=pt"), std::string::npos) << uo.out;
    auto us = test::run_vfioctl({"--root", u.root, "iommu", "show"});
    EXPECT_EQ(us.exit_code, 0);
    EXPECT_NE(us.out.find("unknown"), std::string::npos);
    CaseRoot c("conditional");
    auto co = test::run_vfioctl({"--root", c.root, "iommu", "enable", "--permanent", "--yes"});
    EXPECT_EQ(co.exit_code, 1);
    EXPECT_NE(co.err.find("inside a condition"), std::string::npos) << co.err;
    EXPECT_NE(co.err.find("hint:"), std::string::npos) << co.err;
}

TEST(BootCli, NotRootGetsAClearErrorAndNothingChanges) {
    if (!can_run_as_nobody())
        GTEST_SKIP() << "needs root and a build directory other users can reach";
    CaseRoot r("debian12");
    const std::string original = r.read("/etc/default/grub");
    // The state directory cannot be made.
    auto a = boottest::run_with(
        {VFIOCTL_BINARY, "--root", r.root, "iommu", "enable", "--permanent", "--yes"},
        drop_to_nobody);
    EXPECT_EQ(a.exit_code, 1) << a.out << a.err;
    EXPECT_NE(a.err.find("Permission denied"), std::string::npos) << a.err;
    EXPECT_NE(a.err.find("run vfioctl as root"), std::string::npos) << a.err;
    EXPECT_EQ(r.read("/etc/default/grub"), original);
    // The state directory is writable, /etc/default is not: the backup cannot be made.
    std::filesystem::create_directories(r.path("/var/lib/vfioctl"));
    ::chmod(r.path("/var/lib/vfioctl").c_str(), 0777);
    auto b = boottest::run_with(
        {VFIOCTL_BINARY, "--root", r.root, "iommu", "enable", "--permanent", "--yes"},
        drop_to_nobody);
    EXPECT_EQ(b.exit_code, 1) << b.out << b.err;
    EXPECT_NE(b.err.find("cannot create a backup in: /etc/default: Permission denied"),
              std::string::npos)
        << b.err;
    EXPECT_NE(b.err.find("nothing was changed"), std::string::npos) << b.err;
    EXPECT_EQ(r.read("/etc/default/grub"), original);
    EXPECT_TRUE(backups_in(r.path("/etc/default")).empty());
}

TEST(BootCli, FullDiskGetsAClearErrorAndNothingIsLost) {
    CaseRoot r("debian12");
    const std::string original = r.read("/etc/default/grub");
    // Room for the backup and the journal, not for the new, longer file.
    rlim_t limit = original.size() + 3;
    auto limited = [limit] {
        struct rlimit rl {
            limit, limit
        };
        ::setrlimit(RLIMIT_FSIZE, &rl);
        ::signal(SIGXFSZ, SIG_IGN);
    };
    auto o = boottest::run_with(
        {VFIOCTL_BINARY, "--root", r.root, "iommu", "enable", "--permanent", "--yes"}, limited);
    EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
    EXPECT_NE(o.err.find("File too large"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("is full"), std::string::npos) << o.err;
    EXPECT_EQ(r.read("/etc/default/grub"), original);
    auto b = backups_in(r.path("/etc/default"));
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(boottest::slurp(b[0]), original);
    for (const auto& e : std::filesystem::directory_iterator(r.path("/etc/default")))
        EXPECT_EQ(e.path().filename().string().find(".vfioctl-tmp"), std::string::npos) << e.path();
    // Not even room for the backup: nothing at all is written.
    CaseRoot r2("debian12");
    rlim_t tiny = 100;
    auto o2 = boottest::run_with(
        {VFIOCTL_BINARY, "--root", r2.root, "iommu", "enable", "--permanent", "--yes"}, [tiny] {
            struct rlimit rl {
                tiny, tiny
            };
            ::setrlimit(RLIMIT_FSIZE, &rl);
            ::signal(SIGXFSZ, SIG_IGN);
        });
    EXPECT_EQ(o2.exit_code, 1) << o2.err;
    EXPECT_NE(o2.err.find("nothing was changed"), std::string::npos) << o2.err;
    EXPECT_TRUE(backups_in(r2.path("/etc/default")).empty());
    EXPECT_EQ(r2.read("/etc/default/grub"), original);
}

TEST(BootCli, EveryCorpusSetupThroughTheBinary) {
    for (const auto& name : boottest::corpus_cases()) {
        SCOPED_TRACE(name);
        CaseRoot r(name);
        auto show = test::run_vfioctl({"--root", r.root, "--json", "iommu", "show"});
        EXPECT_EQ(show.exit_code, 0) << show.err;
        json s = test::json_of(show);
        EXPECT_TRUE(s.contains("reboot_pending"));
        auto en = test::run_vfioctl(
            {"--root", r.root, "--json", "iommu", "enable", "--permanent", "--yes"});
        json e = test::json_of(en);
        if (name == "nixos" || name == "unknown" || name == "conditional" || name == "cmdsubst") {
            EXPECT_EQ(en.exit_code, 1);
            continue;
        }
        EXPECT_EQ(en.exit_code, 0) << en.err;
        EXPECT_EQ(e["applied"], true);
        auto rv = test::run_vfioctl({"--root", r.root, "--json", "iommu", "revert", "--yes"});
        EXPECT_EQ(rv.exit_code, 0) << rv.err;
        auto back = boottest::slurp(boottest::corpus_dir() / name / "etc/default/grub");
        if (std::filesystem::exists(boottest::corpus_dir() / name / "etc/default/grub")) {
            EXPECT_EQ(r.read("/etc/default/grub"), back);
        }
    }
}

// Issue #11: /etc/default/grub whose last line ends in a lone '\r' made
// 'iommu show', 'status' and 'iommu enable' loop forever.
TEST(BootCli, GrubFileEndingInALoneCarriageReturn) {
    CaseRoot r("debian12");
    r.write("/etc/default/grub", "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"\"\nGRUB_CMDLINE_LINUX_"
                                 "DEFAULT=\"quiet intel_iommu=off\"\r");
    auto show = test::run_vfioctl({"--root", r.root, "--json", "iommu", "show"});
    ASSERT_EQ(show.exit_code, 0) << show.err;
    json s = test::json_of(show);
    EXPECT_EQ(s["loader"], "grub");
    EXPECT_EQ(s["configured_cmdline"], "quiet intel_iommu=off");
    // status reads the PCI bus too: an empty one is enough here.
    std::filesystem::create_directories(std::filesystem::path(r.root) / "sys/bus/pci/devices");
    auto st = test::run_vfioctl({"--root", r.root, "--json", "status"});
    EXPECT_EQ(test::json_of(st)["boot"]["loader"], "grub") << st.err;
    auto en =
        test::run_vfioctl({"--root", r.root, "--json", "iommu", "enable", "--permanent", "--yes"});
    ASSERT_EQ(en.exit_code, 0) << en.err;
    EXPECT_EQ(r.read("/etc/default/grub"), "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"\"\nGRUB_CMDLINE_"
                                           "LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\r");
}

// Without /proc/cmdline nothing says what the running kernel has: whether a
// reboot is pending is unknown (null in JSON), never "yes ... the running
// kernel has no IOMMU parameters".
TEST(BootCli, RebootPendingIsUnknownWithoutTheRunningCommandLine) {
    auto t = fixture::seed_before();
    t.remove("/proc/cmdline");
    auto show = test::run_on(t, {"--json", "iommu", "show"});
    ASSERT_EQ(show.exit_code, 0) << show.err;
    json s = test::json_of(show);
    EXPECT_TRUE(s["reboot_pending"].is_null()) << show.out;
    EXPECT_NE(s["reason"].get<std::string>().find("the running kernel's command line is unknown"),
              std::string::npos)
        << s["reason"];
    auto text = test::run_on(t, {"iommu", "show"});
    EXPECT_NE(text.out.find("Reboot pending:  unknown: "), std::string::npos) << text.out;
    EXPECT_EQ(text.out.find("Reboot pending:  yes"), std::string::npos) << text.out;

    auto st = test::run_on(t, {"--json", "status"});
    json sj = test::json_of(st);
    EXPECT_TRUE(sj["boot"]["reboot_pending"].is_null()) << st.out;
    auto stt = test::run_on(t, {"status"});
    EXPECT_NE(stt.out.find("reboot pending: unknown"), std::string::npos) << stt.out;

    // With the file back, the answer is known again.
    t.set_cmdline("BOOT_IMAGE=/boot/vmlinuz intel_iommu=off iommu=pt");
    EXPECT_EQ(test::json_of(test::run_on(t, {"--json", "iommu", "show"}))["reboot_pending"], false);
}
