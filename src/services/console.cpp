#include "services/console.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

namespace vfioctl::services {

namespace {

// How long the relay with piped input waits for more output after the
// input ended.
constexpr int k_console_quiet_ms = 1000;

} // namespace

Status relay_console(const std::string& socket, const std::string& banner) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    // A longer path is cut short and then not found: connect() reports it.
    (void)std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", socket.c_str());
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        Error e = system_error("cannot connect to the console", socket);
        if (fd >= 0) ::close(fd);
        return e;
    }
    const bool tty = ::isatty(0);
    termios saved{};
    if (tty) {
        ::tcgetattr(0, &saved);
        termios raw = saved;
        ::cfmakeraw(&raw);
        ::tcsetattr(0, TCSANOW, &raw);
        const ssize_t written = ::write(2, banner.data(), banner.size());
        (void)written;
    }
    char buf[4096];
    bool open_in = true;
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {open_in ? 0 : -1, POLLIN, 0}}; // -1: poll skips it
        // Input from a pipe or file has ended: relay the guest's answer
        // until the console has been quiet for a second.
        const int wait_ms = open_in || tty ? -1 : k_console_quiet_ms;
        int pr = ::poll(p, 2, wait_ms);
        if (pr < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pr == 0) break;
        if (p[0].revents) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            if (::write(1, buf, static_cast<size_t>(n)) < 0) break;
        }
        if (p[1].revents) {
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n <= 0) {
                open_in = false;
                continue;
            }
            if (tty && std::memchr(buf, 0x1d, static_cast<size_t>(n))) break;
            if (::write(fd, buf, static_cast<size_t>(n)) < 0) break;
        }
    }
    if (tty) ::tcsetattr(0, TCSANOW, &saved);
    ::close(fd);
    return {};
}

bool stdin_is_terminal() {
    return ::isatty(0);
}

} // namespace vfioctl::services
