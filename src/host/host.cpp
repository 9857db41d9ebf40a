#include "host/host.hpp"

#include "host/atomic_file.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace vfioctl::host {

struct RootFd {
    int fd = -1;
    explicit RootFd(int f) : fd(f) {}
    RootFd(const RootFd&) = delete;
    RootFd& operator=(const RootFd&) = delete;
    ~RootFd() {
        if (fd >= 0) ::close(fd);
    }
};

namespace {
std::atomic<bool> g_forbid_live{false};
std::atomic<bool> g_openat2{true};

std::string rel(std::string_view p) {
    while (!p.empty() && p.front() == '/')
        p.remove_prefix(1);
    return std::string(p);
}

// "." for the root itself, else p without its leading slashes.
std::string rel_or_dot(std::string_view p) {
    std::string r = rel(p);
    return r.empty() ? std::string(".") : r;
}

// The host path p resolves to inside the root open as root_fd, following
// links the way RESOLVE_IN_ROOT does: ".." stops at the root and an
// absolute target starts again from it. The last component is followed only
// when follow_last; when it does not exist the path is still returned (an
// O_CREAT open makes it). -1 and errno when it cannot be resolved.
int walk_in_root(int root_fd, std::string_view p, bool follow_last, std::string& out) {
    std::vector<std::string> todo; // reversed: back() is next
    auto push_all = [&todo](std::string_view path) {
        auto parts = util::split(path, '/');
        for (auto it = parts.rbegin(); it != parts.rend(); ++it)
            todo.push_back(*it);
    };
    push_all(p);
    std::vector<std::string> done;
    int links = 0;
    auto joined = [&done] {
        std::string s;
        for (const auto& c : done)
            s += "/" + c;
        return s;
    };
    while (!todo.empty()) {
        std::string comp = std::move(todo.back());
        todo.pop_back();
        if (comp.empty() || comp == ".") continue;
        if (comp == "..") {
            if (!done.empty()) done.pop_back();
            continue;
        }
        bool last = std::none_of(todo.begin(), todo.end(),
                                 [](const std::string& c) { return !c.empty() && c != "."; });
        std::string cand = joined() + "/" + comp;
        struct stat st {};
        if (::fstatat(root_fd, rel(cand).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT && last) {
                done.push_back(comp);
                break;
            }
            return -1;
        }
        if (S_ISLNK(st.st_mode) && (!last || follow_last)) {
            if (++links > 40) {
                errno = ELOOP;
                return -1;
            }
            char buf[4096];
            ssize_t n = ::readlinkat(root_fd, rel(cand).c_str(), buf, sizeof buf);
            if (n < 0) return -1;
            if (static_cast<size_t>(n) == sizeof buf) {
                errno = ENAMETOOLONG;
                return -1;
            }
            std::string_view target(buf, static_cast<size_t>(n));
            if (!target.empty() && target.front() == '/') done.clear();
            push_all(target);
            continue;
        }
        if (!last && !S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
        done.push_back(comp);
    }
    out = joined();
    if (out.empty()) out = "/";
    return 0;
}

// Whether openat2 can be used (Linux 5.6 and later); probed once.
bool have_openat2(int root_fd) {
    static std::atomic<int> known{-1};
    if (!g_openat2) return false;
    if (known < 0) {
        open_how how{};
        how.flags = O_PATH | O_CLOEXEC;
        how.resolve = RESOLVE_IN_ROOT;
        long fd = ::syscall(SYS_openat2, root_fd, ".", &how, sizeof how);
        if (fd >= 0) ::close(static_cast<int>(fd));
        known = fd >= 0 || errno != ENOSYS ? 1 : 0;
    }
    return known == 1;
}

// open(2) of host path p inside the root open as root_fd.
int open_in_root(int root_fd, std::string_view p, int flags, unsigned mode) {
    if (root_fd < 0) {
        errno = ENOENT;
        return -1;
    }
    const std::string r = rel_or_dot(p);
    if (g_openat2) {
        open_how how{};
        how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
        how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        long fd;
        do {
            fd = ::syscall(SYS_openat2, root_fd, r.c_str(), &how, sizeof how);
        } while (fd < 0 && errno == EAGAIN);
        if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
        g_openat2 = false; // an older kernel: walk from now on
    }
    std::string resolved;
    if (walk_in_root(root_fd, p, (flags & O_NOFOLLOW) == 0, resolved) != 0) return -1;
    // The walk left no link to follow; O_NOFOLLOW keeps a link swapped in
    // since from leading out.
    return ::openat(root_fd, rel_or_dot(resolved).c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode);
}

// The directory part and last component of a host path ("/a/b" -> "/a", "b").
std::pair<std::string, std::string> split_last(std::string_view p) {
    std::string s(p);
    while (s.size() > 1 && s.back() == '/')
        s.pop_back();
    auto slash = s.rfind('/');
    if (slash == std::string::npos) return {"/", s};
    return {slash == 0 ? std::string("/") : s.substr(0, slash), s.substr(slash + 1)};
}

} // namespace

void use_openat2(bool on) {
    g_openat2 = on;
}

void forbid_live_writes() {
    g_forbid_live = true;
}

bool live_writes_forbidden() {
    if (g_forbid_live) return true;
    const char* env = std::getenv("VFIOCTL_FORBID_LIVE_WRITES");
    return env != nullptr && std::string_view(env) == "1";
}

Host::Host(fs::path root) : m_root(std::move(root)) {
    std::error_code ec;
    fs::path canon = fs::canonical(m_root, ec);
    if (ec) canon = fs::absolute(m_root, ec);
    m_root_str = canon.string();
    while (!m_root_str.empty() && m_root_str.back() == '/')
        m_root_str.pop_back();
    m_live = m_root_str.empty();
    if (!m_live)
        m_root_fd = std::make_shared<const RootFd>(
            ::open(m_root_str.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
}

fs::path Host::path(std::string_view p) const {
    return fs::path(m_root_str + "/" + rel(p));
}

namespace {
// Under a root, the errno of an open that found no regular file or directory.
constexpr int k_not_regular = ENXIO;

// A recorded tree holds files, directories and links: a FIFO would block
// the open or the read for ever, a device node (/dev/zero) never ends.
// Under a root such an fd is closed and the open fails with k_not_regular.
int only_files(int fd) {
    if (fd < 0) return fd;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        ::close(fd);
        errno = k_not_regular;
        return -1;
    }
    return fd;
}
} // namespace

int Host::open(std::string_view p, int flags, unsigned mode) const {
    if (m_live) return ::open(std::string(p).c_str(), flags | O_CLOEXEC, mode);
    if (flags & O_PATH) return open_in_root(m_root_fd->fd, p, flags, mode);
    // O_NONBLOCK: opening a FIFO must not wait for its other end.
    return only_files(open_in_root(m_root_fd->fd, p, flags | O_NONBLOCK, mode));
}

Result<std::string> Host::read(std::string_view p) const {
    int fd = open(p, O_RDONLY);
    if (fd < 0 && !m_live && errno == k_not_regular)
        return Error{
            "cannot read: not a regular file (a FIFO or device node has no place in a host tree)",
            std::string(p),
            {},
            0};
    if (fd < 0) return system_error("cannot read", std::string(p));
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            return system_error("cannot read", std::string(p), e);
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

std::optional<std::string> Host::attr(std::string_view p) const {
    auto r = read(p);
    if (!r) return std::nullopt;
    // Some attributes (9p's mount_tag) end with a NUL byte: it is no part of the value.
    std::string_view v(*r);
    v = v.substr(0, v.find('\0'));
    return std::string(util::trim(v));
}

std::optional<uint64_t> Host::attr_hex(std::string_view p) const {
    auto s = attr(p);
    if (!s) return std::nullopt;
    return util::parse_hex(*s);
}

std::optional<uint64_t> Host::attr_dec(std::string_view p) const {
    auto s = attr(p);
    if (!s) return std::nullopt;
    return util::parse_dec(*s);
}

Result<std::string> Host::read_link(std::string_view p) const {
    // readlink(2) directly: std::filesystem::read_symlink stats first, and
    // sysfs trees are read link by link.
    char buf[4096];
    ssize_t n;
    if (m_live) {
        n = ::readlink(std::string(p).c_str(), buf, sizeof buf);
    } else {
        auto [dir, name] = split_last(p);
        int dfd =
            name.empty() || name == "." || name == ".." ? -1 : open(dir, O_PATH | O_DIRECTORY);
        if (dfd < 0) {
            if (errno == 0 || name.empty() || name == "." || name == "..") errno = EINVAL;
            return system_error("cannot read link", std::string(p));
        }
        n = ::readlinkat(dfd, name.c_str(), buf, sizeof buf);
        int e = errno;
        ::close(dfd);
        errno = e;
    }
    if (n < 0) return system_error("cannot read link", std::string(p));
    if (static_cast<size_t>(n) == sizeof buf)
        return Error{"link target too long", std::string(p), {}, 0};
    return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> Host::link_name(std::string_view p) const {
    auto t = read_link(p);
    if (!t) return std::nullopt;
    std::string name = fs::path(*t).filename().string();
    if (name.empty()) return std::nullopt;
    return name;
}

Result<std::string> Host::resolve(std::string_view p) const {
    if (!m_live) {
        std::string out;
        if (walk_in_root(m_root_fd->fd, p, true, out) != 0)
            return system_error("cannot resolve", std::string(p));
        struct stat st {};
        if (::fstatat(m_root_fd->fd, rel_or_dot(out).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return system_error("cannot resolve", std::string(p));
        return out;
    }
    std::error_code ec;
    fs::path canon = fs::canonical(path(p), ec);
    if (ec) return system_error("cannot resolve", std::string(p), ec.value());
    std::string s = canon.string();
    if (m_live) return s;
    if (s.compare(0, m_root_str.size(), m_root_str) != 0 ||
        (s.size() > m_root_str.size() && s[m_root_str.size()] != '/'))
        return Error{"link leads outside the host root", std::string(p), {}, 0};
    s.erase(0, m_root_str.size());
    return s.empty() ? std::string("/") : s;
}

Result<Dir> Host::open_dir(std::string_view p) const {
    int fd = open(p, O_PATH | O_DIRECTORY);
    if (fd < 0) return system_error("cannot open directory", std::string(p));
    return Dir(fd, std::string(p), m_root_fd);
}

Dir::~Dir() {
    if (m_fd >= 0) ::close(m_fd);
}

std::optional<std::string> Dir::attr(const char* name) const {
    // Under a root, an attribute that is a link is resolved inside it.
    int fd = ::openat(m_fd, name, O_RDONLY | O_CLOEXEC | (m_root ? O_NOFOLLOW | O_NONBLOCK : 0));
    if (fd < 0 && m_root && errno == ELOOP)
        fd = open_in_root(m_root->fd, m_path + "/" + name, O_RDONLY | O_NONBLOCK, 0);
    if (m_root) fd = only_files(fd);
    if (fd < 0) return std::nullopt;
    char buf[4096];
    ssize_t n;
    do {
        n = ::read(fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    if (n < 0) return std::nullopt;
    return std::string(util::trim(std::string_view(buf, static_cast<size_t>(n))));
}

Result<std::string> Dir::read_link(const char* name) const {
    char buf[4096];
    ssize_t n = ::readlinkat(m_fd, name, buf, sizeof buf);
    if (n < 0) return system_error("cannot read link", m_path + "/" + name);
    if (static_cast<size_t>(n) == sizeof buf)
        return Error{"link target too long", m_path + "/" + name, {}, 0};
    return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> Dir::link_name(const char* name) const {
    char buf[4096];
    ssize_t n = ::readlinkat(m_fd, name, buf, sizeof buf);
    if (n <= 0 || static_cast<size_t>(n) == sizeof buf) return std::nullopt;
    std::string_view t(buf, static_cast<size_t>(n));
    auto slash = t.rfind('/');
    std::string last(slash == std::string_view::npos ? t : t.substr(slash + 1));
    if (last.empty()) return std::nullopt;
    return last;
}

bool Host::exists(std::string_view p) const {
    std::error_code ec;
    if (m_live) return fs::exists(path(p), ec);
    int fd = open(p, O_PATH);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

bool Host::is_link(std::string_view p) const {
    std::error_code ec;
    if (m_live) return fs::is_symlink(path(p), ec);
    int fd = open(p, O_PATH | O_NOFOLLOW);
    if (fd < 0) return false;
    struct stat st {};
    bool link = ::fstat(fd, &st) == 0 && S_ISLNK(st.st_mode);
    ::close(fd);
    return link;
}

bool Host::is_dir(std::string_view p) const {
    std::error_code ec;
    if (m_live) return fs::is_directory(path(p), ec);
    int fd = open(p, O_PATH | O_DIRECTORY);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

Result<std::vector<std::string>> Host::list(std::string_view p) const {
    if (!m_live) {
        int fd = open(p, O_RDONLY | O_DIRECTORY);
        if (fd < 0) return system_error("cannot list", std::string(p));
        DIR* d = ::fdopendir(fd);
        if (!d) {
            int e = errno;
            ::close(fd);
            return system_error("cannot list", std::string(p), e);
        }
        std::vector<std::string> names;
        errno = 0;
        while (dirent* ent = ::readdir(d)) {
            std::string_view n(ent->d_name);
            if (n != "." && n != "..") names.emplace_back(n);
            errno = 0;
        }
        int e = errno;
        ::closedir(d);
        if (e) return system_error("cannot list", std::string(p), e);
        std::sort(names.begin(), names.end());
        return names;
    }
    std::error_code ec;
    fs::directory_iterator it(path(p), ec);
    if (ec) return system_error("cannot list", std::string(p), ec.value());
    std::vector<std::string> names;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) return system_error("cannot list", std::string(p), ec.value());
        names.push_back(it->path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::optional<std::string> Host::find_program(std::string_view name) const {
    static const char* const dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                       "/usr/bin",        "/sbin",          "/bin"};
    for (const char* d : dirs) {
        std::string p = std::string(d) + "/" + std::string(name);
        if (m_live ? ::access(p.c_str(), X_OK) == 0 : exists(p)) return p;
    }
    return std::nullopt;
}

std::optional<std::string> Host::program_version(std::string_view name) const {
    std::string line;
    if (m_live) {
        auto prog = find_program(name);
        if (!prog) return std::nullopt;
        auto r = run({*prog, "--version"}, 5000);
        if (!r || r->exit_code != 0) return std::nullopt;
        line = r->output;
    } else {
        auto r = read("/.vfioctl/versions/" + std::string(name));
        if (!r) return std::nullopt;
        line = *r;
    }
    line = line.substr(0, line.find('\n'));
    line = std::string(util::trim(line));
    if (line.empty()) return std::nullopt;
    return line;
}

Result<RunOutput> Host::run(const std::vector<std::string>& argv, int timeout_ms) const {
    if (!m_live)
        return Error{"refusing to run a program against a recorded host", argv.at(0), {}, 0};
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return system_error("cannot create pipe", "");
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
        int e = errno;
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        return system_error("cannot fork", argv[0], e);
    }
    if (pid == 0) {
        ::dup2(pipefd[1], 1);
        ::dup2(pipefd[1], 2);
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::execve(args[0], args.data(), environ);
        ::_exit(127);
    }
    ::close(pipefd[1]);
    RunOutput out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    bool timed_out = false;
    char buf[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd pfd{pipefd[0], POLLIN, 0};
        int pr = ::poll(&pfd, 1, static_cast<int>(left));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            timed_out = pr == 0;
            break;
        }
        ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (out.output.size() < (1u << 20)) out.output.append(buf, static_cast<size_t>(n));
    }
    ::close(pipefd[0]);
    if (timed_out) ::kill(pid, SIGKILL);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (timed_out)
        return Error{"timed out after " + std::to_string(timeout_ms) + " ms", argv[0], {}, 0};
    out.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

Status Host::check_live_write(std::string_view p) const {
    if (m_live && live_writes_forbidden()) {
        std::string sp(p);
        for (const char* guarded : {"/sys", "/proc", "/dev"}) {
            if (util::starts_with(sp, guarded))
                return Error{"write to the live host refused (test guard)", sp,
                             "tests must use a fixture root", 0};
        }
    }
    return {};
}

Status Host::write(std::string_view p, std::string_view data) const {
    if (auto st = check_live_write(p); !st) return st;
    int fd = open(p, O_WRONLY | O_TRUNC);
    if (fd < 0) return system_error("cannot open for writing", std::string(p));
    ssize_t n;
    do {
        n = ::write(fd, data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    int e = errno;
    ::close(fd);
    if (n < 0) return system_error("write failed", std::string(p), e);
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
constexpr size_t k_writer_stack = 64 * 1024;

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
    if (auto st = check_live_write(p); !st) return st;
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return system_error("cannot create pipe", "");
    pid_t pid;
    void* mapping = MAP_FAILED;
    size_t mapping_size = 0;
    if (plain_write()) {
        // A child that shares this process's memory costs far less than a
        // fork (no page tables copied, no copy-on-write faults afterwards).
        // The open runs in the child too: opening a FIFO or a driver's
        // file may itself wait.
        std::string target = m_live ? std::string(p) : rel_or_dot(p);
        int dirfd = m_live ? AT_FDCWD : m_root_fd->fd;
        bool in_root = !m_live && have_openat2(dirfd);
        int flags = O_WRONLY | O_TRUNC | O_CLOEXEC;
        if (!m_live && !in_root) {
            std::string resolved;
            if (dirfd < 0 || walk_in_root(dirfd, p, true, resolved) != 0) {
                int e = dirfd < 0 ? ENOENT : errno;
                ::close(pipefd[0]);
                ::close(pipefd[1]);
                return system_error("cannot open for writing", std::string(p), e);
            }
            target = rel_or_dot(resolved);
            flags |= O_NOFOLLOW;
        }
        mapping_size = sizeof(PlainWrite) + target.size() + 1 + data.size() + k_writer_stack;
        mapping = ::mmap(nullptr, mapping_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (mapping == MAP_FAILED) {
            int e = errno;
            ::close(pipefd[0]);
            ::close(pipefd[1]);
            return system_error("cannot map the writer's stack", std::string(p), e);
        }
        char* base = static_cast<char*>(mapping);
        char* path_copy = base + sizeof(PlainWrite);
        std::memcpy(path_copy, target.c_str(), target.size() + 1);
        char* data_copy = path_copy + target.size() + 1;
        if (!data.empty()) std::memcpy(data_copy, data.data(), data.size());
        auto* w = new (base)
            PlainWrite{dirfd, path_copy, in_root, flags, data_copy, data.size(), pipefd[1]};
        // The stack grows down from the mapping's end, 16-byte aligned.
        auto top = reinterpret_cast<uintptr_t>(base + mapping_size) & ~uintptr_t{15};
        pid = ::clone(plain_write_child, reinterpret_cast<void*>(top), CLONE_VM | SIGCHLD, w);
    } else {
        pid = ::fork();
        if (pid == 0) {
            ::close(pipefd[0]);
            Status st = write(p, data);
            WriteReport r{st ? WriteReport::done : WriteReport::failed, st ? 0 : st.error().errnum};
            ssize_t ignored = ::write(pipefd[1], &r, sizeof r);
            (void)ignored;
            ::_exit(0);
        }
    }
    if (pid < 0) {
        int e = errno;
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        if (mapping != MAP_FAILED) ::munmap(mapping, mapping_size);
        return system_error("cannot start the writer", std::string(p), e);
    }
    ::close(pipefd[1]);
    pollfd pfd{pipefd[0], POLLIN, 0};
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
    if (pr > 0) reported = ::read(pipefd[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r);
    ::close(pipefd[0]);
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

Status Host::make_dirs(std::string_view p) const {
    if (m_live) {
        std::error_code ec;
        fs::create_directories(path(p), ec);
        if (ec) return system_error("cannot create directory", std::string(p), ec.value());
        return {};
    }
    // One component at a time, each made inside the directory the last
    // resolved to (links resolved inside the root).
    std::string sofar;
    for (const auto& comp : util::split(p, '/')) {
        if (comp.empty() || comp == ".") continue;
        if (comp == "..") return Error{"'..' in a state path", std::string(p), {}, EINVAL};
        int dfd = open(sofar.empty() ? "/" : sofar, O_PATH | O_DIRECTORY);
        if (dfd < 0) return system_error("cannot create directory", std::string(p));
        if (::mkdirat(dfd, comp.c_str(), 0755) != 0 && errno != EEXIST) {
            int e = errno;
            ::close(dfd);
            return system_error("cannot create directory", std::string(p), e);
        }
        ::close(dfd);
        sofar += "/" + comp;
        if (!is_dir(sofar))
            return Error{"cannot create directory (not a directory)", sofar, {}, ENOTDIR};
    }
    return {};
}

Status Host::write_atomic(std::string_view p, std::string_view data, unsigned mode) const {
    const fs::path full = path(p);
    const std::string name = full.filename().string();
    // The directory is opened inside the root; the rest is relative to it.
    int dfd = open(split_last(p).first, O_RDONLY | O_DIRECTORY);
    if (dfd < 0)
        return system_error("cannot create a temporary file in", full.parent_path().string());
    // A fixed temporary name: bind_killpoints.sh (e2e) traces it by path.
    Status st = write_file_atomic(dfd, name, data, full.string(),
                                  {.temp_name = "." + name + ".tmp", .mode = mode});
    ::close(dfd);
    return st;
}

Status Host::remove(std::string_view p) const {
    if (m_live) {
        std::error_code ec;
        fs::remove(path(p), ec);
        if (ec) return system_error("cannot remove", std::string(p), ec.value());
        return {};
    }
    auto [dir, name] = split_last(p);
    if (name.empty() || name == "." || name == "..")
        return Error{"cannot remove", std::string(p), {}, EINVAL};
    int dfd = open(dir, O_PATH | O_DIRECTORY);
    if (dfd < 0) return errno == ENOENT ? Status{} : system_error("cannot remove", std::string(p));
    int rc = ::unlinkat(dfd, name.c_str(), 0);
    if (rc != 0 && errno == EISDIR) rc = ::unlinkat(dfd, name.c_str(), AT_REMOVEDIR);
    int e = errno;
    ::close(dfd);
    if (rc != 0 && e != ENOENT) return system_error("cannot remove", std::string(p), e);
    return {};
}

Result<FileLock> FileLock::acquire(const Host& host, std::string_view p, int timeout_ms) {
    const std::string full = host.path(p).string();
    int fd = host.open(p, O_RDWR | O_CREAT, 0600);
    if (fd < 0) return system_error("cannot open lock file", full);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return FileLock(fd);
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            ::close(fd);
            return system_error("cannot lock", full, e);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            ::close(fd);
            return Error{"another vfioctl is changing drivers (lock held for " +
                             std::to_string(timeout_ms) + " ms)",
                         full, "wait for it to finish, then retry", 0};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

FileLock::~FileLock() {
    if (m_fd >= 0) ::close(m_fd);
}

} // namespace vfioctl::host
