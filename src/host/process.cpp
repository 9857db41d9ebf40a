#include "host/process.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace vfioctl::host {

namespace {

// waitpid for at most timeout_ms (-1: forever): the raw status, -1 when pid
// is no child of ours, nullopt while it runs.
std::optional<int> wait_raw(pid_t pid, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    int delay_ms = 1;
    for (;;) {
        int st = 0;
        pid_t r = ::waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid) return st;
        if (r < 0 && errno != EINTR) return -1;
        if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        if (timeout_ms >= 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            delay_ms = std::min(delay_ms * 2, 20);
        }
    }
}

// The exit code of a raw status, 128+signal when a signal ended it.
int exit_code(int st) {
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

} // namespace

std::optional<int> wait_pid(pid_t pid, int timeout_ms) {
    auto st = wait_raw(pid, timeout_ms);
    if (!st || *st == -1) return st;
    return exit_code(*st);
}

Result<Process> Process::spawn(const std::vector<std::string>& argv, const SpawnIo& io) {
    if (argv.empty()) return Error{"nothing to run", {}, {}, 0};
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    auto errpipe = make_pipe();
    if (!errpipe) return errpipe.error();
    const pid_t pid = ::fork();
    if (pid < 0) return system_error("cannot fork", argv[0]);
    if (pid == 0) {
        if (io.in >= 0) ::dup2(io.in, 0);
        if (io.out >= 0) ::dup2(io.out, 1);
        if (io.err >= 0) ::dup2(io.err, 2);
        // {stage, errno}: 0 before_exec, 1 execve.
        int fail[2] = {0, io.before_exec ? io.before_exec() : 0};
        if (fail[1] == 0) {
            ::execve(args[0], args.data(), environ);
            fail[0] = 1;
            fail[1] = errno;
        }
        (void)!::write(errpipe->write.get(), fail, sizeof fail);
        ::_exit(127);
    }
    Process child(pid);
    errpipe->write.reset();
    int fail[2] = {0, 0};
    ssize_t n;
    while ((n = ::read(errpipe->read.get(), fail, sizeof fail)) < 0 && errno == EINTR) {
    }
    if (n == static_cast<ssize_t>(sizeof fail)) {
        child.wait(-1);
        return fail[0] == 0 ? system_error("cannot " + io.before_exec_what, argv[0], fail[1])
                            : system_error("cannot execute", argv[0], fail[1]);
    }
    return child;
}

Process& Process::operator=(Process&& o) noexcept {
    if (this != &o) {
        if (m_pid > 0) {
            kill(SIGKILL);
            wait(-1);
        }
        m_pid = o.release();
        m_status = o.m_status;
        m_signaled = o.m_signaled;
    }
    return *this;
}

Process::~Process() {
    if (m_pid > 0) {
        kill(SIGKILL);
        wait(-1);
    }
}

std::optional<int> Process::wait(int timeout_ms) {
    if (m_pid <= 0) return m_status;
    auto st = wait_raw(m_pid, timeout_ms);
    if (!st) return std::nullopt;
    m_pid = -1;
    m_signaled = *st != -1 && WIFSIGNALED(*st);
    m_status = *st == -1 ? -1 : exit_code(*st);
    return m_status;
}

bool Process::kill(int sig) const {
    return m_pid > 0 && ::kill(m_pid, sig) == 0;
}

} // namespace vfioctl::host
