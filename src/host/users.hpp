#pragma once
// Users as /etc/passwd (under the host's root) names them, and handing a
// VFIO group node to one: 'bind --owner' and 'vm start --owner' let a user
// run QEMU without root, as libvirt does with its qemu user.

#include "util/result.hpp"

#include <string>

namespace vfioctl::host {

class Tree;

struct User {
    std::string name;
    unsigned uid = 0;
    unsigned gid = 0; // the primary group
};

// The user named by who: a login name, or a numeric uid that /etc/passwd
// lists. An Error (with the file) when passwd cannot be read or has no such
// user: never a guess.
Result<User> find_user(const Tree& host, const std::string& who);

// Makes u the owner of a VFIO group node (/dev/vfio/N), mode left as the
// kernel made it (0600): only that user (and root) may open the group.
// Refuses anything but a character device on a live host, and links.
Status give_node(const Tree& host, const std::string& node, const User& u);

} // namespace vfioctl::host
