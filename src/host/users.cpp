#include "host/users.hpp"

#include "host/tree.hpp"
#include "host/unique_fd.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vfioctl::host {

Result<User> find_user(const Tree& host, const std::string& who) {
    if (who.empty() || who.find_first_of(":\n/") != std::string::npos)
        return Error{"not a user name: '" + util::printable(who) + "'",
                     {},
                     "give a login name (or uid) from /etc/passwd",
                     0};
    auto passwd = host.read("/etc/passwd");
    if (!passwd) return passwd.error();
    const auto by_uid = util::parse_dec(who);
    for (const auto& line : util::split(*passwd, '\n')) {
        // name:password:uid:gid:gecos:home:shell
        auto f = util::split(line, ':');
        if (f.size() < 4 || f[0].empty()) continue;
        auto uid = util::parse_dec(util::trim(f[2]));
        auto gid = util::parse_dec(util::trim(f[3]));
        if (!uid || !gid || *uid > 0xfffffffe || *gid > 0xfffffffe) continue;
        if (f[0] == who || (by_uid && *by_uid == *uid))
            return User{f[0], static_cast<unsigned>(*uid), static_cast<unsigned>(*gid)};
    }
    return Error{"no user '" + util::printable(who) + "' in /etc/passwd",
                 host.path("/etc/passwd").string(),
                 "create the user first (adduser), or name another with --owner", 0};
}

Status give_node(const Tree& host, const std::string& node, const User& u) {
    // O_PATH: the node itself, without opening the group (an open group is
    // busy for everyone else). O_NOFOLLOW: a link is refused below.
    UniqueFd fd(host.open(node, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return system_error("cannot find", host.path(node).string());
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return system_error("cannot stat", host.path(node).string());
    // A fixture root stands device nodes in as regular files.
    const bool ok_type = S_ISCHR(st.st_mode) || (!host.is_live() && S_ISREG(st.st_mode));
    if (!ok_type)
        return Error{node + " is not a device node; it was left as it is", host.path(node).string(),
                     "", 0};
    if (::fchownat(fd.get(), "", u.uid, u.gid, AT_EMPTY_PATH) != 0)
        return system_error("cannot give " + node + " to " + u.name, host.path(node).string());
    return {};
}

} // namespace vfioctl::host
