#include "host/tree.hpp"

#include "host/process.hpp"
#include "host/resolve.hpp"
#include "host/unique_fd.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

using detail::have_openat2;
using detail::rel_or_dot;
using detail::split_last;
using detail::walk_in_root;

namespace {
std::atomic<bool> g_openat2{true};

std::string rel(std::string_view p) {
    while (!p.empty() && p.front() == '/')
        p.remove_prefix(1);
    return std::string(p);
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

} // namespace

namespace detail {

std::string rel_or_dot(std::string_view p) {
    std::string r = rel(p);
    return r.empty() ? std::string(".") : r;
}

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

std::pair<std::string, std::string> split_last(std::string_view p) {
    std::string s(p);
    while (s.size() > 1 && s.back() == '/')
        s.pop_back();
    auto slash = s.rfind('/');
    if (slash == std::string::npos) return {"/", s};
    return {slash == 0 ? std::string("/") : s.substr(0, slash), s.substr(slash + 1)};
}

} // namespace detail

void use_openat2(bool on) {
    g_openat2 = on;
}

Tree::Tree(fs::path root) : m_root(std::move(root)) {
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

fs::path Tree::path(std::string_view p) const {
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

int Tree::open(std::string_view p, int flags, unsigned mode) const {
    if (m_live) return ::open(std::string(p).c_str(), flags | O_CLOEXEC, mode);
    if (flags & O_PATH) return open_in_root(m_root_fd->fd, p, flags, mode);
    // O_NONBLOCK: opening a FIFO must not wait for its other end.
    return only_files(open_in_root(m_root_fd->fd, p, flags | O_NONBLOCK, mode));
}

Result<std::string> Tree::read(std::string_view p) const {
    const UniqueFd fd(open(p, O_RDONLY));
    if (!fd && !m_live && errno == k_not_regular)
        return Error{
            "cannot read: not a regular file (a FIFO or device node has no place in a host tree)",
            std::string(p),
            {},
            0};
    if (!fd) return system_error("cannot read", std::string(p));
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return system_error("cannot read", std::string(p));
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::optional<std::string> Tree::attr(std::string_view p) const {
    auto r = read(p);
    if (!r) return std::nullopt;
    // Some attributes (9p's mount_tag) end with a NUL byte: it is no part of the value.
    std::string_view v(*r);
    v = v.substr(0, v.find('\0'));
    return std::string(util::trim(v));
}

std::optional<uint64_t> Tree::attr_hex(std::string_view p) const {
    auto s = attr(p);
    if (!s) return std::nullopt;
    return util::parse_hex(*s);
}

std::optional<uint64_t> Tree::attr_dec(std::string_view p) const {
    auto s = attr(p);
    if (!s) return std::nullopt;
    return util::parse_dec(*s);
}

Result<std::string> Tree::read_link(std::string_view p) const {
    // readlink(2) directly: std::filesystem::read_symlink stats first, and
    // sysfs trees are read link by link.
    char buf[4096];
    ssize_t n;
    if (m_live) {
        n = ::readlink(std::string(p).c_str(), buf, sizeof buf);
    } else {
        auto [dir, name] = split_last(p);
        const UniqueFd dfd(
            name.empty() || name == "." || name == ".." ? -1 : open(dir, O_PATH | O_DIRECTORY));
        if (!dfd) {
            if (errno == 0 || name.empty() || name == "." || name == "..") errno = EINVAL;
            return system_error("cannot read link", std::string(p));
        }
        n = ::readlinkat(dfd.get(), name.c_str(), buf, sizeof buf);
    }
    if (n < 0) return system_error("cannot read link", std::string(p));
    if (static_cast<size_t>(n) == sizeof buf)
        return Error{"link target too long", std::string(p), {}, 0};
    return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> Tree::link_name(std::string_view p) const {
    auto t = read_link(p);
    if (!t) return std::nullopt;
    std::string name = fs::path(*t).filename().string();
    if (name.empty()) return std::nullopt;
    return name;
}

Result<std::string> Tree::resolve(std::string_view p) const {
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

Result<Dir> Tree::open_dir(std::string_view p) const {
    int fd = open(p, O_PATH | O_DIRECTORY);
    if (fd < 0) return system_error("cannot open directory", std::string(p));
    return Dir(fd, std::string(p), m_root_fd);
}

Dir::~Dir() {
    if (m_fd >= 0) ::close(m_fd);
}

std::optional<std::string> Dir::attr(const char* name) const {
    // Under a root, an attribute that is a link is resolved inside it.
    int raw = ::openat(m_fd, name, O_RDONLY | O_CLOEXEC | (m_root ? O_NOFOLLOW | O_NONBLOCK : 0));
    if (raw < 0 && m_root && errno == ELOOP)
        raw = open_in_root(m_root->fd, m_path + "/" + name, O_RDONLY | O_NONBLOCK, 0);
    const UniqueFd fd(m_root ? only_files(raw) : raw);
    if (!fd) return std::nullopt;
    char buf[4096];
    ssize_t n;
    do {
        n = ::read(fd.get(), buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
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

bool Tree::exists(std::string_view p) const {
    std::error_code ec;
    if (m_live) return fs::exists(path(p), ec);
    return UniqueFd(open(p, O_PATH)).get() >= 0;
}

bool Tree::is_link(std::string_view p) const {
    std::error_code ec;
    if (m_live) return fs::is_symlink(path(p), ec);
    const UniqueFd fd(open(p, O_PATH | O_NOFOLLOW));
    struct stat st {};
    return fd && ::fstat(fd.get(), &st) == 0 && S_ISLNK(st.st_mode);
}

bool Tree::is_dir(std::string_view p) const {
    std::error_code ec;
    if (m_live) return fs::is_directory(path(p), ec);
    return UniqueFd(open(p, O_PATH | O_DIRECTORY)).get() >= 0;
}

Result<std::vector<std::string>> Tree::list(std::string_view p) const {
    if (!m_live) {
        UniqueFd fd(open(p, O_RDONLY | O_DIRECTORY));
        if (!fd) return system_error("cannot list", std::string(p));
        DIR* d = ::fdopendir(fd.get());
        if (!d) return system_error("cannot list", std::string(p));
        fd.release(); // closedir closes it
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

std::optional<std::string> Tree::find_program(std::string_view name) const {
    static const char* const dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                       "/usr/bin",        "/sbin",          "/bin"};
    for (const char* d : dirs) {
        std::string p = std::string(d) + "/" + std::string(name);
        if (m_live ? ::access(p.c_str(), X_OK) == 0 : exists(p)) return p;
    }
    return std::nullopt;
}

std::optional<std::string> Tree::program_version(std::string_view name) const {
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

int Tree::root_fd() const {
    return m_root_fd ? m_root_fd->fd : -1;
}

Result<RunOutput> Tree::run(const std::vector<std::string>& argv, int timeout_ms) const {
    if (!m_live)
        return Error{"refusing to run a program against a recorded host", argv.at(0), {}, 0};
    auto pipe = make_pipe();
    if (!pipe) return system_error("cannot create pipe", "", pipe.error().errnum);
    UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    SpawnIo io;
    io.in = devnull.get();
    io.out = io.err = pipe->write.get();
    auto child = Process::spawn(argv, io);
    if (!child) {
        // A program that cannot be executed exits 127, as a shell reports it.
        if (child.error().message != "cannot execute") return child.error();
        return RunOutput{127, {}};
    }
    pipe->write.reset();
    devnull.reset();
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
        pollfd pfd{pipe->read.get(), POLLIN, 0};
        int pr = ::poll(&pfd, 1, static_cast<int>(left));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            timed_out = pr == 0;
            break;
        }
        ssize_t n = ::read(pipe->read.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (out.output.size() < (1u << 20)) out.output.append(buf, static_cast<size_t>(n));
    }
    pipe->read.reset();
    if (timed_out) child->kill(SIGKILL);
    const int rc = child->wait(-1).value_or(-1);
    if (timed_out)
        return Error{"timed out after " + std::to_string(timeout_ms) + " ms", argv[0], {}, 0};
    out.exit_code = child->killed_by_signal() ? -1 : rc;
    return out;
}

} // namespace vfioctl::host
