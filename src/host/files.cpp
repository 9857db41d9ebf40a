#include "host/files.hpp"

#include "host/atomic_file.hpp"
#include "host/unique_fd.hpp"
#include "util/fault.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

namespace vfioctl::host {

namespace {

// The directory and the name of a path.
std::string dir_of(const std::string& p) {
    size_t s = p.rfind('/');
    if (s == std::string::npos) return ".";
    return s == 0 ? "/" : p.substr(0, s);
}

std::string base_of(const std::string& p) {
    size_t s = p.rfind('/');
    return s == std::string::npos ? p : p.substr(s + 1);
}

// A system error with the hint for its errno.
Error fail(std::string message, const std::string& host_path, int e) {
    Error err = system_error(std::move(message), host_path, e);
    err.hint = write_hint(e, dir_of(host_path));
    return err;
}

// Copies extended attributes (SELinux label, ACL) from src to dst, as far as
// the filesystem allows.
void copy_xattrs(int src, int dst) {
    ssize_t len = ::flistxattr(src, nullptr, 0);
    if (len <= 0) return;
    std::vector<char> names(static_cast<size_t>(len));
    len = ::flistxattr(src, names.data(), names.size());
    if (len <= 0) return;
    for (size_t i = 0; i < static_cast<size_t>(len);) {
        const char* name = names.data() + i;
        i += std::strlen(name) + 1;
        ssize_t vlen = ::fgetxattr(src, name, nullptr, 0);
        if (vlen < 0) continue;
        std::vector<char> value(static_cast<size_t>(vlen));
        vlen = ::fgetxattr(src, name, value.data(), value.size());
        if (vlen < 0) continue;
        (void)::fsetxattr(dst, name, value.data(), static_cast<size_t>(vlen), 0);
    }
}

// Sets owner and mode; a filesystem without owners (vfat) that already shows
// the right ones is fine.
int keep_owner_mode(int fd, unsigned uid, unsigned gid, unsigned mode) {
    if (::fchown(fd, uid, gid) != 0) {
        int e = errno;
        struct stat st {};
        if (::fstat(fd, &st) != 0 || st.st_uid != uid || st.st_gid != gid) return e;
    }
    if (::fchmod(fd, mode) != 0) {
        int e = errno;
        struct stat st {};
        if (::fstat(fd, &st) != 0 || (st.st_mode & 07777) != mode) return e;
    }
    return 0;
}

// fsync of a directory (a rename's durability); errno or 0.
int sync_dir(const std::string& full_dir) {
    const UniqueFd dfd(::open(full_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dfd) return errno;
    if (::fsync(dfd.get()) != 0 && errno != EINVAL && errno != EROFS) return errno;
    return 0;
}

// Temporary files a killed vfioctl left beside base (".NAME.vfioctl-tmpPID",
// ".NAME.vfioctl-backup.tmpPID"): never read by anyone, removed before the next write.
void remove_stale_temps(const Host& h, const std::string& dir, const std::string& base) {
    auto names = h.list(dir);
    if (!names) return;
    const std::string a = "." + base + ".vfioctl-tmp", b = "." + base + ".vfioctl-backup.tmp";
    for (const auto& n : *names)
        if (n.compare(0, a.size(), a) == 0 || n.compare(0, b.size(), b) == 0)
            ::unlink(h.path(dir + "/" + n).c_str());
}

} // namespace

std::string write_hint(int e, std::string_view dir) {
    switch (e) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return "the filesystem holding " + std::string(dir) +
               " is full (or a size limit was hit): free some space and retry; nothing was changed";
    case EROFS:
        return "the filesystem holding " + std::string(dir) +
               " is mounted read-only: remount it read-write (mount -o remount,rw) and retry";
    case EACCES:
    case EPERM:
        return "run vfioctl as root (sudo vfioctl ...); if you are root, the file or " +
               std::string(dir) + " may be immutable (lsattr; chattr -i)";
    default:
        return {};
    }
}

Result<FileStat> stat_file(const Tree& h, std::string_view p) {
    FileStat fs;
    struct stat st {};
    const std::string full = h.path(p).string();
    if (::stat(full.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return fs;
        return system_error("cannot stat", std::string(p));
    }
    fs.exists = true;
    fs.regular = S_ISREG(st.st_mode);
    fs.mode = st.st_mode & 07777;
    fs.uid = st.st_uid;
    fs.gid = st.st_gid;
    fs.size = static_cast<uint64_t>(st.st_size);
    return fs;
}

Status make_directories(const Host& h, std::string_view p) {
    Status st = h.make_dirs(p);
    if (!st && st.error().hint.empty()) {
        Error e = st.error();
        e.hint = write_hint(e.errnum, dir_of(e.path));
        return e;
    }
    return st;
}

Result<std::string> backup_file(const Host& h, std::string_view p, std::string_view stamp) {
    if (auto g = check_live_write(h, p); !g) return g.error();
    auto real = h.resolve(p);
    if (!real) return real.error();
    const std::string src = h.path(*real).string();
    const UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return system_error("cannot read", *real);
    struct stat st {};
    if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return Error{"not a regular file", *real, {}, 0};
    std::string data;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(in.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return system_error("cannot read", *real);
        if (n == 0) break;
        data.append(buf, static_cast<size_t>(n));
    }
    const std::string dir = dir_of(*real);
    remove_stale_temps(h, dir, base_of(*real));
    const std::string tmp_host =
        dir + "/." + base_of(*real) + ".vfioctl-backup.tmp" + std::to_string(::getpid());
    const std::string tmp = h.path(tmp_host).string();
    UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out) return fail("cannot create a backup in", dir, errno);
    util::fault_point("boot.backup.created");
    int e = write_all(out.get(), data);
    if (e == 0) util::fault_point("boot.backup.written");
    // Never executable: a backup beside a script in /etc/grub.d (or any
    // run-parts directory) would otherwise run as one. The journal keeps the
    // mode for putting a removed file back.
    if (e == 0) e = keep_owner_mode(out.get(), st.st_uid, st.st_gid, st.st_mode & 0666);
    if (e == 0) copy_xattrs(in.get(), out.get());
    if (e == 0 && ::fsync(out.get()) != 0) e = errno;
    // A failed close is a failed write (NFS reports errors there).
    if (::close(out.release()) != 0 && e == 0) e = errno;
    if (e != 0) {
        ::unlink(tmp.c_str());
        return fail("cannot write the backup of", *real, e);
    }
    util::fault_point("boot.backup.synced");
    // Link it under a name nobody has: never overwrite an older backup.
    for (int n = 1; n < 1000; ++n) {
        std::string name = *real + ".vfioctl-backup-" + std::string(stamp) +
                           (n > 1 ? "-" + std::to_string(n) : "");
        const std::string full = h.path(name).string();
        int r = ::link(tmp.c_str(), full.c_str());
        if (r != 0 && (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP)) {
            // No hard links here (vfat): rename, after making sure the name is free.
            struct stat probe {};
            if (::lstat(full.c_str(), &probe) == 0) continue;
            r = ::rename(tmp.c_str(), full.c_str());
            if (r == 0) {
                util::fault_point("boot.backup.linked");
                if (int de = sync_dir(h.path(dir).string()); de != 0)
                    return fail("cannot sync", dir, de);
                return name;
            }
        }
        if (r != 0 && errno == EEXIST) continue;
        if (r != 0) {
            int le = errno;
            ::unlink(tmp.c_str());
            return fail("cannot create the backup", name, le);
        }
        ::unlink(tmp.c_str());
        util::fault_point("boot.backup.linked");
        if (int de = sync_dir(h.path(dir).string()); de != 0) return fail("cannot sync", dir, de);
        return name;
    }
    ::unlink(tmp.c_str());
    return Error{"no free backup name", *real, "remove old *.vfioctl-backup-* files", 0};
}

Status replace_file(const Host& h, std::string_view p, std::string_view data,
                    std::string_view prefix, unsigned mode) {
    if (auto g = check_live_write(h, p); !g) return g;
    std::string real(p);
    UniqueFd orig;
    struct stat st {};
    auto r = h.resolve(p);
    if (!r) {
        struct stat lst {};
        if (::lstat(h.path(p).c_str(), &lst) == 0) return r.error();
    }
    if (r) {
        real = *r;
        const std::string full = h.path(real).string();
        orig.reset(::open(full.c_str(), O_RDONLY | O_CLOEXEC));
        if (!orig) return fail("cannot open", real, errno);
        if (::fstat(orig.get(), &st) != 0 || !S_ISREG(st.st_mode))
            return Error{"not a regular file", real, {}, 0};
        if ((st.st_mode & 0222) == 0) {
            char m[16];
            (void)std::snprintf(m, sizeof m, "%04o", st.st_mode & 07777); // fits: 4 digits
            return Error{std::string("the file is read-only (mode ") + m + ")", real,
                         "make it writable (chmod u+w " + real +
                             ") if it should change; nothing was changed",
                         0};
        }
        if (::access(full.c_str(), W_OK) != 0 && errno != EROFS)
            return fail("cannot write", real, errno);
    }
    const std::string dir = dir_of(real);
    remove_stale_temps(h, dir, base_of(real));
    // The directory opened inside the root; the write is relative to it.
    const UniqueFd dfd(h.open(dir, O_RDONLY | O_DIRECTORY));
    if (!dfd) return fail("cannot create a temporary file in", dir, errno);
    AtomicWrite how;
    how.mode = 0600; // until prepare gives it the file's own
    how.fault_prefix = std::string(prefix);
    how.prepare = [&](int fd) -> Status {
        int e = orig ? keep_owner_mode(fd, st.st_uid, st.st_gid, st.st_mode & 07777)
                     : keep_owner_mode(fd, ::geteuid(), ::getegid(), mode);
        if (e != 0) return system_error("cannot keep owner and mode for", real, e);
        if (orig) copy_xattrs(orig.get(), fd);
        return {};
    };
    Status done = write_file_atomic(dfd.get(), base_of(real), data, real, how);
    if (!done) {
        Error err = done.error();
        err.hint = write_hint(err.errnum, dir);
        return err;
    }
    return {};
}

} // namespace vfioctl::host
