#pragma once
// Starting and watching QEMU: argv + execve only, bounded waits, and
// liveness checks for a process that is not our child (a daemonized QEMU).

#include "host/process.hpp"
#include "util/result.hpp"

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vfioctl::vm {

// Where a spawned program's standard streams go (host/process.hpp).
using host::SpawnIo;

// host::Process::spawn, its child released to the caller (who waits for it
// with wait_child): an Error when the fork fails or the program cannot be
// executed.
Result<pid_t> spawn(const std::vector<std::string>& argv, const SpawnIo& io = {});

// host::wait_pid: waits for our child pid at most timeout_ms (-1: forever).
// Its exit code, 128+signal when killed, or nullopt when it is still running.
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
