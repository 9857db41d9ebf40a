#pragma once
// Starting and watching QEMU: argv + execve only, bounded waits, and
// liveness checks for a process that is not our child (a daemonized QEMU).

#include "util/result.hpp"

#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vfioctl::vm {

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

// Starts argv[0] (an absolute path) with our environment; an Error when
// the fork fails or the program cannot be executed (reported through a
// close-on-exec pipe, so a missing program is an Error, not exit 127;
// so is a failed before_exec).
Result<pid_t> spawn(const std::vector<std::string>& argv, const SpawnIo& io = {});

// Waits for our child pid at most timeout_ms (-1: forever). Its exit code,
// 128+signal when killed, or nullopt when it is still running.
std::optional<int> wait_child(pid_t pid, int timeout_ms);

// True while pid exists and is not a zombie.
bool process_alive(pid_t pid);

// Waits at most timeout_ms for pid (not necessarily our child) to go away.
bool wait_gone(pid_t pid, int timeout_ms);

// The pid in a pidfile; nullopt when missing or garbage.
std::optional<pid_t> read_pidfile(const std::string& path);

// True when nothing listens on TCP port on any address: a bind() to it
// succeeds.
bool tcp_port_free(int port);

} // namespace vfioctl::vm
