#include "host/state_files.hpp"

#include "host/atomic_file.hpp"
#include "host/resolve.hpp"
#include "host/sysfs_writes.hpp"
#include "host/unique_fd.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace vfioctl::host {

using detail::split_last;

namespace {

// Creates host path p and its parents in tree t, one component at a time,
// each made inside the directory the last resolved to (links resolved
// inside the root), new ones with mode.
Status make_dirs_in(const Tree& t, std::string_view p, unsigned mode) {
    std::string norm(p);
    // On the running machine a path is taken as the kernel would take it.
    if (t.is_live()) norm = fs::path(norm).lexically_normal().string();
    std::string sofar;
    for (const auto& comp : util::split(norm, '/')) {
        if (comp.empty() || comp == ".") continue;
        if (comp == "..") return Error{"'..' in a state path", std::string(p), {}, EINVAL};
        const UniqueFd dfd(t.open(sofar.empty() ? "/" : sofar, O_PATH | O_DIRECTORY));
        if (!dfd) return system_error("cannot create directory", std::string(p));
        const bool made = ::mkdirat(dfd.get(), comp.c_str(), mode) == 0;
        const int e = errno;
        if (!made && e != EEXIST) return system_error("cannot create directory", std::string(p), e);
        sofar += "/" + comp;
        if (!t.is_dir(sofar))
            return Error{"cannot create directory (not a directory)", sofar, {}, ENOTDIR};
    }
    return {};
}

} // namespace

Status StateFiles::make_dirs(std::string_view p) const {
    if (auto st = check_live_write(*this, p); !st) return st;
    return make_dirs_in(*this, p, 0755);
}

Status make_dirs_at(const std::string& path, unsigned mode) {
    std::error_code ec;
    const fs::path full = fs::absolute(path, ec);
    if (ec) return Error{"cannot create directory", path, {}, ec.value()};
    Status st = make_dirs_in(Tree("/"), full.string(), mode);
    if (!st) {
        Error e = st.error();
        e.path = path;
        return e;
    }
    return {};
}

Status StateFiles::write_atomic(std::string_view p, std::string_view data, unsigned mode) const {
    if (auto st = check_live_write(*this, p); !st) return st;
    const fs::path full = path(p);
    const std::string name = full.filename().string();
    // The directory is opened inside the root; the rest is relative to it.
    const UniqueFd dfd(open(split_last(p).first, O_RDONLY | O_DIRECTORY));
    if (!dfd) return system_error("cannot create a temporary file in", full.parent_path().string());
    // A fixed temporary name: bind_killpoints.sh (e2e) traces it by path.
    return write_file_atomic(dfd.get(), name, data, full.string(),
                             {.temp_name = "." + name + ".tmp", .mode = mode});
}

Status StateFiles::remove(std::string_view p) const {
    if (auto st = check_live_write(*this, p); !st) return st;
    if (is_live()) {
        std::error_code ec;
        fs::remove(path(p), ec);
        if (ec) return system_error("cannot remove", std::string(p), ec.value());
        return {};
    }
    auto [dir, name] = split_last(p);
    if (name.empty() || name == "." || name == "..")
        return Error{"cannot remove", std::string(p), {}, EINVAL};
    const UniqueFd dfd(open(dir, O_PATH | O_DIRECTORY));
    if (!dfd) return errno == ENOENT ? Status{} : system_error("cannot remove", std::string(p));
    int rc = ::unlinkat(dfd.get(), name.c_str(), 0);
    if (rc != 0 && errno == EISDIR) rc = ::unlinkat(dfd.get(), name.c_str(), AT_REMOVEDIR);
    const int e = errno;
    if (rc != 0 && e != ENOENT) return system_error("cannot remove", std::string(p), e);
    return {};
}

Result<FileLock> FileLock::acquire(const Tree& host, std::string_view p, int timeout_ms) {
    const std::string full = host.path(p).string();
    UniqueFd fd(host.open(p, O_RDWR | O_CREAT, 0600));
    if (!fd) return system_error("cannot open lock file", full);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return FileLock(std::move(fd));
        if (errno != EWOULDBLOCK && errno != EINTR) return system_error("cannot lock", full);
        if (std::chrono::steady_clock::now() >= deadline)
            return Error{"another vfioctl is changing drivers (lock held for " +
                             std::to_string(timeout_ms) + " ms)",
                         full, "wait for it to finish, then retry", 0};
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

} // namespace vfioctl::host
