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

} // namespace
