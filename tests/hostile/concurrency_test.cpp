// Category 8: concurrency and kills. Two writers at once on one tree (they
// serialize on the state directory's lock: each ends sound, the journal
// stays valid, recover restores), and SIGKILL of a bind, a recover or an
// 'iommu enable' at a point in its run, then recover (or revert).
//
// A fixture tree has no kernel behind it: nothing answers the bind's
// writes, so every bind fails at its probe check and rolls back. What holds
// on a fixture, and is checked: no run dies or hangs, every exit is sound,
// the journal is absent or valid JSON, 'recover' afterwards exits 0 and
// leaves the GPU's driver_override unset and no journal, the driver link is
// untouched, the GRUB file is either the old or the new one (never half of
// each) and 'iommu revert' gives the old one back, and nothing outside the
// tree changes.

#include "hostile.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace vfioctl::hostile {
namespace {

const std::string k_gpu = fixture::k_seed_gpu;
const std::string k_override = Env::dev(k_gpu) + "/driver_override";
const std::string k_journal = "/var/lib/vfioctl/journal.json";

// vfio-pci's directory and the probe file: a bind gets as far as its writes.
void plant_vfio(Env& e) {
    for (const char* f : {"bind", "unbind", "new_id", "remove_id"})
        e.tree.write(std::string("/sys/bus/pci/drivers/vfio-pci/") + f, "");
    e.tree.write("/sys/bus/pci/drivers_probe", "");
    e.tree.mkdir("/sys/module/vfio_pci");
}

bool override_unset(const std::string& v) {
    return v == "(null)\n" || v == "\n" || v.empty();
}

// The journal is absent or a JSON object.
void expect_journal_valid(Env& e) {
    if (!fs::exists(e.tree.path(k_journal))) return;
    const std::string text = e.tree.read(k_journal);
    EXPECT_TRUE(json::accept(text)) << "journal after the runs:\n" << text;
}

// recover exits 0 and leaves the GPU as it was.
void expect_recovered(Env& e) {
    const std::vector<std::string> args = {"--json", "recover", "--timeout", "1"};
    const Outcome r = run(e, args);
    SCOPED_TRACE("vfioctl --root TREE --json recover");
    expect_sound(e, args, r, {0});
    EXPECT_TRUE(override_unset(e.tree.read(k_override))) << e.tree.read(k_override);
    EXPECT_FALSE(fs::exists(e.tree.path(k_journal))) << e.tree.read(k_journal);
    EXPECT_EQ(fs::read_symlink(e.tree.path(Env::dev(k_gpu) + "/driver")).filename(), "nvidia");
}

// Two commands run at once.
void both(Env& e, const std::vector<std::string>& a, const std::set<int>& ea,
          const std::vector<std::string>& b, const std::set<int>& eb) {
    Outcome oa, ob;
    std::thread ta([&] { oa = run(e, a); });
    std::thread tb([&] { ob = run(e, b); });
    ta.join();
    tb.join();
    {
        SCOPED_TRACE("first of two at once");
        expect_sound(e, a, oa, ea);
    }
    {
        SCOPED_TRACE("second of two at once");
        expect_sound(e, b, ob, eb);
    }
}

// vfioctl --root TREE ARGS started, killed with SIGKILL after `ms`
// milliseconds (if it still runs), and reaped. False when it had ended.
bool kill_after(Env& e, const std::vector<std::string>& args, int ms) {
    std::vector<std::string> argv = {VFIOCTL_BINARY, "--root", e.tree.root_str()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> envs;
    for (char** p = environ; *p; ++p)
        envs.emplace_back(*p);
    for (const auto& x : child_env(e))
        envs.push_back(x);
    std::vector<char*> av, ev;
    for (auto& s : argv)
        av.push_back(s.data());
    av.push_back(nullptr);
    for (auto& s : envs)
        ev.push_back(s.data());
    ev.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd : {0, 1, 2})
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, av[0], &fa, nullptr, av.data(), ev.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("posix_spawn failed");
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    int st = 0;
    const bool running = ::waitpid(pid, &st, WNOHANG) == 0;
    if (running) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &st, 0);
    }
    if (const char* show = std::getenv("HOSTILE_SHOW"); show && *show == '1')
        std::fprintf(stderr, "--- killed after %d ms: %s\n", ms,
                     running ? "while running" : "had ended");
    return running;
}

std::vector<Case> concurrency_cases() {
    std::vector<Case> v;
    const std::vector<std::string> bind = {"--json", "bind", "--timeout", "1", k_gpu};
    v.push_back(Case{.name = "two_binds_at_once", .mutate = plant_vfio, .body = [bind](Env& e) {
                         both(e, bind, {1}, bind, {1});
                         expect_journal_valid(e);
                         expect_recovered(e);
                     }});
    v.push_back(
        Case{.name = "bind_and_recover_at_once", .mutate = plant_vfio, .body = [bind](Env& e) {
                 both(e, bind, {1}, {"--json", "recover", "--timeout", "1"}, {0, 1});
                 expect_journal_valid(e);
                 expect_recovered(e);
             }});
    v.push_back(
        Case{.name = "bind_and_unbind_all_at_once", .mutate = plant_vfio, .body = [bind](Env& e) {
                 both(e, bind, {1}, {"--json", "unbind", "--all", "--timeout", "1"}, {0, 1});
                 expect_journal_valid(e);
                 expect_recovered(e);
             }});
    v.push_back(Case{.name = "status_during_bind", .mutate = plant_vfio, .body = [bind](Env& e) {
                         both(e, bind, {1}, {"--json", "status"}, {0, 3});
                         expect_recovered(e);
                     }});
    // Two enables at once: they serialize on boot.lock; the second finds
    // nothing to change (0) or waits out the lock (1). One revert restores.
    v.push_back(
        Case{.name = "two_enables_at_once", .host = "seed_before", .body = [](Env& e) {
                 const std::string grub = e.tree.read("/etc/default/grub");
                 both(e, {"iommu", "enable", "--permanent", "--yes"}, {0, 1},
                      {"iommu", "enable", "--permanent", "--yes"}, {0, 1});
                 const std::string now = e.tree.read("/etc/default/grub");
                 EXPECT_NE(now.find("intel_iommu=on"), std::string::npos) << now;
                 EXPECT_EQ(now.find("intel_iommu=on intel_iommu=on"), std::string::npos) << now;
                 EXPECT_TRUE(json::accept(e.tree.read("/var/lib/vfioctl/boot-journal.json")));
                 const std::vector<std::string> args = {"iommu", "revert", "--yes"};
                 expect_sound(e, args, run(e, args), {0});
                 EXPECT_EQ(e.tree.read("/etc/default/grub"), grub);
             }});
    // A bind killed at a point in its run (it takes tens of milliseconds on
    // a fixture): recover restores.
    for (int ms : {0, 3, 8, 15, 25, 40}) {
        v.push_back(Case{.name = "bind_killed_after_" + std::to_string(ms) + "ms_then_recover",
                         .mutate = plant_vfio,
                         .body = [ms](Env& e) {
                             (void)kill_after(e, {"bind", "--timeout", "1", k_gpu}, ms);
                             expect_journal_valid(e);
                             expect_recovered(e);
                         }});
    }
    // A recover killed half-way, then recover again.
    v.push_back(Case{.name = "recover_killed_then_recover",
                     .mutate =
                         [](Env& e) {
                             plant_vfio(e);
                             e.tree.write(k_override, "vfio-pci\n");
                             e.tree.write(k_journal, json{{"format", 1},
                                                          {"devices",
                                                           {{{"address", k_gpu},
                                                             {"group", 165},
                                                             {"original_driver", "nvidia"},
                                                             {"original_override", nullptr},
                                                             {"phase", "bound"},
                                                             {"since", ""}}}}}
                                                         .dump());
                         },
                     .body =
                         [](Env& e) {
                             (void)kill_after(e, {"recover", "--timeout", "1"}, 2);
                             expect_journal_valid(e);
                             expect_recovered(e);
                         }});
    // An 'iommu enable' killed at a point: the GRUB file is the old one or
    // the new one, never a mix; show answers; revert restores the old.
    for (int ms : {1, 5, 12, 30}) {
        v.push_back(Case{.name = "enable_killed_after_" + std::to_string(ms) + "ms",
                         .host = "seed_before",
                         .body = [ms](Env& e) {
                             const std::string grub = e.tree.read("/etc/default/grub");
                             std::string enabled = grub;
                             enabled.replace(enabled.find("intel_iommu=off"), 15, "intel_iommu=on");
                             (void)kill_after(e, {"iommu", "enable", "--permanent", "--yes"}, ms);
                             const std::string now = e.tree.read("/etc/default/grub");
                             EXPECT_TRUE(now == grub || now == enabled) << now;
                             const std::vector<std::string> show = {"--json", "iommu", "show"};
                             expect_sound(e, show, run(e, show), {0});
                             if (now == enabled) {
                                 const std::vector<std::string> rv = {"iommu", "revert", "--yes"};
                                 expect_sound(e, rv, run(e, rv), {0});
                                 EXPECT_EQ(e.tree.read("/etc/default/grub"), grub);
                             }
                         }});
    }
    return v;
}

} // namespace

INSTANTIATE_TEST_SUITE_P(Concurrency, Hostile, testing::ValuesIn(concurrency_cases()), case_name);

} // namespace vfioctl::hostile
