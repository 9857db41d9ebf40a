#include "vm/process.hpp"

#include "util/strings.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace vfioctl::vm {

Result<pid_t> spawn(const std::vector<std::string>& argv, const SpawnIo& io) {
    if (argv.empty()) return Error{"nothing to run", {}, {}, 0};
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int errpipe[2];
    if (::pipe2(errpipe, O_CLOEXEC) != 0) return system_error("cannot create a pipe", "");
    pid_t pid = ::fork();
    if (pid < 0) {
        int e = errno;
        ::close(errpipe[0]);
        ::close(errpipe[1]);
        return system_error("cannot fork", argv[0], e);
    }
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
        (void)!::write(errpipe[1], fail, sizeof fail);
        ::_exit(127);
    }
    ::close(errpipe[1]);
    int fail[2] = {0, 0};
    ssize_t n;
    while ((n = ::read(errpipe[0], fail, sizeof fail)) < 0 && errno == EINTR) {
    }
    ::close(errpipe[0]);
    if (n == static_cast<ssize_t>(sizeof fail)) {
        int st;
        ::waitpid(pid, &st, 0);
        return fail[0] == 0 ? system_error("cannot " + io.before_exec_what, argv[0], fail[1])
                            : system_error("cannot execute", argv[0], fail[1]);
    }
    return pid;
}

std::optional<int> wait_child(pid_t pid, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    int delay_ms = 1;
    for (;;) {
        int st = 0;
        pid_t r = ::waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR) return -1;
        if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        delay_ms = std::min(delay_ms * 2, 20);
    }
}

bool process_alive(pid_t pid) {
    if (pid <= 0) return false;
    if (::kill(pid, 0) != 0 && errno != EPERM) return false;
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(st, line)) return true;
    auto close = line.rfind(')');
    return !(close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z');
}

bool wait_gone(pid_t pid, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (process_alive(pid)) {
        // Reap it when it happens to be our child.
        int st;
        ::waitpid(pid, &st, WNOHANG);
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

std::optional<pid_t> read_pidfile(const std::string& path) {
    std::ifstream f(path);
    std::string s;
    if (!std::getline(f, s)) return std::nullopt;
    auto n = util::parse_dec(util::trim(s));
    if (!n || *n == 0 || *n > 0x3fffffff) return std::nullopt;
    return static_cast<pid_t>(*n);
}

bool tcp_port_free(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return true;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
}

} // namespace vfioctl::vm
