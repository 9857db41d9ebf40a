// host::write_file_atomic, the one whole-file replacement every writer uses
// (state files, boot files, the VM record, the kernel cache): the old file
// stays whole and no temporary file is left on every failure before the
// rename; a short write is continued; a killed run's temporary file does not
// block the next write. The directory's fsync is not observable here.

#include "boot_test_helpers.hpp"
#include "fixture/fixture.hpp"
#include "host/atomic_file.hpp"
#include "host/host.hpp"
#include "util/fault.hpp"

#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <set>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace vfioctl;
namespace fs = std::filesystem;

namespace {

using boottest::slurp;

std::set<std::string> names_in(const fs::path& dir) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        out.insert(e.path().filename().string());
    return out;
}

// A directory with file "f" holding "old", open for write_file_atomic.
struct Dir {
    fixture::TempDir tmp;
    int fd = -1;
    Dir() {
        std::ofstream(tmp.path / "f") << "old";
        fd = ::open(tmp.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    ~Dir() { ::close(fd); }
    std::string shown() const { return (tmp.path / "f").string(); }
};

// A file size limit for this process (the soft one, so it can be put back).
struct FileSizeLimit {
    rlimit old{};
    void (*old_handler)(int);
    explicit FileSizeLimit(rlim_t bytes) {
        ::getrlimit(RLIMIT_FSIZE, &old);
        rlimit rl = old;
        rl.rlim_cur = bytes;
        ::setrlimit(RLIMIT_FSIZE, &rl);
        old_handler = ::signal(SIGXFSZ, SIG_IGN);
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &old);
        ::signal(SIGXFSZ, old_handler);
    }
};

TEST(AtomicFile, ReplacesTheFilePassingEveryStepAndLeavesNoTemp) {
    Dir d;
    ASSERT_GE(d.fd, 0);
    util::disarm_fault_points();
    auto st = host::write_file_atomic(d.fd, "f", "new\n", d.shown(), {.fault_prefix = "t"});
    ASSERT_TRUE(st.ok()) << st.error().describe();
    EXPECT_EQ(slurp(d.tmp.path / "f"), "new\n");
    EXPECT_EQ(names_in(d.tmp.path), std::set<std::string>{"f"});
    for (const char* step :
         {"temp.created", "temp.written", "temp.synced", "renamed", "dir.synced"})
        EXPECT_EQ(util::fault_point_passes(std::string("t.") + step), 1) << step;
    // A new file, with the mode asked for.
    const mode_t old_umask = ::umask(022);
    st = host::write_file_atomic(d.fd, "g", "", (d.tmp.path / "g").string(), {.mode = 0600});
    ::umask(old_umask);
    ASSERT_TRUE(st.ok()) << st.error().describe();
    EXPECT_EQ(fs::status(d.tmp.path / "g").permissions(),
              fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_EQ(slurp(d.tmp.path / "g"), "");
}

// RLIMIT_FSIZE makes the first write(2) short (it stops at the limit) and
// the next one fail with EFBIG: only a loop that continues a short write
// sees that error, and the old file must come through whole.
TEST(AtomicFile, AShortWriteIsContinuedAndAFailedWriteKeepsTheOldFile) {
    Dir d;
    ASSERT_GE(d.fd, 0);
    const std::string big(64 * 1024, 'x');
    Status st;
    {
        FileSizeLimit limit(4096);
        st = host::write_file_atomic(d.fd, "f", big, d.shown());
        // Under the limit it still writes.
        ASSERT_TRUE(
            host::write_file_atomic(d.fd, "small", "fits", (d.tmp.path / "small").string()).ok());
    }
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().errnum, EFBIG) << st.error().describe();
    EXPECT_EQ(st.error().message, "cannot write");
    EXPECT_EQ(st.error().path, d.shown());
    EXPECT_EQ(slurp(d.tmp.path / "f"), "old");
    EXPECT_EQ(slurp(d.tmp.path / "small"), "fits");
    EXPECT_EQ(names_in(d.tmp.path), (std::set<std::string>{"f", "small"}));
}

TEST(AtomicFile, AFailedPrepareAbandonsTheWrite) {
    Dir d;
    ASSERT_GE(d.fd, 0);
    int seen = -1;
    host::AtomicWrite how;
    how.prepare = [&seen](int fd) -> Status {
        seen = fd;
        return Error{"cannot keep owner and mode for", "f", {}, EPERM};
    };
    auto st = host::write_file_atomic(d.fd, "f", "new", d.shown(), how);
    ASSERT_FALSE(st.ok());
    EXPECT_GE(seen, 0);
    EXPECT_EQ(st.error().errnum, EPERM);
    EXPECT_EQ(st.error().message, "cannot keep owner and mode for");
    EXPECT_EQ(slurp(d.tmp.path / "f"), "old");
    EXPECT_EQ(names_in(d.tmp.path), std::set<std::string>{"f"});
}

TEST(AtomicFile, AFailedRenameRemovesTheTemp) {
    Dir d;
    ASSERT_GE(d.fd, 0);
    fs::create_directories(d.tmp.path / "dir" / "sub");
    auto st = host::write_file_atomic(d.fd, "dir", "new", (d.tmp.path / "dir").string());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message, "cannot replace") << st.error().describe();
    EXPECT_TRUE(fs::is_directory(d.tmp.path / "dir" / "sub"));
    EXPECT_EQ(names_in(d.tmp.path), (std::set<std::string>{"dir", "f"}));
}

TEST(AtomicFile, NoDirectoryIsAnErrorNamingIt) {
    fixture::TempDir tmp;
    const std::string path = (tmp.path / "missing" / "f").string();
    auto st = host::write_file_atomic(path, "x");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().errnum, ENOENT);
    EXPECT_EQ(st.error().message, "cannot create a temporary file in");
    EXPECT_EQ(st.error().path, (tmp.path / "missing").string());
}

// Killed (fault point) at each step: the file is the old one or the whole
// new one, and the next write succeeds although the killed run's temporary
// file (a fixed name, as Host::write_atomic's) is still there.
TEST(AtomicFile, AKilledWriteLeavesOldOrNewAndDoesNotBlockTheNext) {
    for (const char* step :
         {"temp.created", "temp.written", "temp.synced", "renamed", "dir.synced"}) {
        SCOPED_TRACE(step);
        Dir d;
        ASSERT_GE(d.fd, 0);
        const host::AtomicWrite how{.temp_name = ".f.tmp", .fault_prefix = "k"};
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            util::arm_fault_point(std::string("k.") + step);
            (void)host::write_file_atomic(d.fd, "f", "new", d.shown(), how);
            ::_exit(0);
        }
        int wst = 0;
        ASSERT_EQ(::waitpid(pid, &wst, 0), pid);
        ASSERT_TRUE(WIFEXITED(wst));
        ASSERT_EQ(WEXITSTATUS(wst), 86);
        const std::string now = slurp(d.tmp.path / "f");
        const bool renamed =
            std::string_view(step) == "renamed" || std::string_view(step) == "dir.synced";
        EXPECT_EQ(now, renamed ? "new" : "old");
        EXPECT_EQ(fs::exists(d.tmp.path / ".f.tmp"), !renamed);
        auto st = host::write_file_atomic(d.fd, "f", "newer", d.shown(), how);
        ASSERT_TRUE(st.ok()) << st.error().describe();
        EXPECT_EQ(slurp(d.tmp.path / "f"), "newer");
        EXPECT_EQ(names_in(d.tmp.path), std::set<std::string>{"f"});
    }
}

// A temporary name that is a link is never written through.
TEST(AtomicFile, ATempNameThatIsALinkIsNotFollowed) {
    Dir d;
    ASSERT_GE(d.fd, 0);
    fixture::TempDir other;
    std::ofstream(other.path / "target") << "untouched";
    fs::create_symlink(other.path / "target", d.tmp.path / ".f.tmp");
    auto st = host::write_file_atomic(d.fd, "f", "new", d.shown(), {.temp_name = ".f.tmp"});
    ASSERT_TRUE(st.ok()) << st.error().describe();
    EXPECT_EQ(slurp(other.path / "target"), "untouched");
    EXPECT_EQ(slurp(d.tmp.path / "f"), "new");
    EXPECT_FALSE(fs::is_symlink(d.tmp.path / "f"));
    EXPECT_EQ(names_in(d.tmp.path), std::set<std::string>{"f"});
}

// Host::write_atomic goes through it, inside the root, with its mode.
TEST(AtomicFile, HostWriteAtomicUnderARoot) {
    fixture::TempDir root;
    fs::create_directories(root.path / "var/lib/vfioctl");
    host::Host h(root.path);
    auto st = h.write_atomic("/var/lib/vfioctl/journal.json", "{}\n", 0600);
    ASSERT_TRUE(st.ok()) << st.error().describe();
    const fs::path p = root.path / "var/lib/vfioctl/journal.json";
    EXPECT_EQ(slurp(p), "{}\n");
    EXPECT_EQ(fs::status(p).permissions(), fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_EQ(names_in(p.parent_path()), std::set<std::string>{"journal.json"});
    auto missing = h.write_atomic("/nowhere/journal.json", "{}\n");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().errnum, ENOENT);
    EXPECT_FALSE(fs::exists(root.path / "nowhere"));
}

} // namespace
