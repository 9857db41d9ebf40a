// virtiofsd: telling the C one from the Rust one by --help, their command
// lines, and one started for real (root and an installed virtiofsd) whose
// socket appears, whose served tree is read-only, and which is gone and
// reaped after stop().

#include "fixture/fixture.hpp"
#include "host/host.hpp"
#include "vm/process.hpp"
#include "vm/virtiofs.hpp"

#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace vfioctl;

namespace {

// Lines of QEMU 7.2's /usr/lib/qemu/virtiofsd --help.
constexpr const char* c_help =
    "usage: /usr/lib/qemu/virtiofsd [options]\n\n"
    "    -o cache=<mode>            cache mode. could be one of \"auto, always, none\"\n"
    "    -o sandbox=namespace|chroot\n"
    "    -o source=PATH             shared directory tree\n"
    "    --socket-path=PATH         path for the vhost-user socket\n";

// Lines of the Rust virtiofsd's --help, with and without --readonly.
constexpr const char* rust_help =
    "Usage: virtiofsd [OPTIONS]\n\nOptions:\n"
    "      --shared-dir <shared-dir>    Shared directory path\n"
    "      --socket-path <socket-path>  vhost-user socket path\n"
    "      --sandbox <sandbox>          Sandbox mechanism [default: namespace]\n"
    "      --cache <cache>              The caching policy [default: auto]\n";

} // namespace

TEST(VmVirtiofsd, KindFromHelp) {
    auto c = vm::virtiofsd_from_help("/usr/lib/qemu/virtiofsd", c_help);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->kind, vm::Virtiofsd::c);
    EXPECT_EQ(c->path, "/usr/lib/qemu/virtiofsd");
    EXPECT_FALSE(c->readonly_option);
    auto r = vm::virtiofsd_from_help("/usr/libexec/virtiofsd", rust_help);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->kind, vm::Virtiofsd::rust);
    EXPECT_FALSE(r->readonly_option);
    auto ro = vm::virtiofsd_from_help(
        "/usr/libexec/virtiofsd",
        std::string(rust_help) + "      --readonly    Mount the shared directory read-only\n");
    ASSERT_TRUE(ro.has_value());
    EXPECT_TRUE(ro->readonly_option);
    EXPECT_FALSE(vm::virtiofsd_from_help("/bin/true", "usage: true\n").has_value());
}

TEST(VmVirtiofsd, GoldenArgvForBoth) {
    vm::Virtiofsd c{vm::Virtiofsd::c, "/usr/lib/qemu/virtiofsd", false};
    EXPECT_EQ(
        vm::virtiofsd_argv(c, "/run/vfioctl/run.7/virtiofs.sock", "/run/vfioctl/run.7/hostroot"),
        (std::vector<std::string>{"/usr/lib/qemu/virtiofsd",
                                  "--socket-path=/run/vfioctl/run.7/virtiofs.sock", "-o",
                                  "source=/run/vfioctl/run.7/hostroot", "-o", "cache=auto", "-o",
                                  "sandbox=namespace", "-f"}));
    // fuse splits -o values at commas: one in the path is escaped.
    EXPECT_EQ(vm::virtiofsd_argv(c, "/r/s.sock", "/r,1/hostroot").at(3), "source=/r\\,1/hostroot");
    vm::Virtiofsd rust{vm::Virtiofsd::rust, "/usr/libexec/virtiofsd", false};
    EXPECT_EQ(vm::virtiofsd_argv(rust, "/r/virtiofs.sock", "/r/hostroot"),
              (std::vector<std::string>{"/usr/libexec/virtiofsd", "--socket-path=/r/virtiofs.sock",
                                        "--shared-dir=/r/hostroot", "--cache=auto",
                                        "--sandbox=namespace"}));
    rust.readonly_option = true;
    EXPECT_EQ(vm::virtiofsd_argv(rust, "/r/virtiofs.sock", "/r/hostroot").back(), "--readonly");
}

// The real one: found, started (socket within the bound), serving a tree
// in which the host's / is read-only (checked from a process in its mount
// namespace), then stopped: gone, reaped, nothing left.
TEST(VmVirtiofsd, StartsServesReadOnlyAndIsReaped) {
    host::Host host("/");
    auto d = vm::find_virtiofsd(host);
    if (!d) GTEST_SKIP() << d.error().describe();
    if (::geteuid() != 0) GTEST_SKIP() << "virtiofsd needs root";
    fixture::TempDir dir;
    auto s = vm::VirtiofsServer::start(*d, dir.path.string(), 5000);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    const pid_t pid = s->pid();
    ASSERT_GT(pid, 0);
    struct stat st {};
    ASSERT_EQ(::stat(s->socket().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_TRUE(vm::process_alive(pid));
    // The tree it serves, seen from its own mount namespace: the host's
    // /etc is there and refuses writes.
    const std::string ns =
        "/proc/" + std::to_string(pid) + "/root" + dir.path.string() + "/hostroot";
    EXPECT_TRUE(std::ifstream(ns + "/etc/hostname").good() ||
                std::ifstream(ns + "/etc/os-release").good());
    auto w = fixture::run_program({"/usr/bin/nsenter", "-t", std::to_string(pid), "-m", "--",
                                   "/usr/bin/touch",
                                   dir.path.string() + "/hostroot/etc/vfioctl-ro-probe"});
    EXPECT_NE(w.exit_code, 0);
    EXPECT_NE(w.err.find("Read-only file system"), std::string::npos) << w.err;
    EXPECT_FALSE(std::ifstream("/etc/vfioctl-ro-probe").good());
    // Its mounts stay in its namespace: the host's directory is empty.
    EXPECT_TRUE(std::filesystem::is_empty(dir.path / "hostroot"));
    s->stop();
    EXPECT_EQ(s->pid(), -1);
    EXPECT_FALSE(vm::process_alive(pid));
    // Reaped: it is no child of ours any more (no zombie left).
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

// A virtiofsd that exits at once: start() says so with its log's last line
// (it was reaped to get its status).
TEST(VmVirtiofsd, OneThatExitsIsAnErrorWithItsLog) {
    if (::geteuid() != 0) GTEST_SKIP() << "the read-only view needs root";
    fixture::TempDir dir;
    const std::string fake = (dir.path / "virtiofsd").string();
    std::ofstream(fake) << "#!/bin/sh\necho 'fuse: bad mount point: it is broken' >&2\nexit 3\n";
    ::chmod(fake.c_str(), 0755);
    vm::Virtiofsd d{vm::Virtiofsd::c, fake, false};
    auto s = vm::VirtiofsServer::start(d, dir.path.string(), 5000);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message,
              "virtiofsd exited (status 3): fuse: bad mount point: it is broken");
}
