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

namespace vfioctl::vm {

Result<pid_t> spawn(const std::vector<std::string>& argv, const SpawnIo& io) {
    auto child = host::Process::spawn(argv, io);
    if (!child) return child.error();
    return child->release();
}

std::optional<int> wait_child(pid_t pid, int timeout_ms) {
    return host::wait_pid(pid, timeout_ms);
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
    host::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return true;
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
}

} // namespace vfioctl::vm
