// host::Process and host::UniqueFd: spawning real programs, exec failures as
// Errors, bounded waits, kill and reap, and no descriptor left open.

#include "host/process.hpp"
#include "host/unique_fd.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace vfioctl;
namespace fs = std::filesystem;

namespace {

// The number of descriptors this process has open now.
size_t open_fds() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

// True while fd is an open descriptor of this process.
bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

TEST(UniqueFd, ClosesWhenDestroyed) {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(raw, 0);
    {
        host::UniqueFd fd(raw);
        EXPECT_TRUE(fd);
        EXPECT_EQ(fd.get(), raw);
        EXPECT_TRUE(fd_open(raw));
    }
    EXPECT_FALSE(fd_open(raw));
}

TEST(UniqueFd, MoveTransfersOwnershipAndReleaseGivesItUp) {
    host::UniqueFd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    const int raw = a.get();
    host::UniqueFd b(std::move(a));
    EXPECT_FALSE(a);
    EXPECT_EQ(b.get(), raw);
    host::UniqueFd c;
    c = std::move(b);
    EXPECT_EQ(c.get(), raw);
    EXPECT_TRUE(fd_open(raw));
    const int given = c.release();
    EXPECT_FALSE(c);
    EXPECT_TRUE(fd_open(given));
    ::close(given);
}

TEST(UniqueFd, ResetClosesTheOldOne) {
    host::UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    const int first = fd.get();
    fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    // The new descriptor was opened while the old one was still open.
    EXPECT_NE(fd.get(), -1);
    EXPECT_NE(fd.get(), first);
    EXPECT_FALSE(fd_open(first));
    fd.reset();
    EXPECT_FALSE(fd);
}

TEST(Pipe, IsCloseOnExecAtBothEnds) {
    auto p = host::make_pipe();
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_TRUE(::fcntl(p->read.get(), F_GETFD) & FD_CLOEXEC);
    EXPECT_TRUE(::fcntl(p->write.get(), F_GETFD) & FD_CLOEXEC);
}

TEST(Process, TrueExitsZeroAndFalseOne) {
    auto t = host::Process::spawn({"/bin/true"});
    ASSERT_TRUE(t.ok()) << t.error().describe();
    EXPECT_GT(t->pid(), 0);
    EXPECT_EQ(t->wait(-1), 0);
    EXPECT_EQ(t->pid(), -1);
    EXPECT_FALSE(t->killed_by_signal());
    // The code stays once reaped.
    EXPECT_EQ(t->wait(0), 0);

    auto f = host::Process::spawn({"/bin/false"});
    ASSERT_TRUE(f.ok()) << f.error().describe();
    EXPECT_EQ(f->wait(10000), 1);
}

TEST(Process, AMissingProgramIsAnError) {
    auto p = host::Process::spawn({"/nonexistent/vfioctl-no-such-program"});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message, "cannot execute");
    EXPECT_EQ(p.error().path, "/nonexistent/vfioctl-no-such-program");
    EXPECT_EQ(p.error().errnum, ENOENT);
}

TEST(Process, AFailedBeforeExecIsAnErrorThatSaysWhat) {
    host::SpawnIo io;
    io.before_exec = [] { return EPERM; };
    io.before_exec_what = "drop privileges";
    auto p = host::Process::spawn({"/bin/true"}, io);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message, "cannot drop privileges");
    EXPECT_EQ(p.error().errnum, EPERM);
}

TEST(Process, NothingToRunIsAnError) {
    EXPECT_FALSE(host::Process::spawn({}).ok());
}

TEST(Process, TimedWaitReturnsNothingWhileItRunsThenKillAndReap) {
    auto p = host::Process::spawn({"/bin/sleep", "5"});
    ASSERT_TRUE(p.ok()) << p.error().describe();
    const pid_t pid = p->pid();
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(p->wait(100).has_value());
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(waited, std::chrono::milliseconds(100));
    EXPECT_LT(waited, std::chrono::milliseconds(2000));
    EXPECT_EQ(p->pid(), pid);
    ASSERT_TRUE(p->kill(SIGKILL));
    EXPECT_EQ(p->wait(5000), 128 + SIGKILL);
    EXPECT_TRUE(p->killed_by_signal());
    // Reaped: the pid is no child of ours any more, and kill has no target.
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
    EXPECT_FALSE(p->kill(SIGKILL));
}

TEST(Process, DestroyingARunningOneKillsAndReapsIt) {
    pid_t pid = -1;
    {
        auto p = host::Process::spawn({"/bin/sleep", "30"});
        ASSERT_TRUE(p.ok()) << p.error().describe();
        pid = p->pid();
    }
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
    EXPECT_NE(::kill(pid, 0), 0);
}

TEST(Process, ReleasedChildIsLeftToTheCaller) {
    pid_t pid = -1;
    {
        auto p = host::Process::spawn({"/bin/sleep", "30"});
        ASSERT_TRUE(p.ok()) << p.error().describe();
        pid = p->release();
        EXPECT_EQ(p->pid(), -1);
    }
    EXPECT_EQ(::kill(pid, 0), 0);
    ::kill(pid, SIGKILL);
    EXPECT_EQ(host::wait_pid(pid, 5000), 128 + SIGKILL);
}

TEST(Process, StreamsGoWhereAsked) {
    auto out = host::make_pipe();
    ASSERT_TRUE(out.ok());
    host::SpawnIo io;
    io.out = out->write.get();
    auto p = host::Process::spawn({"/bin/echo", "hello"}, io);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    out->write.reset();
    char buf[16] = {};
    ssize_t n = ::read(out->read.get(), buf, sizeof buf - 1);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "hello\n");
    EXPECT_EQ(p->wait(5000), 0);
}

TEST(Process, LeavesNoDescriptorOpen) {
    const size_t before = open_fds();
    {
        auto ok = host::Process::spawn({"/bin/true"});
        ASSERT_TRUE(ok.ok());
        EXPECT_EQ(ok->wait(5000), 0);
        auto missing = host::Process::spawn({"/nonexistent/vfioctl-no-such-program"});
        EXPECT_FALSE(missing.ok());
        auto running = host::Process::spawn({"/bin/sleep", "5"});
        ASSERT_TRUE(running.ok());
        auto p = host::make_pipe();
        ASSERT_TRUE(p.ok());
    }
    EXPECT_EQ(open_fds(), before);
}

TEST(Process, MoveAssignmentKillsAndReapsTheOneHeld) {
    auto a = host::Process::spawn({"/bin/sleep", "30"});
    auto b = host::Process::spawn({"/bin/true"});
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok());
    const pid_t old = a->pid();
    *a = std::move(*b);
    EXPECT_EQ(::waitpid(old, nullptr, WNOHANG), -1);
    EXPECT_EQ(b->pid(), -1);
    EXPECT_EQ(a->wait(5000), 0);
}

TEST(WaitPid, NoChildOfOursIsMinusOne) {
    EXPECT_EQ(host::wait_pid(1, 0), -1);
}

} // namespace
