#include "host/host.hpp"

#include "host/process.hpp"
#include "host/resolve.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace vfioctl::host {

using detail::have_openat2;
using detail::rel_or_dot;
using detail::walk_in_root;

namespace {
std::atomic<bool> g_forbid_live{false};
} // namespace

void forbid_live_writes() {
    g_forbid_live = true;
}

bool live_writes_forbidden() {
    if (g_forbid_live) return true;
    const char* env = std::getenv("VFIOCTL_FORBID_LIVE_WRITES");
    return env != nullptr && std::string_view(env) == "1";
}

Status check_live_write(const Tree& tree, std::string_view p) {
    if (tree.is_live() && live_writes_forbidden())
        return Error{"write to the live host refused (test guard)", std::string(p),
                     "tests must use a fixture root", 0};
    return {};
}

Status Host::write(std::string_view p, std::string_view data) const {
    if (auto st = check_live_write(*this, p); !st) return st;
    const UniqueFd fd(open(p, O_WRONLY | O_TRUNC));
    if (!fd) return system_error("cannot open for writing", std::string(p));
    ssize_t n;
    do {
        n = ::write(fd.get(), data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return system_error("write failed", std::string(p));
    if (static_cast<size_t>(n) != data.size()) return Error{"short write", std::string(p), {}, 0};
    return {};
}

namespace {

// What the writer child reports through its pipe.
struct WriteReport {
    enum Stage : int { done = 0, open_failed = 1, write_failed = 2, short_write = 3, failed = 4 };
    int stage = failed;
    int err = 0;
};

// The writer's arguments, its path and data, and its stack share one
// private mapping: it may outlive write_bounded (an unbind the kernel blocks
// on, an open that waits), so nothing of the caller's may be used after the
// call returns. The child opens path relative to dirfd, with openat2 and
// RESOLVE_IN_ROOT under a root, or with openat on a path the caller has
// already resolved inside it (or on the live host).
struct PlainWrite {
    int dirfd;
    const char* path;
    bool in_root; // openat2 with RESOLVE_IN_ROOT
    int flags;
    const char* data;
    size_t size;
    int report_fd;
};
constexpr size_t k_writer_stack = size_t{64} * 1024;

// Runs in a child that shares the parent's memory (clone(CLONE_VM)): plain
// system calls only, no allocation, no errno shared with the parent's code.
int plain_write_child(void* arg) {
    const auto* w = static_cast<const PlainWrite*>(arg);
    WriteReport r;
    long fd;
    if (w->in_root) {
        open_how how{};
        how.flags = static_cast<uint64_t>(w->flags);
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        fd = ::syscall(SYS_openat2, w->dirfd, w->path, &how, sizeof how);
    } else {
        fd = ::syscall(SYS_openat, w->dirfd, w->path, w->flags);
    }
    if (fd < 0) {
        r = {WriteReport::open_failed, errno};
    } else {
        long n;
        do {
            n = ::syscall(SYS_write, fd, w->data, w->size);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
            r = {WriteReport::write_failed, errno};
        else
            r = {static_cast<size_t>(n) == w->size ? WriteReport::done : WriteReport::short_write,
                 0};
        ::syscall(SYS_close, fd);
    }
    ::syscall(SYS_write, w->report_fd, &r, sizeof r);
    return 0;
}

} // namespace

Status Host::write_bounded(std::string_view p, std::string_view data, int timeout_ms) const {
    if (auto st = check_live_write(*this, p); !st) return st;
    auto pipe = make_pipe();
    if (!pipe) return system_error("cannot create pipe", "", pipe.error().errnum);
    pid_t pid;
    void* mapping = MAP_FAILED;
    size_t mapping_size = 0;
    if (plain_write()) {
        // A child that shares this process's memory costs far less than a
        // fork (no page tables copied, no copy-on-write faults afterwards).
        // The open runs in the child too: opening a FIFO or a driver's
        // file may itself wait.
        std::string target = is_live() ? std::string(p) : rel_or_dot(p);
        int dirfd = is_live() ? AT_FDCWD : root_fd();
        bool in_root = !is_live() && have_openat2(dirfd);
        int flags = O_WRONLY | O_TRUNC | O_CLOEXEC;
        if (!is_live() && !in_root) {
            std::string resolved;
            if (dirfd < 0 || walk_in_root(dirfd, p, true, resolved) != 0) {
                int e = dirfd < 0 ? ENOENT : errno;
                return system_error("cannot open for writing", std::string(p), e);
            }
            target = rel_or_dot(resolved);
            flags |= O_NOFOLLOW;
        }
        mapping_size = sizeof(PlainWrite) + target.size() + 1 + data.size() + k_writer_stack;
        mapping = ::mmap(nullptr, mapping_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (mapping == MAP_FAILED) {
            return system_error("cannot map the writer's stack", std::string(p));
        }
        char* base = static_cast<char*>(mapping);
        char* path_copy = base + sizeof(PlainWrite);
        std::memcpy(path_copy, target.c_str(), target.size() + 1);
        char* data_copy = path_copy + target.size() + 1;
        if (!data.empty()) std::memcpy(data_copy, data.data(), data.size());
        auto* w = new (base)
            PlainWrite{dirfd, path_copy, in_root, flags, data_copy, data.size(), pipe->write.get()};
        // The stack grows down from the mapping's end, 16-byte aligned.
        auto top = reinterpret_cast<uintptr_t>(base + mapping_size) & ~uintptr_t{15};
        // NOLINTNEXTLINE(performance-no-int-to-ptr): the aligned stack top clone(2) takes
        pid = ::clone(plain_write_child, reinterpret_cast<void*>(top), CLONE_VM | SIGCHLD, w);
    } else {
        pid = ::fork();
        if (pid == 0) {
            pipe->read.reset();
            Status st = write(p, data);
            WriteReport r{st ? WriteReport::done : WriteReport::failed, st ? 0 : st.error().errnum};
            ssize_t ignored = ::write(pipe->write.get(), &r, sizeof r);
            (void)ignored;
            ::_exit(0);
        }
    }
    if (pid < 0) {
        int e = errno;
        if (mapping != MAP_FAILED) ::munmap(mapping, mapping_size);
        return system_error("cannot start the writer", std::string(p), e);
    }
    pipe->write.reset();
    pollfd pfd{pipe->read.get(), POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    int pr;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pr = ::poll(&pfd, 1,
                    static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count())));
        if (pr >= 0 || errno != EINTR) break;
    }
    WriteReport r;
    bool reported = false;
    if (pr > 0) reported = ::read(pipe->read.get(), &r, sizeof r) == static_cast<ssize_t>(sizeof r);
    pipe->read.reset();
    if (pr == 0) {
        // The writer and its mapping stay; a detached thread reaps it once
        // the kernel lets go, so it never lingers as a zombie.
        std::thread([pid] {
            int st;
            while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
        }).detach();
        return Error{
            "the kernel has not finished this write after " + std::to_string(timeout_ms) + " ms",
            std::string(p),
            "the driver is still busy with the device (an unbind waits for every user to let "
            "go): find what uses it, then run 'vfioctl recover'",
            ETIMEDOUT};
    }
    int st;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (mapping != MAP_FAILED) ::munmap(mapping, mapping_size);
    if (!reported) return Error{"the writer process died", std::string(p), {}, 0};
    switch (r.stage) {
    case WriteReport::done:
        return {};
    case WriteReport::open_failed:
        return system_error("cannot open for writing", std::string(p), r.err);
    case WriteReport::write_failed:
        return system_error("write failed", std::string(p), r.err);
    case WriteReport::short_write:
        return Error{"short write", std::string(p), {}, 0};
    default:
        if (r.err) return system_error("write failed", std::string(p), r.err);
        return Error{"write failed", std::string(p), {}, 0};
    }
}

} // namespace vfioctl::host
