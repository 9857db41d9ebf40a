#include "host/unique_fd.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace vfioctl::host {

void UniqueFd::reset(int fd) {
    if (m_fd >= 0 && m_fd != fd) {
        const int e = errno;
        ::close(m_fd);
        errno = e;
    }
    m_fd = fd;
}

Result<Pipe> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return system_error("cannot create a pipe", "");
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

} // namespace vfioctl::host
