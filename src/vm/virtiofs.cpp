#include "vm/virtiofs.hpp"

#include "util/strings.hpp"
#include "vm/process.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vfioctl::vm {

namespace {

// fuse's -o values split at commas; a backslash keeps one.
std::string fuse_opt_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == ',' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

// In the child, before virtiofsd runs: a mount namespace of its own with
// the host's / at target, recursively read-only (see virtiofs.hpp).
// Nothing propagates back to the host; the namespace ends with virtiofsd.
int readonly_root_at(const char* target, pid_t parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) return ESRCH;
    // virtiofsd holds a descriptor for each inode the guest has looked up:
    // a "find /usr" needs far more than a container's usual limit (which
    // this virtiofsd does not raise). Root may raise it up to fs.nr_open.
    rlimit now{};
    ::getrlimit(RLIMIT_NOFILE, &now);
    for (rlim_t n : {rlim_t{1} << 20, rlim_t{1} << 19, rlim_t{1} << 18}) {
        const rlimit lim{n, n};
        if (now.rlim_cur >= n || ::setrlimit(RLIMIT_NOFILE, &lim) == 0) break;
    }
    if (::unshare(CLONE_NEWNS) != 0) return errno;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
    if (::mount("/", target, nullptr, MS_BIND | MS_REC, nullptr) != 0) return errno;
    mount_attr ro{};
    ro.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(AT_FDCWD, target, AT_RECURSIVE, &ro, sizeof ro) != 0) return errno;
    return 0;
}

std::string log_tail(const std::string& path) {
    std::ifstream f(path);
    std::string text((std::istreambuf_iterator<char>(f)), {}), last;
    for (const auto& l : util::split(text, '\n'))
        if (!util::trim(l).empty()) last = std::string(util::trim(l));
    return last;
}

} // namespace

uint64_t virtiofsd_file_limit() {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    uint64_t limit = lim.rlim_max;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (!util::starts_with(line, "CapEff:")) continue;
        const uint64_t caps = std::strtoull(line.c_str() + 7, nullptr, 16);
        if (caps & (uint64_t{1} << 24)) { // CAP_SYS_RESOURCE
            std::ifstream nr("/proc/sys/fs/nr_open");
            uint64_t n = 0;
            if (nr >> n) limit = std::max(limit, std::min<uint64_t>(n, uint64_t{1} << 20));
        }
    }
    return limit;
}

std::string virtiofsd_file_limit_problem() {
    const uint64_t n = virtiofsd_file_limit();
    if (n >= k_virtiofsd_min_files) return {};
    return "virtiofsd could keep only " + std::to_string(n) +
           " files open (the hard RLIMIT_NOFILE; raising it needs CAP_SYS_RESOURCE): a walk over "
           "more files fails "
           "in the guest with 'Too many open files'";
}

std::optional<Virtiofsd> virtiofsd_from_help(const std::string& path, std::string_view help) {
    Virtiofsd d;
    d.path = path;
    if (help.find("--shared-dir") != std::string_view::npos) {
        d.kind = Virtiofsd::rust;
        d.readonly_option = help.find("--readonly") != std::string_view::npos;
        return d;
    }
    if (help.find("-o source=") != std::string_view::npos) return d;
    return std::nullopt;
}

std::vector<std::string> virtiofsd_argv(const Virtiofsd& d, const std::string& socket,
                                        const std::string& source) {
    if (d.kind == Virtiofsd::rust) {
        std::vector<std::string> a{d.path, "--socket-path=" + socket, "--shared-dir=" + source,
                                   "--cache=auto", "--sandbox=namespace"};
        if (d.readonly_option) a.push_back("--readonly");
        return a;
    }
    return {d.path, "--socket-path=" + socket,
            "-o",   "source=" + fuse_opt_escape(source),
            "-o",   "cache=auto",
            "-o",   "sandbox=namespace",
            "-f"};
}

Result<Virtiofsd> find_virtiofsd(const host::Tree& host) {
    std::vector<std::string> candidates;
    if (const char* path = std::getenv("PATH"))
        for (const auto& dir : util::split(path, ':'))
            if (!dir.empty() && dir[0] == '/') candidates.push_back(dir + "/virtiofsd");
    candidates.push_back("/usr/libexec/virtiofsd");
    candidates.push_back("/usr/lib/qemu/virtiofsd");
    for (const auto& c : candidates) {
        if (::access(host.path(c).c_str(), X_OK) != 0) continue;
        auto help = host.run({c, "--help"}, 5000);
        if (!help) return help.error();
        if (auto d = virtiofsd_from_help(c, help->output)) return *d;
        return Error{"cannot tell which virtiofsd this is (its --help lists neither -o source= nor "
                     "--shared-dir)",
                     c, "use --share 9p", 0};
    }
    return Error{"virtiofsd is not installed",
                 {},
                 "install qemu-system-common (Debian 12) or virtiofsd, or use --share 9p",
                 ENOENT};
}

Result<VirtiofsServer> VirtiofsServer::start(const Virtiofsd& d, const std::string& run_dir,
                                             int timeout_ms) {
    const std::string source = run_dir + "/hostroot", socket = run_dir + "/virtiofs.sock",
                      log = run_dir + "/virtiofsd.log";
    if (::mkdir(source.c_str(), 0700) != 0 && errno != EEXIST)
        return system_error("cannot create", source);
    host::UniqueFd logfd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!logfd) return system_error("cannot write", log);
    host::UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    host::SpawnIo io;
    io.in = devnull.get();
    io.out = io.err = logfd.get();
    const pid_t parent = ::getpid();
    io.before_exec = [&source, parent] { return readonly_root_at(source.c_str(), parent); };
    io.before_exec_what = "give virtiofsd a read-only view of / (a mount namespace; it needs root)";
    auto child = host::Process::spawn(virtiofsd_argv(d, socket, source), io);
    if (!child) return child.error();
    VirtiofsServer s;
    s.m_proc = std::move(*child);
    s.m_socket = socket;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        struct stat st {};
        if (::stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return s;
        if (auto rc = s.m_proc.wait(10)) {
            const std::string why = log_tail(log);
            return Error{"virtiofsd exited (status " + std::to_string(*rc) + ")" +
                             (why.empty() ? "" : ": " + why),
                         d.path, "its log was " + log, 0};
        }
        if (std::chrono::steady_clock::now() >= deadline)
            return Error{"virtiofsd did not create its socket within " +
                             std::to_string(timeout_ms) + " ms",
                         socket,
                         {},
                         ETIMEDOUT}; // s's destructor stops it
    }
}

VirtiofsServer& VirtiofsServer::operator=(VirtiofsServer&& o) noexcept {
    if (this != &o) {
        stop();
        m_proc = std::move(o.m_proc);
        m_socket = std::move(o.m_socket);
    }
    return *this;
}

void VirtiofsServer::stop() {
    if (m_proc.pid() <= 0) return;
    // virtiofsd is our child: reap it with bounded waits, asking first. A
    // liveness check is not enough: a multi-threaded virtiofsd's leader is a
    // zombie while its other threads still exit, and waitpid(WNOHANG) then
    // finds nothing to reap yet.
    if (!m_proc.wait(200)) {
        m_proc.kill(SIGTERM);
        if (!m_proc.wait(2000)) {
            m_proc.kill(SIGKILL);
            m_proc.wait(10000);
        }
    }
    // One that outlived SIGKILL by 10 s is left, never waited for forever.
    m_proc.release();
}

} // namespace vfioctl::vm
