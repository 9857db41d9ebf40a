// 'vfioctl vm console' against a real VM: QEMU boots the stock kernel into a
// busybox shell on ttyS0, the console is attached through a pseudo-terminal
// as a user would, a command typed there runs in the guest and its output
// comes back, and Ctrl-] quits with the terminal restored. Without a
// terminal, input from a pipe goes to the guest and the answer is read until
// the console goes quiet.

#include "fixture/fixture.hpp"
#include "support.hpp"
#include "vm/guest.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sstream>
#include <sys/wait.h>
#include <termios.h>
#include <thread>
#include <unistd.h>

using namespace vfioctl;
namespace fs = std::filesystem;

namespace {

std::string stock_kernel() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/boot", ec))
        if (e.path().filename().string().rfind("vmlinuz-", 0) == 0) return e.path().string();
    return {};
}

std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A VM whose init is a busybox shell on the serial console.
class ConsoleVm : public ::testing::Test {
  protected:
    void SetUp() override {
        kernel = stock_kernel();
        if (kernel.empty() || ::access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
            GTEST_SKIP() << "no kernel or QEMU";
        std::string busybox = slurp("/bin/busybox");
        if (busybox.empty() || !vm::elf_is_static(busybox)) GTEST_SKIP() << "no static busybox";
        const std::string initrd = (dir.path / "shell.cpio").string();
        std::ofstream(initrd, std::ios::binary)
            << vm::cpio_newc({{"bin", 040755, {}},
                              {"bin/busybox", 0100755, busybox},
                              {"bin/sh", 0120777, "busybox"},
                              {"dev", 040755, {}},
                              {"dev/console", 020600, {}, 5, 1}});
        runs = (dir.path / "run").string();
        auto s = test::run_vfioctl({"vm", "start", "con", "--kernel", kernel, "--initrd", initrd,
                                    "--append", "console=ttyS0 rdinit=/bin/sh quiet no_timer_check",
                                    "--memory", "256", "--accel", "tcg", "--run-dir", runs});
        ASSERT_EQ(s.exit_code, 0) << s.err;
        started = true;
    }
    void TearDown() override {
        if (started) {
            auto stop = test::run_vfioctl({"vm", "stop", "con", "--force", "--run-dir", runs});
            EXPECT_EQ(stop.exit_code, 0) << stop.err;
        }
    }
    fixture::TempDir dir;
    std::string kernel, runs;
    bool started = false;
};

// Reads what the pty shows until `want` appears or the deadline passes;
// `poke` is written every two seconds meanwhile (the guest may still boot).
bool read_until(int fd, std::string& seen, const std::string& want, const std::string& poke,
                int seconds) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    auto next_poke = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < deadline) {
        if (seen.find(want) != std::string::npos) return true;
        if (!poke.empty() && std::chrono::steady_clock::now() >= next_poke) {
            if (::write(fd, poke.data(), poke.size()) < 0) return false;
            next_poke = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) > 0) {
            char buf[4096];
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) return seen.find(want) != std::string::npos;
            seen.append(buf, static_cast<size_t>(n));
        }
    }
    return seen.find(want) != std::string::npos;
}

TEST_F(ConsoleVm, TypedCommandRunsInTheGuestAndCtrlBracketQuits) {
    int master = -1;
    pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::execl(VFIOCTL_BINARY, VFIOCTL_BINARY, "vm", "console", "con", "--run-dir", runs.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::string seen;
    EXPECT_TRUE(read_until(master, seen, "Ctrl-] quits", "", 10)) << seen;
    // $((6*7)) only becomes 42 when the guest's shell runs it.
    EXPECT_TRUE(read_until(master, seen, "con42", "echo con$((6*7))\r", 120)) << seen;
    ASSERT_EQ(::write(master, "\x1d", 1), 1);
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 100 && done == 0; ++i) {
        done = ::waitpid(pid, &status, WNOHANG);
        if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (done == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ADD_FAILURE() << "vm console did not quit on Ctrl-]";
    } else {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
    ::close(master);
}

TEST_F(ConsoleVm, PipedInputIsAnsweredUntilTheConsoleIsQuiet) {
    // Wait for the shell through the console log, then pipe one command in.
    const std::string log = runs + "/con/console.log";
    bool up = false;
    for (int i = 0; i < 600 && !up; ++i) {
        up = slurp(log).find("job control turned off") != std::string::npos ||
             slurp(log).find("# ") != std::string::npos;
        if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_TRUE(up) << slurp(log);
    std::string out;
    for (int attempt = 0; attempt < 5 && out.find("pipe42") == std::string::npos; ++attempt) {
        auto o =
            fixture::run_program({"/bin/sh", "-c",
                                  "echo 'echo pipe$((6*7))' | '" + std::string(VFIOCTL_BINARY) +
                                      "' vm console con --run-dir '" + runs + "'"},
                                 60000);
        EXPECT_EQ(o.exit_code, 0) << o.err;
        out += o.out;
    }
    EXPECT_NE(out.find("pipe42"), std::string::npos) << out;
}

} // namespace
