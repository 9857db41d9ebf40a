// Writing boot configuration safely: a kill at every write step leaves each
// file either as it was or completely new, with its backup, and 'revert'
// brings the originals back; a failing regenerate command, a read-only
// file, a broken journal or state directory, a vanished or changed backup:
// a clear error and nothing lost.

#include "boot/apply.hpp"
#include "boot/plan.hpp"
#include "boot/setup.hpp"
#include "boot_test_helpers.hpp"
#include "host/files.hpp"
#include "util/fault.hpp"

#include <chrono>
#include <gtest/gtest.h>
#include <iostream>
#include <optional>
#include <sys/stat.h>
#include <thread>

using namespace vfioctl;
using namespace vfioctl::boot;
using boottest::CaseRoot;

namespace {

const Goal k_enable{Action::enable, Platform::intel, true};

// A regenerate command that does what it is told.
class FakeRunner : public CommandRunner {
  public:
    int exit_code = 0;
    std::string output;
    bool start_fails = false;
    std::vector<std::vector<std::string>> calls;
    Result<host::RunOutput> run(const std::vector<std::string>& argv) override {
        calls.push_back(argv);
        if (start_fails) return Error{"cannot execute", argv.at(0), {}, ENOENT};
        return host::RunOutput{exit_code, output};
    }
};

ApplyOptions options(CommandRunner* runner, const std::string& stamp = "20240101-000001") {
    ApplyOptions o;
    o.runner = runner;
    o.stamp = stamp;
    return o;
}

// The backups of host path p that exist now.
std::vector<std::string> backups_of(const CaseRoot& r, const std::string& p) {
    std::vector<std::string> out;
    auto full = r.path(p);
    for (const auto& e : std::filesystem::directory_iterator(full.parent_path())) {
        std::string n = e.path().filename().string();
        if (n.rfind(full.filename().string() + ".vfioctl-backup-", 0) == 0)
            out.push_back(e.path().string());
    }
    return out;
}

std::string journal_state(const host::Host& h) {
    auto j = load_journal(h, "/var/lib/vfioctl");
    if (!j || j->operations.empty()) return "";
    return j->operations.back().state;
}

} // namespace

TEST(BootApply, KillAtEveryWriteStepLeavesOldOrNewFilesAndRevertWorks) {
    const std::vector<std::string> points = {"boot.backup.created",
                                             "boot.backup.written",
                                             "boot.backup.synced",
                                             "boot.backup.linked",
                                             "boot.backups.done",
                                             "boot.journal.temp.created",
                                             "boot.journal.temp.written",
                                             "boot.journal.temp.synced",
                                             "boot.journal.renamed",
                                             "boot.journal.dir.synced",
                                             "boot.journal.pending",
                                             "boot.file.temp.created",
                                             "boot.file.temp.written",
                                             "boot.file.temp.synced",
                                             "boot.file.renamed",
                                             "boot.file.dir.synced",
                                             "boot.file.done",
                                             "boot.regenerate",
                                             "boot.done"};
    std::map<std::string, int> reached;
    int kills = 0;
    for (const char* name : {"seed-dropin", "arch-systemd-boot", "popos"}) {
        for (const auto& point : points) {
            for (int nth : {1, 2}) {
                SCOPED_TRACE(std::string(name) + " " + point + " #" + std::to_string(nth));
                CaseRoot r(name);
                host::Host h(r.root);
                auto setup = detect_setup(h);
                auto plan = plan_goal(setup.sets, k_enable);
                ASSERT_TRUE(plan.ok());
                pid_t pid = ::fork();
                ASSERT_GE(pid, 0);
                if (pid == 0) {
                    util::arm_fault_point(point, nth);
                    FakeRunner ok;
                    (void)apply_plan(h, setup, *plan, "enable", options(&ok));
                    ::_exit(0);
                }
                int st = 0;
                ::waitpid(pid, &st, 0);
                ASSERT_TRUE(WIFEXITED(st));
                if (WEXITSTATUS(st) == 0) continue; // not passed that often in this case
                ASSERT_EQ(WEXITSTATUS(st), 86);
                ++reached[point];
                ++kills;
                // Each file is the old one or the complete new one; a new one has its backup.
                for (const auto& e : plan->edits) {
                    std::string now = r.read(e.path);
                    ASSERT_TRUE(now == e.before || now == e.after)
                        << e.path << " is neither old nor new";
                    if (now == e.after) {
                        auto b = backups_of(r, e.path);
                        ASSERT_EQ(b.size(), 1u) << e.path;
                        EXPECT_EQ(boottest::slurp(b[0]), e.before);
                    }
                }
                // revert brings back the originals (or there is nothing to revert and they are
                // still there).
                auto rp = plan_revert(h, "/var/lib/vfioctl");
                if (rp.ok()) {
                    FakeRunner ok;
                    auto rv = apply_plan(h, detect_setup(h), rp->plan, "revert",
                                         options(&ok, "20240101-000002"), rp->undoes.id);
                    ASSERT_TRUE(rv.ok()) << rv.error().describe();
                }
                for (const auto& e : plan->edits)
                    EXPECT_EQ(r.read(e.path), e.before) << e.path;
                // And vfioctl still works there, leaving no temporary file behind.
                auto again = plan_goal(detect_setup(h).sets, k_enable);
                ASSERT_TRUE(again.ok());
                FakeRunner ok;
                auto done = apply_plan(h, detect_setup(h), *again, "enable",
                                       options(&ok, "20240101-000003"));
                ASSERT_TRUE(done.ok()) << done.error().describe();
                for (const auto& e : plan->edits) {
                    EXPECT_EQ(r.read(e.path), e.after) << e.path;
                    for (const auto& entry :
                         std::filesystem::directory_iterator(r.path(e.path).parent_path()))
                        EXPECT_TRUE(entry.path().filename().string().find(".vfioctl-tmp") ==
                                        std::string::npos &&
                                    entry.path().filename().string().find(".vfioctl-backup.tmp") ==
                                        std::string::npos)
                            << entry.path();
                }
            }
        }
    }
    for (const auto& p : points)
        EXPECT_GT(reached[p], 0) << p << " was never reached";
    std::cout << "[ crash ] boot write kill points covered: " << reached.size() << " points, "
              << kills << " kills\n";
}

TEST(BootApply, RegenerateFailurePutsFilesBack) {
    CaseRoot r("seed-dropin");
    host::Host h(r.root);
    auto setup = detect_setup(h);
    auto plan = plan_goal(setup.sets, k_enable);
    ASSERT_TRUE(plan.ok());
    FakeRunner bad;
    bad.exit_code = 1;
    bad.output = "/usr/sbin/grub-mkconfig: 266: cannot create /boot/grub/grub.cfg.new: No space "
                 "left on device\n";
    auto res = apply_plan(h, setup, *plan, "enable", options(&bad));
    ASSERT_FALSE(res.ok());
    EXPECT_NE(res.error().message.find("failed with exit code 1"), std::string::npos)
        << res.error().message;
    EXPECT_NE(res.error().hint.find("No space left on device"), std::string::npos)
        << res.error().hint;
    EXPECT_NE(res.error().hint.find("put back"), std::string::npos) << res.error().hint;
    ASSERT_EQ(bad.calls.size(), 1u);
    EXPECT_EQ(bad.calls[0], std::vector<std::string>{"/usr/sbin/update-grub"});
    for (const auto& e : plan->edits) {
        EXPECT_EQ(r.read(e.path), e.before) << e.path;
        EXPECT_EQ(backups_of(r, e.path).size(), 1u) << "the backup is kept";
    }
    EXPECT_EQ(journal_state(h), "rolled_back");
    EXPECT_FALSE(plan_revert(h, "/var/lib/vfioctl").ok())
        << "a rolled back change is not reverted again";

    FakeRunner missing;
    missing.start_fails = true;
    auto res2 = apply_plan(h, setup, *plan, "enable", options(&missing, "20240101-000002"));
    ASSERT_FALSE(res2.ok());
    EXPECT_NE(res2.error().message.find("could not run"), std::string::npos)
        << res2.error().message;
    for (const auto& e : plan->edits)
        EXPECT_EQ(r.read(e.path), e.before);

    FakeRunner ok;
    auto res3 = apply_plan(h, setup, *plan, "enable", options(&ok, "20240101-000003"));
    ASSERT_TRUE(res3.ok());
    EXPECT_TRUE(res3->regenerate_ran);
    EXPECT_EQ(journal_state(h), "done");
}

TEST(BootApply, MissingRegenerateProgramChangesNothing) {
    CaseRoot r("debian12");
    std::filesystem::remove(r.path("/usr/sbin/update-grub"));
    host::Host h(r.root);
    auto setup = detect_setup(h);
    auto plan = plan_goal(setup.sets, k_enable);
    FakeRunner ok;
    auto res = apply_plan(h, setup, *plan, "enable", options(&ok));
    ASSERT_FALSE(res.ok());
    EXPECT_NE(res.error().message.find("update-grub (package grub2-common)"), std::string::npos)
        << res.error().message;
    EXPECT_TRUE(ok.calls.empty());
    EXPECT_EQ(r.read("/etc/default/grub"), plan->edits[0].before);
    EXPECT_TRUE(backups_of(r, "/etc/default/grub").empty());
}

TEST(BootApply, ReadOnlyFileBrokenJournalAndStateDir) {
    {
        CaseRoot r("debian12");
        host::Host h(r.root);
        ::chmod(r.path("/etc/default/grub").c_str(), 0444);
        auto setup = detect_setup(h);
        auto plan = plan_goal(setup.sets, k_enable);
        auto res = apply_plan(h, setup, *plan, "enable", options(nullptr));
        ASSERT_FALSE(res.ok());
        EXPECT_NE(res.error().message.find("read-only (mode 0444)"), std::string::npos)
            << res.error().message;
        EXPECT_NE(res.error().hint.find("nothing was changed"), std::string::npos);
        EXPECT_TRUE(backups_of(r, "/etc/default/grub").empty());
        EXPECT_FALSE(h.exists("/var/lib/vfioctl/boot-journal.json"));
        // The direct writer refuses it too.
        EXPECT_FALSE(host::replace_file(h, "/etc/default/grub", "x").ok());
        EXPECT_EQ(r.read("/etc/default/grub"), plan->edits[0].before);
    }
    {
        CaseRoot r("debian12");
        host::Host h(r.root);
        r.write("/var/lib/vfioctl/boot-journal.json", "{ truncated");
        auto setup = detect_setup(h);
        auto plan = plan_goal(setup.sets, k_enable);
        auto res = apply_plan(h, setup, *plan, "enable", options(nullptr));
        ASSERT_FALSE(res.ok());
        EXPECT_NE(res.error().message.find("journal is not valid JSON"), std::string::npos);
        EXPECT_TRUE(backups_of(r, "/etc/default/grub").empty());
        EXPECT_EQ(r.read("/etc/default/grub"), plan->edits[0].before);
    }
    {
        CaseRoot r("debian12");
        host::Host h(r.root);
        r.write("/var/lib/vfioctl", "a file where the state directory belongs");
        auto setup = detect_setup(h);
        auto plan = plan_goal(setup.sets, k_enable);
        auto res = apply_plan(h, setup, *plan, "enable", options(nullptr));
        ASSERT_FALSE(res.ok());
        EXPECT_NE(res.error().hint.find("nothing was changed"), std::string::npos)
            << res.error().hint;
        EXPECT_EQ(r.read("/etc/default/grub"), plan->edits[0].before);
    }
}

TEST(BootApply, FileChangedWhilePlanningIsNotOverwritten) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    auto setup = detect_setup(h);
    auto plan = plan_goal(setup.sets, k_enable);
    r.write("/etc/default/grub", plan->edits[0].before + "# edited meanwhile\n");
    auto res = apply_plan(h, setup, *plan, "enable", options(nullptr));
    ASSERT_FALSE(res.ok());
    EXPECT_NE(res.error().message.find("changed while"), std::string::npos);
    EXPECT_EQ(r.read("/etc/default/grub"), plan->edits[0].before + "# edited meanwhile\n");
}

// The file changed after the check but before the lock (another enable
// held it): checked again under the lock. The second of two enables at
// once backed up the first one's result as "before" and journaled an entry
// revert refused ("the backup no longer holds what the file held").
TEST(BootApply, FileChangedWhileWaitingForTheLockIsNotOverwritten) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    auto setup = detect_setup(h);
    auto plan = plan_goal(setup.sets, k_enable);
    ASSERT_TRUE(plan.ok());
    ASSERT_TRUE(host::make_directories(h, "/var/lib/vfioctl").ok());
    auto held = host::FileLock::acquire(h, "/var/lib/vfioctl/boot.lock", 1000);
    ASSERT_TRUE(held.ok());
    std::optional<Result<ApplyResult>> res;
    std::thread t([&] { res.emplace(apply_plan(h, setup, *plan, "enable", options(nullptr))); });
    std::this_thread::sleep_for(
        std::chrono::milliseconds(300)); // past the first check, waiting for the lock
    r.write("/etc/default/grub", plan->edits[0].after); // what the other enable wrote
    { auto release = std::move(held).value(); }
    t.join();
    ASSERT_TRUE(res.has_value());
    ASSERT_FALSE(res->ok());
    EXPECT_NE(res->error().message.find("changed while"), std::string::npos)
        << res->error().describe();
    EXPECT_TRUE(backups_of(r, "/etc/default/grub").empty());
    EXPECT_EQ(journal_state(h), "");
}

TEST(BootApply, RevertMergesWhenTheFileChangedSince) {
    CaseRoot r("seed");
    host::Host h(r.root);
    const std::string original = r.read("/etc/default/grub");
    auto setup = detect_setup(h);
    auto plan = plan_goal(setup.sets, k_enable);
    ASSERT_TRUE(apply_plan(h, setup, *plan, "enable", options(nullptr)).ok());
    // The administrator edits the file afterwards.
    std::string edited = r.read("/etc/default/grub");
    auto at = edited.find("GRUB_TIMEOUT=0");
    edited.replace(at, 14, "GRUB_TIMEOUT=3");
    at = edited.find("intel_iommu=on iommu=pt\"");
    edited.replace(at, 24, "intel_iommu=on iommu=pt mitigations=off\"");
    r.write("/etc/default/grub", edited);
    auto rp = plan_revert(h, "/var/lib/vfioctl");
    ASSERT_TRUE(rp.ok()) << rp.error().describe();
    EXPECT_EQ(rp->merged, std::vector<std::string>{"/etc/default/grub"});
    ASSERT_TRUE(apply_plan(h, detect_setup(h), rp->plan, "revert",
                           options(nullptr, "20240101-000002"), rp->undoes.id)
                    .ok());
    std::string now = r.read("/etc/default/grub");
    EXPECT_NE(now.find("GRUB_TIMEOUT=3"), std::string::npos);
    EXPECT_NE(
        now.find(
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash intel_iommu=off iommu=pt mitigations=off\""),
        std::string::npos)
        << now;
    EXPECT_NE(now, original);
    auto s = detect_setup(h);
    EXPECT_EQ(boottest::sh_params(r, s.sets[0]),
              boottest::words("quiet splash intel_iommu=off iommu=pt mitigations=off"));
    // Both the enable's and the revert's backups are there.
    EXPECT_EQ(backups_of(r, "/etc/default/grub").size(), 2u);
}

TEST(BootApply, RevertRefusesAVanishedOrChangedBackup) {
    CaseRoot r("seed");
    host::Host h(r.root);
    auto setup = detect_setup(h);
    auto plan = plan_goal(setup.sets, k_enable);
    auto res = apply_plan(h, setup, *plan, "enable", options(nullptr));
    ASSERT_TRUE(res.ok());
    const std::string backup = res->files.at(0).backup;
    std::string b = r.read(backup);
    r.write(backup, b + "# touched\n");
    auto rp = plan_revert(h, "/var/lib/vfioctl");
    ASSERT_FALSE(rp.ok());
    EXPECT_NE(rp.error().message.find("backup no longer holds"), std::string::npos)
        << rp.error().message;
    std::filesystem::remove(r.path(backup));
    rp = plan_revert(h, "/var/lib/vfioctl");
    ASSERT_FALSE(rp.ok());
    EXPECT_NE(rp.error().hint.find("missing"), std::string::npos) << rp.error().hint;
    EXPECT_EQ(r.read("/etc/default/grub"), plan->edits[0].after);
}

TEST(BootApply, SymlinkedFileIsEditedThroughTheLink) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    std::filesystem::rename(r.path("/etc/default/grub"), r.path("/etc/default/grub.real"));
    std::filesystem::create_symlink("grub.real", r.path("/etc/default/grub"));
    auto setup = detect_setup(h);
    auto plan = plan_goal(setup.sets, k_enable);
    ASSERT_TRUE(apply_plan(h, setup, *plan, "enable", options(nullptr)).ok());
    EXPECT_TRUE(std::filesystem::is_symlink(r.path("/etc/default/grub")));
    EXPECT_EQ(r.read("/etc/default/grub.real"), plan->edits[0].after);
}

TEST(BootApply, TestBinariesNeverWriteTheLiveRoot) {
    host::Host live("/");
    ASSERT_TRUE(live.is_live());
    auto st = host::replace_file(live, "/etc/default/grub", "GRUB_CMDLINE_LINUX=\"\"\n");
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("test guard"), std::string::npos);
    EXPECT_FALSE(host::backup_file(live, "/etc/hostname", "x").ok());
    EXPECT_FALSE(host::make_directories(live, "/var/lib/vfioctl-test-guard").ok());
}

// Files that come and go (a trial boot entry, a bind.d entry): created with
// their mode and no backup, removed with one; revert takes a created file
// away and puts a removed one back byte for byte; a created file changed
// since is left alone with a note; a file already there is never
// overwritten by a "create".
TEST(BootApply, CreatedAndRemovedFilesAreJournaledAndReverted) {
    CaseRoot r("seed");
    host::Host h(r.root);
    auto setup = detect_setup(h);
    const std::string script = "/etc/grub.d/42_vfioctl_trial";
    const std::string text = "#!/bin/sh\necho trial\n";
    Plan create;
    FileEdit e{script, Format::whole_file, "", text};
    e.created = true;
    e.mode = 0755;
    create.edits.push_back(e);
    FakeRunner runner;
    auto res = apply_plan(h, setup, create, "trial", options(&runner));
    ASSERT_TRUE(res.ok()) << res.error().describe();
    EXPECT_EQ(r.read(script), text);
    struct stat st {};
    ASSERT_EQ(::stat(r.path(script).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    EXPECT_EQ(res->files.at(0).backup, "");
    EXPECT_EQ(runner.calls.size(), 1u) << "the regenerate command runs after a created file";
    auto j = load_journal(h, "/var/lib/vfioctl");
    ASSERT_TRUE(j.ok());
    ASSERT_EQ(j->operations.size(), 1u);
    EXPECT_TRUE(j->operations[0].files.at(0).created);
    EXPECT_EQ(j->operations[0].files.at(0).mode, 0755u);
    EXPECT_EQ(j->operations[0].files.at(0).format, Format::whole_file);

    // A second create of the same file refuses and changes nothing.
    auto again = apply_plan(h, setup, create, "trial", options(nullptr, "20240101-000002"));
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.error().message.find("there already"), std::string::npos)
        << again.error().describe();
    EXPECT_EQ(load_journal(h, "/var/lib/vfioctl")->operations.size(), 1u);

    // revert removes it.
    auto rp = plan_revert(h, "/var/lib/vfioctl");
    ASSERT_TRUE(rp.ok()) << rp.error().describe();
    EXPECT_EQ(rp->exact, std::vector<std::string>{script});
    ASSERT_EQ(rp->plan.edits.size(), 1u);
    EXPECT_TRUE(rp->plan.edits[0].removed);
    ASSERT_TRUE(
        apply_plan(h, setup, rp->plan, "revert", options(nullptr, "20240101-000003"), rp->undoes.id)
            .ok());
    EXPECT_FALSE(std::filesystem::exists(r.path(script)));
    // Its removal kept its bytes in the journal, not as a backup beside it
    // (update-grub would read one in /etc/grub.d).
    EXPECT_TRUE(backups_of(r, script).empty());
    auto jr = load_journal(h, "/var/lib/vfioctl");
    ASSERT_TRUE(jr.ok());
    EXPECT_EQ(jr->operations.back().files.at(0).content, text);

    // An operation that removes a file, and its revert that puts it back.
    r.write(script, text);
    ::chmod(r.path(script).c_str(), 0750);
    Plan remove;
    FileEdit d{script, Format::whole_file, text, ""};
    d.removed = true;
    d.mode = 0750;
    remove.edits.push_back(d);
    ASSERT_TRUE(apply_plan(h, setup, remove, "enable", options(nullptr, "20240101-000004")).ok());
    EXPECT_FALSE(std::filesystem::exists(r.path(script)));
    rp = plan_revert(h, "/var/lib/vfioctl");
    ASSERT_TRUE(rp.ok()) << rp.error().describe();
    ASSERT_EQ(rp->plan.edits.size(), 1u);
    EXPECT_TRUE(rp->plan.edits[0].created);
    ASSERT_TRUE(
        apply_plan(h, setup, rp->plan, "revert", options(nullptr, "20240101-000005"), rp->undoes.id)
            .ok());
    EXPECT_EQ(r.read(script), text);
    ASSERT_EQ(::stat(r.path(script).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0750u);

    // A created file changed since is left as it is.
    std::filesystem::remove(r.path(script));
    ASSERT_TRUE(apply_plan(h, setup, create, "trial", options(nullptr, "20240101-000006")).ok());
    r.write(script, text + "# mine now\n");
    rp = plan_revert(h, "/var/lib/vfioctl");
    ASSERT_TRUE(rp.ok()) << rp.error().describe();
    EXPECT_TRUE(rp->plan.edits.empty());
    EXPECT_EQ(rp->untouched, std::vector<std::string>{script});
    ASSERT_FALSE(rp->plan.notes.empty());
    EXPECT_NE(rp->plan.notes[0].find("changed since"), std::string::npos);
}

// A kill at every step of creating a file leaves it absent or complete, and
// revert takes a complete one away.
TEST(BootApply, KillWhileCreatingAFileLeavesItAbsentOrComplete) {
    for (const char* point : {"boot.journal.renamed", "boot.journal.pending",
                              "boot.file.temp.written", "boot.file.renamed", "boot.file.done"}) {
        SCOPED_TRACE(point);
        CaseRoot r("seed");
        host::Host h(r.root);
        auto setup = detect_setup(h);
        const std::string f = "/etc/vfioctl/bind.d/pci-0000:01:00.0";
        Plan create;
        FileEdit e{f, Format::whole_file, "", "vfio-pci\n"};
        e.created = true;
        create.edits.push_back(e);
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            util::arm_fault_point(point, 1);
            (void)apply_plan(h, setup, create, "trial", options(nullptr));
            ::_exit(0);
        }
        int st = 0;
        ::waitpid(pid, &st, 0);
        ASSERT_TRUE(WIFEXITED(st));
        ASSERT_EQ(WEXITSTATUS(st), 86) << "the fault point was not reached";
        if (std::filesystem::exists(r.path(f))) {
            EXPECT_EQ(r.read(f), "vfio-pci\n");
        }
        EXPECT_EQ(journal_state(h), "pending");
        auto rp = plan_revert(h, "/var/lib/vfioctl");
        ASSERT_TRUE(rp.ok()) << rp.error().describe();
        ASSERT_TRUE(apply_plan(h, setup, rp->plan, "revert", options(nullptr, "20240101-000009"),
                               rp->undoes.id)
                        .ok());
        EXPECT_FALSE(std::filesystem::exists(r.path(f)));
    }
}
