// Trial boots (boot/trial.hpp, 'iommu enable', 'iommu confirm'): the trial
// entry copied from the default one with the goal met, panic=N and the
// marker; the default entry and its configuration untouched until confirm;
// where a trial stands against the running boot and the one-shot; confirm
// only in the trial boot with the IOMMU on; revert and disable with a trial
// open; loaders without a one-shot fall back to a permanent change.

#include "boot/journal.hpp"
#include "boot/setup.hpp"
#include "boot/trial.hpp"
#include "boot_test_helpers.hpp"
#include "cli_run.hpp"
#include "support.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace vfioctl;
using boottest::CaseRoot;
using nlohmann::json;
using test::contains;
using test::run_cli;

namespace {

const boot::Goal k_enable{boot::Action::enable, boot::Platform::intel, true};
const char* const k_boot1 = "11111111-2222-3333-4444-555555555555";
const char* const k_boot2 = "22222222-2222-3333-4444-555555555555";

struct Trial : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);

    // The boot id, and an (empty) PCI bus for 'status'.
    static void set_boot(const CaseRoot& r, const std::string& id) {
        r.write("/proc/sys/kernel/random/boot_id", id + "\n");
        std::filesystem::create_directories(r.path("/sys/bus/pci/devices"));
    }
    // grubenv as grub-editenv writes it: 1024 bytes.
    static void set_grubenv(const CaseRoot& r, const std::string& vars) {
        std::string t = "# GRUB Environment Block\n" + vars;
        t.resize(1024, '#');
        r.write("/boot/grub/grubenv", t);
    }
    static std::string marker_of(const CaseRoot& r) {
        json j = json::parse(r.read("/var/lib/vfioctl/boot-journal.json"));
        return j["operations"][0]["trial"]["marker"].get<std::string>();
    }
};

} // namespace

TEST_F(Trial, GrubTrialEntryCopiesTheDefaultEntry) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    auto setup = boot::detect_setup(h);
    ASSERT_EQ(boot::oneshot_of(setup), boot::OneShot::grub);
    // A harness's or user's panic= is replaced: a trial must reboot by itself.
    std::string cfg = r.read("/boot/grub/grub.cfg");
    auto at = cfg.find("ro  quiet");
    ASSERT_NE(at, std::string::npos);
    cfg.replace(at, 9, "ro  quiet panic=0 intel_iommu=off");
    r.write("/boot/grub/grub.cfg", cfg);
    auto tp = boot::plan_trial(h, setup, k_enable, "M1");
    ASSERT_TRUE(tp.ok()) << tp.error().describe();
    EXPECT_EQ(tp->cmdline, "root=UUID=1f4e0c5e-7a5b-4f7e-9d77-2c8b1f0a9e21 ro quiet "
                           "intel_iommu=on iommu=pt panic=10 vfioctl.trial=M1");
    ASSERT_EQ(tp->plan.edits.size(), 1u);
    const auto& e = tp->plan.edits[0];
    EXPECT_EQ(e.path, "/etc/grub.d/42_vfioctl_trial");
    EXPECT_TRUE(e.created);
    EXPECT_EQ(e.mode, 0755u);
    EXPECT_TRUE(contains(e.after, "menuentry 'vfioctl trial: intel_iommu=on iommu=pt' --id "
                                  "vfioctl-trial {\n"))
        << e.after;
    EXPECT_TRUE(contains(e.after, "\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 " + tp->cmdline + "\n"))
        << e.after;
    EXPECT_TRUE(contains(e.after, "\tinitrd\t/boot/initrd.img-6.1.0-18-amd64\n")) << e.after;
    EXPECT_TRUE(contains(e.after, "search --no-floppy --fs-uuid --set=root")) << e.after;
    EXPECT_FALSE(contains(e.after, "recovery")) << "only the first entry is copied";
    EXPECT_EQ(tp->oneshot_argv.back(), "vfioctl-trial");
}

TEST_F(Trial, GrubCfgWithoutAnEntryRefusesAndNamesPermanent) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    r.write("/boot/grub/grub.cfg", "set default=0\nsubmenu 'x' {\n}\n");
    auto tp = boot::plan_trial(h, boot::detect_setup(h), k_enable, "M1");
    ASSERT_FALSE(tp.ok());
    EXPECT_TRUE(contains(tp.error().hint, "--permanent")) << tp.error().describe();
    const std::string grub = r.read("/etc/default/grub");
    auto en = run_cli(h, {"iommu", "enable", "--yes"}, paths);
    EXPECT_EQ(en.exit_code, 1) << en.out;
    EXPECT_EQ(r.read("/etc/default/grub"), grub);
    EXPECT_FALSE(std::filesystem::exists(r.path("/etc/grub.d/42_vfioctl_trial")));
}

TEST_F(Trial, CrlfGrubCfgKeepsNoCarriageReturn) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    std::string cfg = r.read("/boot/grub/grub.cfg"), crlf;
    for (char c : cfg)
        crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    r.write("/boot/grub/grub.cfg", crlf);
    auto tp = boot::plan_trial(h, boot::detect_setup(h), k_enable, "M1");
    ASSERT_TRUE(tp.ok()) << tp.error().describe();
    EXPECT_EQ(tp->plan.edits[0].after.find('\r'), std::string::npos);
    EXPECT_TRUE(contains(tp->cmdline, "vfioctl.trial=M1")) << tp->cmdline;
}

TEST_F(Trial, SystemdBootTrialEntryIsNotTakenForTheDefault) {
    CaseRoot r("arch-systemd-boot");
    host::Host h(r.root);
    auto setup = boot::detect_setup(h);
    ASSERT_EQ(boot::oneshot_of(setup), boot::OneShot::systemd_boot);
    auto tp = boot::plan_trial(h, setup, k_enable, "M2");
    ASSERT_TRUE(tp.ok()) << tp.error().describe();
    const auto& e = tp->plan.edits.at(0);
    EXPECT_EQ(e.path, "/boot/loader/entries/vfioctl-trial.conf");
    EXPECT_TRUE(contains(e.after, "title vfioctl trial: intel_iommu=on iommu=pt\n")) << e.after;
    EXPECT_TRUE(contains(e.after, "options root=UUID=3f9a1c2e-6b7d-4e8f-9a0b-1c2d3e4f5a6b rw "
                                  "intel_iommu=on iommu=pt panic=10 vfioctl.trial=M2\n"))
        << e.after;
    EXPECT_TRUE(contains(e.after, "linux   /vmlinuz-linux\n")) << e.after;
    EXPECT_EQ(tp->oneshot_argv.at(1), "set-oneshot");
    EXPECT_EQ(tp->oneshot_argv.at(2), "vfioctl-trial.conf");
    r.write(e.path, e.after);
    auto again = boot::detect_setup(h);
    EXPECT_EQ(again.generated_path, setup.generated_path);
    for (const auto& set : again.sets)
        for (const auto& f : set.files())
            EXPECT_NE(f.path, e.path) << "the trial entry is never edited as a default";
}

TEST_F(Trial, LoadersWithoutAOneShotChangeAtOnceAndSaySo) {
    CaseRoot r("popos");
    host::Host h(r.root);
    EXPECT_EQ(boot::oneshot_of(boot::detect_setup(h)), boot::OneShot::none);
    auto en = run_cli(h, {"--json", "iommu", "enable", "--yes"}, paths);
    ASSERT_EQ(en.exit_code, 0) << en.err;
    json j = en.json();
    EXPECT_EQ(j["permanent"], true);
    EXPECT_TRUE(contains(j["no_trial"].get<std::string>(), "kernelstub")) << j.dump();
    EXPECT_TRUE(contains(en.err, "no trial boot")) << en.err;
}

TEST_F(Trial, TheWholeTrialOnGrub) {
    CaseRoot r("debian12", "BOOT_IMAGE=/boot/vmlinuz root=UUID=1 ro quiet");
    host::Host h(r.root);
    set_boot(r, k_boot1);
    const std::string grub = r.read("/etc/default/grub");

    auto en = run_cli(h, {"--json", "iommu", "enable", "--yes"}, paths);
    ASSERT_EQ(en.exit_code, 0) << en.err;
    json j = en.json();
    EXPECT_EQ(j["permanent"], false);
    EXPECT_EQ(j["trial"]["panic_s"], 10);
    EXPECT_EQ(r.read("/etc/default/grub"), grub) << "the default stays until confirm";
    struct stat st {};
    ASSERT_EQ(::stat(r.path("/etc/grub.d/42_vfioctl_trial").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0755u);
    // Against --root nothing runs: both commands are printed.
    ASSERT_EQ(j["then"].size(), 1u);
    EXPECT_EQ(j["then"][0]["ran"], false);
    const std::string marker = marker_of(r);

    // The same boot: pending. A second enable refuses.
    auto show = run_cli(h, {"--json", "iommu", "show"}, paths);
    EXPECT_EQ(show.json()["trial"]["state"], "pending");
    auto again = run_cli(h, {"iommu", "enable", "--yes"}, paths);
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_TRUE(contains(again.err, "a trial boot is open already")) << again.err;
    auto early = run_cli(h, {"iommu", "confirm", "--yes"}, paths);
    EXPECT_EQ(early.exit_code, 1);
    EXPECT_TRUE(contains(early.err, "this boot is not the trial")) << early.err;
    EXPECT_EQ(r.read("/etc/default/grub"), grub);

    // Another boot, the one-shot still set: pending (the trial was not used).
    set_boot(r, k_boot2);
    set_grubenv(r, "next_entry=vfioctl-trial\n");
    EXPECT_EQ(run_cli(h, {"--json", "iommu", "show"}, paths).json()["trial"]["state"], "pending");
    // The one-shot cannot be read: unknown, never "did not come back".
    std::filesystem::remove(r.path("/boot/grub/grubenv"));
    EXPECT_EQ(run_cli(h, {"--json", "iommu", "show"}, paths).json()["trial"]["state"], "unknown");

    // The trial boot: marker on the command line. Without IOMMU groups, no confirm.
    r.write("/proc/cmdline", "BOOT_IMAGE=/boot/vmlinuz root=UUID=1 ro quiet intel_iommu=on "
                             "iommu=pt panic=10 vfioctl.trial=" +
                                 marker + "\n");
    set_grubenv(r, "");
    auto status = run_cli(h, {"--json", "status"}, paths);
    EXPECT_EQ(status.json()["boot"]["trial"]["state"], "running") << status.out;
    auto off = run_cli(h, {"iommu", "confirm", "--yes"}, paths);
    EXPECT_EQ(off.exit_code, 1);
    EXPECT_TRUE(contains(off.err, "no IOMMU groups")) << off.err;
    EXPECT_EQ(r.read("/etc/default/grub"), grub);

    std::filesystem::create_directories(r.path("/sys/kernel/iommu_groups/0/devices"));
    auto dry = run_cli(h, {"iommu", "confirm", "--dry-run"}, paths);
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_EQ(r.read("/etc/default/grub"), grub);
    auto conf = run_cli(h, {"--json", "iommu", "confirm", "--yes"}, paths);
    ASSERT_EQ(conf.exit_code, 0) << conf.err;
    EXPECT_TRUE(contains(r.read("/etc/default/grub"), "intel_iommu=on iommu=pt"));
    EXPECT_FALSE(std::filesystem::exists(r.path("/etc/grub.d/42_vfioctl_trial")));
    // The removed script's backup is not executable: update-grub would run it.
    for (const auto& f : std::filesystem::directory_iterator(r.path("/etc/grub.d"))) {
        ASSERT_EQ(::stat(f.path().c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0111, 0u) << f.path();
    }
    auto jn = boot::load_journal(h, "/var/lib/vfioctl");
    ASSERT_TRUE(jn.ok());
    ASSERT_EQ(jn->operations.size(), 3u);
    EXPECT_EQ(jn->operations[0].state, "confirmed");
    EXPECT_EQ(jn->operations[0].trial->confirmed_by, jn->operations[1].id);
    EXPECT_EQ(jn->operations[1].action, "enable");
    EXPECT_EQ(run_cli(h, {"--json", "iommu", "show"}, paths).json()["trial"]["state"], "none");

    // revert undoes the enable, byte for byte.
    auto rev = run_cli(h, {"iommu", "revert", "--yes"}, paths);
    ASSERT_EQ(rev.exit_code, 0) << rev.err;
    EXPECT_EQ(r.read("/etc/default/grub"), grub);
}

TEST_F(Trial, TrialThatDidNotComeBack) {
    CaseRoot r("debian12", "BOOT_IMAGE=/boot/vmlinuz root=UUID=1 ro quiet");
    host::Host h(r.root);
    set_boot(r, k_boot1);
    ASSERT_EQ(run_cli(h, {"iommu", "enable", "--yes"}, paths).exit_code, 0);
    // Rebooted; GRUB used the one-shot; the running kernel is the default entry's.
    set_boot(r, k_boot2);
    set_grubenv(r, "saved_entry=0\n");
    auto st = run_cli(h, {"status"}, paths);
    EXPECT_TRUE(contains(st.out, "trial boot:     not_back")) << st.out;
    EXPECT_TRUE(contains(st.out, "journalctl -k -b -1")) << st.out;
    auto conf = run_cli(h, {"iommu", "confirm", "--yes"}, paths);
    EXPECT_EQ(conf.exit_code, 1);
    EXPECT_TRUE(contains(conf.err, "did not come back")) << conf.err;
    // disable drops the trial and turns the IOMMU off.
    auto dis = run_cli(h, {"iommu", "disable", "--yes"}, paths);
    ASSERT_EQ(dis.exit_code, 0) << dis.err << dis.out;
    EXPECT_TRUE(contains(dis.out, "Dropped the trial boot")) << dis.out;
    EXPECT_FALSE(std::filesystem::exists(r.path("/etc/grub.d/42_vfioctl_trial")));
    EXPECT_TRUE(contains(r.read("/etc/default/grub"), "intel_iommu=off"));
    EXPECT_EQ(run_cli(h, {"--json", "iommu", "show"}, paths).json()["trial"]["state"], "none");
}

TEST_F(Trial, RevertCancelsATrial) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    set_boot(r, k_boot1);
    const std::string grub = r.read("/etc/default/grub");
    ASSERT_EQ(run_cli(h, {"iommu", "enable", "--yes"}, paths).exit_code, 0);
    auto rev = run_cli(h, {"iommu", "revert", "--yes"}, paths);
    ASSERT_EQ(rev.exit_code, 0) << rev.err;
    EXPECT_TRUE(contains(rev.out, "/etc/grub.d/42_vfioctl_trial: removed ('trial' created it)"))
        << rev.out;
    EXPECT_FALSE(std::filesystem::exists(r.path("/etc/grub.d/42_vfioctl_trial")));
    EXPECT_EQ(r.read("/etc/default/grub"), grub);
    EXPECT_EQ(run_cli(h, {"--json", "iommu", "show"}, paths).json()["trial"]["state"], "none");
    // A new trial can be scheduled.
    EXPECT_EQ(run_cli(h, {"iommu", "enable", "--yes"}, paths).exit_code, 0);
}

TEST_F(Trial, JournalTrialFieldsOfTheWrongTypeAreAClearError) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    r.write("/var/lib/vfioctl/boot-journal.json",
            R"({"version": 1, "operations": [{"id": "1", "action": "trial", "state": "done",
               "trial": {"marker": 7}}]})");
    auto j = boot::load_journal(h, "/var/lib/vfioctl");
    ASSERT_FALSE(j.ok());
    EXPECT_TRUE(contains(j.error().message, "trial.marker")) << j.error().describe();
    auto show = run_cli(h, {"iommu", "enable", "--yes"}, paths);
    EXPECT_EQ(show.exit_code, 1);
    EXPECT_FALSE(std::filesystem::exists(r.path("/etc/grub.d/42_vfioctl_trial")));
}

// GRUB with BootLoaderSpec entries (Fedora): the trial is a loader entry GRUB
// reads (blscfg) and grub2-reboot schedules; no grubby at the trial (it would
// put the parameters on every entry), grubby with the parameters at confirm.
TEST_F(Trial, BlsTrialIsALoaderEntryAndGrubbyRunsOnlyAtConfirm) {
    CaseRoot r("fedora39", "BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.5.6-300.fc39.x86_64 root=UUID=5e1f "
                           "ro rootflags=subvol=root rhgb quiet");
    host::Host h(r.root);
    set_boot(r, k_boot1);
    auto setup = boot::detect_setup(h);
    ASSERT_EQ(boot::oneshot_of(setup), boot::OneShot::grub_bls);
    const std::string entry = "/boot/loader/entries/vfioctl-trial.conf";
    auto en = run_cli(h, {"--json", "iommu", "enable", "--yes"}, paths);
    ASSERT_EQ(en.exit_code, 0) << en.err << en.out;
    json j = en.json();
    EXPECT_EQ(j["trial"]["oneshot"].back(), "vfioctl-trial");
    EXPECT_TRUE(contains(j["trial"]["oneshot"][0].get<std::string>(), "reboot")) << j["trial"];
    EXPECT_TRUE(j["regenerate"]["argv"].empty()) << "no grubby for the trial: " << j["regenerate"];
    const std::string text = r.read(entry);
    EXPECT_TRUE(contains(text, "version 6.5.6-300.fc39.x86_64\n")) << text;
    EXPECT_TRUE(contains(text, "intel_iommu=on iommu=pt panic=10 vfioctl.trial=")) << text;
    for (const auto& set : boot::detect_setup(h).sets)
        for (const auto& f : set.files())
            EXPECT_NE(f.path, entry);
    // Scheduled in /boot/grub2/grubenv: pending on the next boot.
    set_boot(r, k_boot2);
    std::string env = r.read("/boot/grub2/grubenv");
    env.replace(env.find("boot_success=1\n"), 15, "next_entry=vfioctl-trial\n");
    env.resize(1024, '#');
    r.write("/boot/grub2/grubenv", env);
    EXPECT_EQ(run_cli(h, {"--json", "iommu", "show"}, paths).json()["trial"]["state"], "pending");
    // The trial boot: confirm edits the entries and names grubby with the parameters.
    r.write("/proc/cmdline", "BOOT_IMAGE=x ro intel_iommu=on iommu=pt panic=10 vfioctl.trial=" +
                                 marker_of(r) + "\n");
    std::filesystem::create_directories(r.path("/sys/kernel/iommu_groups/3"));
    auto conf = run_cli(h, {"--json", "iommu", "confirm", "--yes"}, paths);
    ASSERT_EQ(conf.exit_code, 0) << conf.err;
    json c = conf.json();
    auto argv = c["regenerate"]["argv"].get<std::vector<std::string>>();
    ASSERT_FALSE(argv.empty());
    EXPECT_TRUE(contains(argv[0], "grubby")) << c["regenerate"];
    EXPECT_TRUE(std::find(argv.begin(), argv.end(), "--args=intel_iommu=on iommu=pt") != argv.end())
        << c["regenerate"];
    EXPECT_FALSE(std::filesystem::exists(r.path(entry)));
}
