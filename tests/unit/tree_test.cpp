// host::Tree on its own: run() on host::Process (exit codes, output, the
// timeout, a missing program) and the user's files a profile is read from.

#include "fixture/fixture.hpp"
#include "host/tree.hpp"
#include "vm/profile.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <gtest/gtest.h>

using namespace vfioctl;
namespace fs = std::filesystem;

namespace {

size_t open_fds() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

TEST(TreeRun, ExitCodeAndOutputTogether) {
    host::Tree live;
    auto r = live.run({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, 5000);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->exit_code, 3);
    EXPECT_EQ(r->output, "out\nerr\n");
}

TEST(TreeRun, AMissingProgramExits127) {
    host::Tree live;
    auto r = live.run({"/nonexistent/vfioctl-no-such-program"}, 5000);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->exit_code, 127);
    EXPECT_EQ(r->output, "");
}

TEST(TreeRun, KilledBySignalIsMinusOne) {
    host::Tree live;
    auto r = live.run({"/bin/sh", "-c", "kill -9 $$"}, 5000);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->exit_code, -1);
}

TEST(TreeRun, TimesOutAndLeavesNoDescriptor) {
    host::Tree live;
    const size_t before = open_fds();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = live.run({"/bin/sleep", "5"}, 100);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "timed out after 100 ms");
    EXPECT_EQ(open_fds(), before);
}

TEST(TreeRun, RefusedOnARecordedTree) {
    fixture::TempDir dir;
    host::Tree recorded(dir.path);
    auto r = recorded.run({"/bin/true"}, 1000);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("recorded host"), std::string::npos);
}

// The user's profile comes from the tree the caller passes; /etc from the host.
TEST(TreeProfile, UserFilesComeFromTheTreePassed) {
    if (fs::exists("/cfg/vfioctl/vms/dev.toml"))
        GTEST_SKIP() << "this machine has /cfg/vfioctl/vms/dev.toml itself";
    fixture::HostTree host_tree, user_tree;
    host_tree.write("/etc/vfioctl/vms/dev.toml", "cpus = 3\n");
    user_tree.write("/cfg/vfioctl/vms/dev.toml", "cpus = 5\n");
    ::setenv("XDG_CONFIG_HOME", "/cfg", 1);
    host::Tree h(host_tree.root()), user(user_tree.root());
    auto mine = vm::load_profile(h, user, "dev", false);
    auto plain = vm::load_profile(h, "dev", false);
    ::unsetenv("XDG_CONFIG_HOME");
    ASSERT_TRUE(mine.ok()) << mine.error().describe();
    EXPECT_EQ(mine->cpus, 5);
    EXPECT_EQ(mine->source, "/cfg/vfioctl/vms/dev.toml");
    // Without a tree of the user's files they are read from "/", where
    // /cfg holds none: the host's /etc profile is found.
    ASSERT_TRUE(plain.ok()) << plain.error().describe();
    EXPECT_EQ(plain->cpus, 3);
}

} // namespace
