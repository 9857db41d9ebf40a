#pragma once
// Owned file descriptors: closed by their owner, never by hand.

#include "util/result.hpp"

namespace vfioctl::host {

// An owned file descriptor, closed when destroyed; -1 owns nothing.
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : m_fd(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : m_fd(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const { return m_fd; }
    explicit operator bool() const { return m_fd >= 0; }
    // Gives the descriptor up without closing it.
    int release() {
        int fd = m_fd;
        m_fd = -1;
        return fd;
    }
    // Closes the descriptor held (if any) and takes fd; errno is kept.
    void reset(int fd = -1);

  private:
    int m_fd = -1;
};

// Both ends of a close-on-exec pipe.
struct Pipe {
    UniqueFd read;
    UniqueFd write;
};

// A pipe2(O_CLOEXEC); an Error with errno when it cannot be made.
Result<Pipe> make_pipe();

} // namespace vfioctl::host
