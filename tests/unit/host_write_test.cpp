// Host::write_bounded on real files: the writer child that shares the
// process's memory writes, reports open and write errors, and a write that
// blocks (a FIFO with no reader, as an unbind the kernel holds) is bounded
// and still completes with the right data after the call has returned.

#include "fixture/fixture.hpp"
#include "host/host.hpp"

#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace vfioctl;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(HostWriteBounded, WritesAndTruncates) {
    fixture::TempDir tmp;
    { std::ofstream(tmp.path / "attr") << "a much longer old value\n"; }
    host::Host h(tmp.path);
    auto st = h.write_bounded("/attr", "0000:8a:00.0", 2000);
    ASSERT_TRUE(st.ok()) << st.error().describe();
    EXPECT_EQ(slurp(tmp.path / "attr"), "0000:8a:00.0");
}

TEST(HostWriteBounded, ReportsTheOpenError) {
    fixture::TempDir tmp;
    host::Host h(tmp.path);
    auto st = h.write_bounded("/sys/bus/pci/drivers/nvidia/unbind", "0000:8a:00.0", 2000);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().errnum, ENOENT);
    EXPECT_NE(st.error().message.find("cannot open for writing"), std::string::npos)
        << st.error().describe();
    EXPECT_FALSE(fs::exists(tmp.path / "sys"));
}

TEST(HostWriteBounded, ReportsTheWriteError) {
    fixture::TempDir tmp;
    host::Host h(tmp.path);
    fs::create_directories(tmp.path / "dir");
    // Opening a directory for writing fails with EISDIR.
    auto st = h.write_bounded("/dir", "x", 2000);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().errnum, EISDIR);
}

TEST(HostWriteBounded, ABlockedWriteIsBoundedAndFinishesLater) {
    fixture::TempDir tmp;
    const fs::path fifo = tmp.path / "unbind";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    host::Host h(tmp.path);
    auto t0 = std::chrono::steady_clock::now();
    {
        // The data lives only for the call: the writer must not need it later.
        std::string data = "0000:8a:00.0";
        auto st = h.write_bounded("/unbind", data, 200);
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().errnum, ETIMEDOUT);
        EXPECT_NE(st.error().hint.find("vfioctl recover"), std::string::npos);
        data.assign(data.size(), 'X');
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
    // A reader lets the writer go on: its open returns, then its write.
    int fd = ::open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    std::string got;
    char buf[64];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    EXPECT_EQ(got, "0000:8a:00.0");
}

TEST(HostWriteBounded, RefusesTheLiveSysInTests) {
    host::Host live;
    auto st = live.write_bounded("/sys/bus/pci/drivers_probe", "0000:00:02.0", 1000);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("refused"), std::string::npos) << st.error().describe();
}

// The one live-write rule: while live writes are forbidden (test binaries),
// nothing is written through a live Host, whatever the path or the kind of
// write; a rooted tree is always written.
TEST(LiveWriteRule, EveryWriteThroughALiveHostIsRefused) {
    fixture::TempDir tmp;
    host::Host live;
    const std::string inside = (tmp.path / "made").string();
    auto refused = [](const Status& st) {
        return !st.ok() && st.error().message.find("test guard") != std::string::npos;
    };
    EXPECT_TRUE(refused(live.write(inside, "x")));
    EXPECT_TRUE(refused(live.write_bounded(inside, "x", 1000)));
    EXPECT_TRUE(refused(live.make_dirs(inside)));
    EXPECT_TRUE(refused(live.write_atomic(inside, "x")));
    EXPECT_TRUE(refused(live.remove(inside)));
    EXPECT_TRUE(refused(live.load_module("vfio_pci")));
    EXPECT_TRUE(refused(host::check_live_write(live, "/sys/bus/pci/drivers_probe")));
    EXPECT_FALSE(fs::exists(inside));

    host::Host rooted(tmp.path);
    EXPECT_TRUE(host::check_live_write(rooted, "/sys/bus/pci/drivers_probe").ok());
    EXPECT_TRUE(rooted.make_dirs("/made").ok());
    EXPECT_TRUE(fs::is_directory(tmp.path / "made"));
}

TEST(StateFiles, WriteAtomicThenRemove) {
    fixture::TempDir tmp;
    host::StateFiles files(tmp.path);
    ASSERT_TRUE(files.make_dirs("/var/lib/vfioctl").ok());
    ASSERT_TRUE(files.write_atomic("/var/lib/vfioctl/journal.json", "{}\n", 0600).ok());
    EXPECT_EQ(slurp(tmp.path / "var/lib/vfioctl/journal.json"), "{}\n");
    struct stat st {};
    ASSERT_EQ(::stat((tmp.path / "var/lib/vfioctl/journal.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_FALSE(fs::exists(tmp.path / "var/lib/vfioctl/.journal.json.tmp"));
    EXPECT_EQ(files.read("/var/lib/vfioctl/journal.json").value_or(""), "{}\n");
    ASSERT_TRUE(files.remove("/var/lib/vfioctl/journal.json").ok());
    EXPECT_FALSE(fs::exists(tmp.path / "var/lib/vfioctl/journal.json"));
    // Removing what is not there is fine.
    EXPECT_TRUE(files.remove("/var/lib/vfioctl/journal.json").ok());
}

TEST(StateFiles, MakeDirsAtMakesPlainPathsOfTheRunningMachine) {
    fixture::TempDir tmp;
    const fs::path dir = tmp.path / "x" / "y";
    ASSERT_TRUE(host::make_dirs_at(dir.string()).ok());
    EXPECT_TRUE(fs::is_directory(dir));
    EXPECT_TRUE(host::make_dirs_at(dir.string()).ok());
    { std::ofstream(tmp.path / "f") << "x"; }
    auto st = host::make_dirs_at((tmp.path / "f" / "g").string());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().path, (tmp.path / "f" / "g").string());
}

TEST(FileLockTest, SecondLockerWaitsThenFails) {
    fixture::TempDir tmp;
    host::Tree tree(tmp.path);
    auto first = host::FileLock::acquire(tree, "/lock", 100);
    ASSERT_TRUE(first.ok()) << first.error().describe();
    auto second = host::FileLock::acquire(tree, "/lock", 50);
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.error().message.find("another vfioctl"), std::string::npos);
}

} // namespace
