#pragma once
// virtiofs for the shared host root: finding virtiofsd (the C one that
// QEMU shipped up to 7.2, or the Rust one of newer distributions), its
// command line (pure), and running it for one VM: started before QEMU,
// its socket waited for, stopped and reaped after.
//
// Read-only: the C virtiofsd has no read-only option, and the guest's
// "mount -o ro" alone is not enough: the guest's command runs as root and
// can remount the share read-write. So virtiofsd is given no writable tree
// at all: it runs in a mount namespace of its own in which the host's / is
// bind-mounted, recursively and read-only (mount_setattr AT_RECURSIVE
// MOUNT_ATTR_RDONLY), at RUN_DIR/hostroot, and serves that. Every write it
// would make for the guest fails with EROFS on the host, as with 9p's
// readonly=on. The Rust virtiofsd gets --readonly as well where it has it.

#include "host/host.hpp"
#include "host/process.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace vfioctl::vm {

struct Virtiofsd {
    enum Kind { c, rust } kind = c;
    std::string path;
    bool readonly_option = false; // --readonly (Rust, 1.x with it)
};

// Pure: which virtiofsd a "--help" output comes from (the C one lists
// "-o source=PATH", the Rust one "--shared-dir"); nullopt for neither.
std::optional<Virtiofsd> virtiofsd_from_help(const std::string& path, std::string_view help);

// Pure: the argv that serves source on the vhost-user socket (cache=auto,
// namespace sandbox, in the foreground).
std::vector<std::string> virtiofsd_argv(const Virtiofsd& d, const std::string& socket,
                                        const std::string& source);

// Finds virtiofsd: on $PATH, then /usr/libexec/virtiofsd, then
// /usr/lib/qemu/virtiofsd; asks its --help which one it is. The Error
// says why there is none usable.
Result<Virtiofsd> find_virtiofsd(const host::Tree& host);

// virtiofsd keeps a descriptor open for every inode the guest holds: a
// walk over a large tree (find /usr, a kernel build) needs many.
constexpr uint64_t k_virtiofsd_min_files = 1 << 18;

// The most files a virtiofsd started by this process may keep open: the
// hard RLIMIT_NOFILE, or fs.nr_open when it may raise that (CAP_SYS_RESOURCE).
uint64_t virtiofsd_file_limit();

// "" when virtiofsd_file_limit() reaches k_virtiofsd_min_files, else a
// line that says what fails and why.
std::string virtiofsd_file_limit_problem();

// A virtiofsd serving the host's / read-only for one VM.
class VirtiofsServer {
  public:
    // Starts it with its socket, log and read-only tree in run_dir and
    // waits (at most timeout_ms) for the socket. It gets SIGTERM when this
    // process dies.
    static Result<VirtiofsServer> start(const Virtiofsd& d, const std::string& run_dir,
                                        int timeout_ms);
    VirtiofsServer(VirtiofsServer&& o) noexcept = default;
    // Stops the server held, then takes o's.
    VirtiofsServer& operator=(VirtiofsServer&& o) noexcept;
    VirtiofsServer(const VirtiofsServer&) = delete;
    VirtiofsServer& operator=(const VirtiofsServer&) = delete;
    // Stops and reaps it.
    ~VirtiofsServer() { stop(); }

    pid_t pid() const { return m_proc.pid(); }
    const std::string& socket() const { return m_socket; }
    // Waits briefly for it to end (it does when QEMU closes the socket),
    // then SIGTERM, then SIGKILL; always reaps it.
    void stop();

  private:
    VirtiofsServer() = default;
    host::Process m_proc;
    std::string m_socket;
};

} // namespace vfioctl::vm
