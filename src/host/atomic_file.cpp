#include "host/atomic_file.hpp"

#include "util/fault.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace vfioctl::host {

namespace {

// The directory part of a path ("." when it has none).
std::string dir_of(std::string_view p) {
    const size_t s = p.rfind('/');
    if (s == std::string_view::npos) return ".";
    return s == 0 ? std::string("/") : std::string(p.substr(0, s));
}

} // namespace

int write_all(int fd, std::string_view data) {
    size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) return EIO;
        done += static_cast<size_t>(n);
    }
    return 0;
}

Status write_file_atomic(int dirfd, std::string_view name, std::string_view data,
                         std::string_view shown, const AtomicWrite& how) {
    const std::string file(name), path(shown);
    const std::string temp = how.temp_name.empty()
                                 ? "." + file + ".vfioctl-tmp" + std::to_string(::getpid())
                                 : how.temp_name;
    auto fault = [&how](const char* step) {
        if (!how.fault_prefix.empty()) util::fault_point(how.fault_prefix + "." + step);
    };

    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(dirfd, temp.c_str(), flags, how.mode);
    if (fd < 0 && errno == EEXIST) {
        // A killed run's temporary file: never written through, replaced.
        if (::unlinkat(dirfd, temp.c_str(), 0) == 0)
            fd = ::openat(dirfd, temp.c_str(), flags, how.mode);
        else
            errno = EEXIST;
    }
    if (fd < 0) return system_error("cannot create a temporary file in", dir_of(path));
    // Every failure from here to the rename: the temporary file goes.
    auto abandon = [&](Error e) {
        if (fd >= 0) ::close(fd);
        ::unlinkat(dirfd, temp.c_str(), 0);
        return e;
    };
    fault("temp.created");
    if (int e = write_all(fd, data); e != 0) return abandon(system_error("cannot write", path, e));
    fault("temp.written");
    if (how.prepare) {
        if (Status st = how.prepare(fd); !st) return abandon(st.error());
    }
    if (::fsync(fd) != 0) return abandon(system_error("cannot sync", path));
    fault("temp.synced");
    const int closed = ::close(fd);
    fd = -1;
    if (closed != 0) return abandon(system_error("cannot write", path));
    if (::renameat(dirfd, temp.c_str(), dirfd, file.c_str()) != 0)
        return abandon(system_error("cannot replace", path));
    fault("renamed");
    if (::fsync(dirfd) != 0 && errno != EINVAL && errno != EROFS)
        return system_error("cannot sync directory", dir_of(path));
    fault("dir.synced");
    return {};
}

Status write_file_atomic(const std::string& path, std::string_view data, const AtomicWrite& how) {
    const std::string dir = dir_of(path);
    const size_t slash = path.rfind('/');
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    const int dirfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return system_error("cannot create a temporary file in", dir);
    Status st = write_file_atomic(dirfd, name, data, path, how);
    ::close(dirfd);
    return st;
}

} // namespace vfioctl::host
