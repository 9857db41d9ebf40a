#pragma once
// Child processes and file descriptors with owners: the one way vfioctl
// starts a program (argv + execve, never a shell), waits for it with a bound,
// kills and reaps it; every descriptor it opens is closed by its owner.

#include "host/unique_fd.hpp"
#include "util/result.hpp"

#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vfioctl::host {

// Where a spawned program's standard streams go: -1 inherits ours.
struct SpawnIo {
    int in = -1;
    int out = -1;
    int err = -1;
    // Runs in the child before execve (async-signal-safe calls only); a
    // nonzero errno it returns fails the spawn with what it says it did.
    std::function<int()> before_exec;
    std::string before_exec_what; // "cannot WHAT" in that Error
};

// Waits for our child pid at most timeout_ms (-1: forever). Its exit code,
// 128+signal when killed, -1 when it is no child of ours, or nullopt while
// it still runs.
std::optional<int> wait_pid(pid_t pid, int timeout_ms);

// A child process that this object owns: destroying a Process that was
// neither waited for nor released kills it (SIGKILL) and reaps it, so that
// no child outlives its owner by accident nor lingers as a zombie.
class Process {
  public:
    // Starts argv[0] (an absolute path) with our environment; an Error when
    // the fork fails or the program cannot be executed (reported through a
    // close-on-exec pipe, so a missing program is an Error, not exit 127; so
    // is a failed before_exec).
    static Result<Process> spawn(const std::vector<std::string>& argv, const SpawnIo& io = {});

    Process() = default;
    Process(Process&& o) noexcept
        : m_pid(o.release()), m_status(o.m_status), m_signaled(o.m_signaled) {}
    Process& operator=(Process&& o) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process();

    // The child's pid; -1 once it was reaped or released.
    pid_t pid() const { return m_pid; }
    // Waits at most timeout_ms (-1: forever), as wait_pid; once it has
    // ended the child is reaped and every later wait returns the same code.
    std::optional<int> wait(int timeout_ms);
    // True once wait() found that a signal ended the child.
    bool killed_by_signal() const { return m_signaled; }
    // Sends sig to a child not yet reaped; false when there is none.
    bool kill(int sig) const;
    // Gives up ownership: the child is neither killed nor reaped here.
    pid_t release() {
        pid_t p = m_pid;
        m_pid = -1;
        return p;
    }

  private:
    explicit Process(pid_t pid) : m_pid(pid) {}
    pid_t m_pid = -1;
    std::optional<int> m_status;
    bool m_signaled = false;
};

} // namespace vfioctl::host
