// 'vm run' pieces (bzImage header, module order, cpio, /init), the in-guest
// parsers, the accelerator choice, and the CLI on bad input. With the
// stock kernel and a static busybox present, 'vm run -- true/false' boots
// for real under TCG.

#include "fixture/fixture.hpp"
#include "support.hpp"
#include "util/strings.hpp"
#include "vm/guest.hpp"
#include "vm/inguest.hpp"
#include "vm/machine.hpp"
#include "vm/process.hpp"
#include "vm/virtiofs.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace vfioctl;
namespace fs = std::filesystem;

namespace {

std::string fake_bzimage(const std::string& version) {
    std::string img(0x400, '\0');
    img.replace(0x202, 4, "HdrS");
    const uint16_t off = 0x300 - 0x200;
    img[0x20e] = static_cast<char>(off & 0xff);
    img[0x20f] = static_cast<char>(off >> 8);
    img.replace(0x300, version.size(), version);
    return img;
}

// The stock kernel this machine boots, or "" when there is none.
std::string stock_kernel() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/boot", ec))
        if (e.path().filename().string().rfind("vmlinuz-", 0) == 0) return e.path().string();
    return {};
}

} // namespace

TEST(VmGuest, BzImageRelease) {
    auto r =
        vm::bzimage_release(fake_bzimage("6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, "6.1.0-56-amd64");
    EXPECT_FALSE(vm::bzimage_release("not a kernel").ok());
    EXPECT_FALSE(vm::bzimage_release(std::string(0x400, 'x')).ok());
}

TEST(VmGuest, ModuleOrderPutsDependenciesFirstOnce) {
    const char* dep =
        "kernel/drivers/virtio/virtio.ko:\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n"
        "kernel/drivers/virtio/virtio_pci_legacy_dev.ko:\n"
        "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
        "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko "
        "kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko "
        "kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/fs/netfs/netfs.ko:\n"
        "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko "
        "kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko "
        "kernel/fs/netfs/netfs.ko\n";
    auto o = vm::module_load_order(dep, "", {"virtio_pci", "9pnet_virtio", "9p"});
    ASSERT_TRUE(o.ok()) << o.error().describe();
    const std::vector<std::string> want = {"kernel/drivers/virtio/virtio_ring.ko",
                                           "kernel/drivers/virtio/virtio.ko",
                                           "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
                                           "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
                                           "kernel/drivers/virtio/virtio_pci.ko",
                                           "kernel/net/9p/9pnet.ko",
                                           "kernel/net/9p/9pnet_virtio.ko",
                                           "kernel/fs/netfs/netfs.ko",
                                           "kernel/fs/fscache/fscache.ko",
                                           "kernel/fs/9p/9p.ko"};
    EXPECT_EQ(*o, want);
    // Built in: nothing to load.
    auto b = vm::module_load_order("",
                                   "kernel/fs/9p/9p.ko\nkernel/net/9p/9pnet_virtio.ko\n"
                                   "kernel/drivers/virtio/virtio_pci.ko\n",
                                   {"virtio_pci", "9pnet_virtio", "9p"});
    ASSERT_TRUE(b.ok());
    EXPECT_TRUE(b->empty());
    auto missing = vm::module_load_order("", "", {"9p"});
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("9p"), std::string::npos);
}

TEST(VmGuest, CpioIsWhatCpioReads) {
    std::string a = vm::cpio_newc(
        {{"bin", 040755, {}}, {"bin/hello", 0100755, "hi\n"}, {"dev/console", 020600, {}, 5, 1}});
    EXPECT_EQ(a.size() % 512, 0u);
    EXPECT_EQ(a.rfind("070701", 0), 0u);
    EXPECT_NE(a.find("TRAILER!!!"), std::string::npos);
    if (::access("/usr/bin/cpio", X_OK) != 0) GTEST_SKIP() << "no cpio to cross-check with";
    fixture::TempDir dir;
    std::ofstream(dir.path / "a.cpio", std::ios::binary) << a;
    auto o = fixture::run_program({"/usr/bin/cpio", "-itv", "-F", (dir.path / "a.cpio").string()});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    EXPECT_NE(o.out.find("bin/hello"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("crw-------"), std::string::npos) << o.out;
}

TEST(VmGuest, InitScriptQuotesTheCommand) {
    vm::InitPlan p;
    p.modules = {"virtio", "9p"};
    p.command = {"sh", "-c", "echo 'it''s' $HOME"};
    p.cwd = "/work/my dir";
    std::string s = vm::init_script(p);
    EXPECT_NE(s.find("for m in 'virtio' '9p'; do"), std::string::npos) << s;
    EXPECT_NE(s.find("C='/work/my dir'"), std::string::npos) << s;
    EXPECT_NE(s.find("-C \"$C\""), std::string::npos) << s;
    EXPECT_NE(s.find(" 'sh' '-c' 'echo '\\''it'\\'''\\''s'\\'' $HOME' </dev/null"),
              std::string::npos)
        << s;
    EXPECT_EQ(vm::sh_quote("a'b"), "'a'\\''b'");
}

// virtiofs: its modules (fuse first, from modules.dep) and its mount in /init.
TEST(VmGuest, VirtiofsModulesAndMount) {
    const char* dep = "kernel/drivers/virtio/virtio.ko:\n"
                      "kernel/drivers/virtio/virtio_ring.ko:\n"
                      "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko "
                      "kernel/drivers/virtio/virtio_ring.ko\n"
                      "kernel/fs/fuse/fuse.ko:\n"
                      "kernel/fs/fuse/virtiofs.ko: kernel/drivers/virtio/virtio.ko "
                      "kernel/drivers/virtio/virtio_ring.ko kernel/fs/fuse/fuse.ko\n";
    auto o = vm::module_load_order(dep, "", vm::share_modules(true));
    ASSERT_TRUE(o.ok()) << o.error().describe();
    EXPECT_EQ(*o, (std::vector<std::string>{
                      "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
                      "kernel/drivers/virtio/virtio_pci.ko", "kernel/fs/fuse/fuse.ko",
                      "kernel/fs/fuse/virtiofs.ko"}));
    EXPECT_EQ(vm::share_modules(false),
              (std::vector<std::string>{"virtio_pci", "9pnet_virtio", "9p"}));
    vm::InitPlan p;
    p.command = {"true"};
    p.virtiofs = true;
    const std::string v = vm::init_script(p);
    EXPECT_NE(v.find("$B mount -t virtiofs -o ro hostroot $R ||\n    fail \"cannot mount the host "
                     "root (virtiofs tag "
                     "hostroot)\""),
              std::string::npos)
        << v;
    EXPECT_EQ(v.find("-t 9p"), std::string::npos) << v;
    p.virtiofs = false;
    const std::string n = vm::init_script(p);
    EXPECT_NE(n.find("$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose "
                     "hostroot $R"),
              std::string::npos)
        << n;
    EXPECT_EQ(n.find("virtiofs"), std::string::npos) << n;
}

TEST(VmGuest, ElfStatic) {
    // The program headers follow the ELF header: the first 64 KiB hold them.
    auto head = [](const char* path) {
        std::ifstream f(path, std::ios::binary);
        std::string data(65536, '\0');
        f.read(data.data(), static_cast<std::streamsize>(data.size()));
        data.resize(static_cast<size_t>(f.gcount()));
        return data;
    };
    EXPECT_FALSE(vm::elf_is_static(head("/proc/self/exe"))); // this test links libc dynamically
    EXPECT_FALSE(vm::elf_is_static("garbage"));
    // A static ELF: the same header with its PT_INTERP entry turned into PT_NULL.
    std::string self = head("/proc/self/exe");
    const uint64_t phoff = *reinterpret_cast<const uint64_t*>(self.data() + 0x20);
    const uint16_t phentsize = *reinterpret_cast<const uint16_t*>(self.data() + 0x36);
    const uint16_t phnum = *reinterpret_cast<const uint16_t*>(self.data() + 0x38);
    for (uint16_t i = 0; i < phnum; ++i) {
        char* type = self.data() + phoff + uint64_t{i} * phentsize;
        if (*reinterpret_cast<uint32_t*>(type) == 3) *reinterpret_cast<uint32_t*>(type) = 0;
    }
    EXPECT_TRUE(vm::elf_is_static(self));
}

TEST(VmInGuest, KernelLogFindings) {
    auto f = vm::scan_kernel_log(
        "[ 1.0] pci 0000:01:00.0: BAR 1: no space for [mem size 0x2000000000 64bit pref]\n"
        "[ 1.1] pci 0000:01:00.0: BAR 1: failed to assign [mem size 0x2000000000 64bit pref]\n"
        "[ 2.0] NVRM: Xid (PCI:0000:01:00): 79, pid=0, GPU has fallen off the bus.\n"
        "[ 3.0] pcieport 0000:00:10.0: AER: Uncorrected (Fatal) error received: 0000:01:00.0\n"
        "[ 4.0] e1000e 0000:01:00.0 eth0: NIC Link is Up\n");
    ASSERT_EQ(f.size(), 4u);
    EXPECT_EQ(f[0].kind, "bar");
    EXPECT_EQ(f[2].kind, "xid");
    EXPECT_EQ(f[3].kind, "aer");
}

TEST(VmInGuest, ResourceFileBars) {
    auto b = vm::parse_resource_file("0x00000000fe000000 0x00000000fe01ffff 0x0000000000040200\n"
                                     "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                                     "0x000000000000c000 0x000000000000c01f 0x0000000000040101\n"
                                     "0x0000002000000000 0x0000003fffffffff 0x000000000014220c\n");
    ASSERT_EQ(b.size(), 3u);
    EXPECT_EQ(b[0].size, 128u * 1024);
    EXPECT_FALSE(b[0].is_io);
    EXPECT_TRUE(b[1].is_io);
    EXPECT_EQ(b[1].index, 2);
    EXPECT_EQ(b[2].size, 128ull << 30);
}

TEST(VmInGuest, NvidiaSmiCsv) {
    auto g =
        vm::parse_nvidia_smi("NVIDIA H100 PCIe, 81559 MiB, 550.54.15, 00000000:01:00.0\n\nbad\n");
    ASSERT_EQ(g.size(), 1u);
    EXPECT_EQ(g[0].name, "NVIDIA H100 PCIe");
    EXPECT_EQ(g[0].memory, "81559 MiB");
    EXPECT_EQ(g[0].driver_version, "550.54.15");
}

TEST(VmAccel, AutoFallsBackToTcgWithTheReason) {
    host::KvmState pvm;
    pvm.present = true;
    pvm.backend = "kvm_pvm";
    pvm.reason = "/dev/kvm is provided by kvm_pvm (PVM): ordinary guest kernels hang under it";
    auto a = vm::choose_accel(vm::Accel::automatic, pvm);
    EXPECT_FALSE(a.kvm);
    EXPECT_NE(a.warning.find("PVM"), std::string::npos);
    auto k = vm::choose_accel(vm::Accel::kvm, pvm);
    ASSERT_TRUE(k.error.has_value());
    host::KvmState good;
    good.usable = true;
    EXPECT_TRUE(vm::choose_accel(vm::Accel::automatic, good).kvm);
    EXPECT_FALSE(vm::choose_accel(vm::Accel::tcg, good).kvm);
}

TEST(VmAccel, PvmOnARecordedHostIsNotUsable) {
    fixture::TempDir dir;
    host::Host h(dir.path);
    ASSERT_TRUE(h.make_dirs("/sys/module/kvm_pvm").ok());
    ASSERT_TRUE(h.make_dirs("/dev").ok());
    ASSERT_TRUE(h.write_atomic("/dev/kvm", "").ok());
    auto k = vm::read_kvm_state(h);
    EXPECT_TRUE(k.present);
    EXPECT_FALSE(k.usable);
    EXPECT_EQ(k.backend, "kvm_pvm");
}

// CLI, bad input. Nothing here starts a VM with a device.

TEST(VmCli, GpuThatWillNotWorkStopsBeforeAnything) {
    auto t = fixture::seed_before();
    t.write("/boot/vmlinuz-test", "kernel");
    t.write("/usr/bin/qemu-system-x86_64", "");
    fixture::TempDir runs;
    auto o = test::run_on(t, {"vm", "start", "dev", "--kernel", "/boot/vmlinuz-test", "--gpu",
                              "8a:00.0", "--run-dir", runs.path.string()});
    EXPECT_EQ(o.exit_code, 3) << o.err;
    EXPECT_NE(o.err.find("passthrough of 0000:8a:00.0 WILL NOT WORK"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("intel_iommu=off"), std::string::npos) << o.err;
    EXPECT_FALSE(fs::exists(runs.path / "dev"));
}

TEST(VmCli, QemuNotInstalled) {
    auto t = fixture::seed_before();
    t.write("/boot/vmlinuz-test", "kernel");
    if (fs::exists(t.path("/usr/bin/qemu-system-x86_64")))
        fs::remove(t.path("/usr/bin/qemu-system-x86_64"));
    fixture::TempDir runs;
    auto o = test::run_on(t, {"vm", "start", "dev", "--kernel", "/boot/vmlinuz-test", "--run-dir",
                              runs.path.string()});
    EXPECT_EQ(o.exit_code, 1);
    EXPECT_NE(o.err.find("QEMU is not installed"), std::string::npos) << o.err;
}

TEST(VmCli, MissingKernelAndBadProfile) {
    auto t = fixture::seed_before();
    fixture::TempDir runs;
    auto o = test::run_on(
        t, {"vm", "start", "dev", "--kernel", "/boot/nope", "--run-dir", runs.path.string()});
    EXPECT_EQ(o.exit_code, 1);
    EXPECT_NE(o.err.find("kernel not found: /boot/nope"), std::string::npos) << o.err;
    t.write("/etc/vfioctl/vms/bad.toml", "cpus = 2\n\nbogus = true\n");
    auto b = test::run_on(t, {"vm", "start", "bad", "--run-dir", runs.path.string()});
    EXPECT_EQ(b.exit_code, 1);
    EXPECT_NE(b.err.find("/etc/vfioctl/vms/bad.toml:3: unknown key 'bogus'"), std::string::npos)
        << b.err;
    auto n = test::run_on(t, {"vm", "start", "nothing", "--run-dir", runs.path.string()});
    EXPECT_EQ(n.exit_code, 1);
    EXPECT_NE(n.err.find("no profile 'nothing'"), std::string::npos) << n.err;
}

// 'vm start' shares over 9p only: virtiofs in its profile is refused
// before anything starts.
TEST(VmCli, StartRefusesVirtiofs) {
    auto t = fixture::seed_before();
    t.write("/boot/vmlinuz-test", "kernel");
    t.write(
        "/etc/vfioctl/vms/vfs.toml",
        "share_host_root = true\nshare = \"virtiofs\"\n[boot]\nkernel = \"/boot/vmlinuz-test\"\n");
    fixture::TempDir runs;
    auto o = test::run_on(t, {"vm", "start", "vfs", "--run-dir", runs.path.string()});
    EXPECT_EQ(o.exit_code, 2);
    EXPECT_NE(o.err.find("'vm start' shares / over 9p only: /etc/vfioctl/vms/vfs.toml"),
              std::string::npos)
        << o.err;
    EXPECT_FALSE(fs::exists(runs.path / "vfs"));
}

TEST(VmCli, PortInUseAndAlreadyRunningAndStale) {
    const std::string kernel = stock_kernel();
    if (kernel.empty() || ::access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
        GTEST_SKIP() << "no kernel or QEMU";
    fixture::TempDir runs;
    // A port someone listens on.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    const std::string port = std::to_string(ntohs(sa.sin_port));
    auto o = test::run_vfioctl({"vm", "start", "p", "--kernel", kernel, "--ssh-port", port,
                                "--run-dir", runs.path.string()});
    EXPECT_EQ(o.exit_code, 1);
    EXPECT_NE(o.err.find("port " + port + " is already in use"), std::string::npos) << o.err;

    // A name whose QEMU runs (this test process stands in for it).
    vm::VmRecord r;
    r.name = "busy";
    r.pid = ::getpid();
    ASSERT_TRUE(vm::make_run_dir((runs.path / "busy").string()).ok());
    ASSERT_TRUE(vm::write_record((runs.path / "busy").string(), r).ok());
    auto b = test::run_vfioctl(
        {"vm", "start", "busy", "--kernel", kernel, "--run-dir", runs.path.string()});
    EXPECT_EQ(b.exit_code, 1);
    EXPECT_NE(b.err.find("VM 'busy' is already running (PID " + std::to_string(::getpid()) + ")"),
              std::string::npos)
        << b.err;

    // A stale record (its process is gone) is cleaned, then the port stops it.
    pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    ::waitpid(dead, nullptr, 0);
    r.name = "stale";
    r.pid = dead;
    ASSERT_TRUE(vm::make_run_dir((runs.path / "stale").string()).ok());
    ASSERT_TRUE(vm::write_record((runs.path / "stale").string(), r).ok());
    auto s = test::run_vfioctl({"vm", "start", "stale", "--kernel", kernel, "--ssh-port", port,
                                "--run-dir", runs.path.string()});
    EXPECT_EQ(s.exit_code, 1);
    EXPECT_NE(s.err.find("stale pidfile"), std::string::npos) << s.err;
    EXPECT_FALSE(fs::exists(runs.path / "stale"));
    auto l = test::run_vfioctl({"vm", "list", "--run-dir", runs.path.string()});
    EXPECT_EQ(l.exit_code, 0);
    EXPECT_NE(l.out.find("busy"), std::string::npos) << l.out;
    ::close(fd);
}

TEST(VmCli, StartStatusStopWithoutGpu) {
    const std::string kernel = stock_kernel();
    if (kernel.empty() || ::access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
        GTEST_SKIP() << "no kernel or QEMU";
    fixture::TempDir runs;
    const std::string rd = runs.path.string();
    auto s = test::run_vfioctl({"vm", "start", "plain", "--kernel", kernel, "--memory", "512",
                                "--accel", "tcg", "--run-dir", rd});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_EQ(s.out.rfind("VM started with PID ", 0), 0u) << s.out;
    struct stat st {};
    ASSERT_EQ(::stat((runs.path / "plain/qmp.sock").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto j = test::run_vfioctl({"--json", "vm", "status", "plain", "--run-dir", rd});
    EXPECT_EQ(j.exit_code, 0) << j.err;
    auto js = test::json_of(j);
    EXPECT_EQ(js.value("status", ""), "running");
    EXPECT_TRUE(js.value("alive", false));
    EXPECT_FALSE(js["guest_pci"].empty());
    auto again = test::run_vfioctl({"vm", "start", "plain", "--kernel", kernel, "--run-dir", rd});
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.err.find("already running"), std::string::npos);
    auto stop = test::run_vfioctl({"vm", "stop", "plain", "--timeout", "1", "--run-dir", rd});
    EXPECT_EQ(stop.exit_code, 0) << stop.err;
    EXPECT_NE(stop.out.find("VM plain "), std::string::npos) << stop.out;
    EXPECT_FALSE(fs::exists(runs.path / "plain"));
    // The console log is kept (appended to) in the run dir only while it runs.
}

namespace {

// Why 'vm run' cannot boot a guest here, or "": it needs the stock kernel,
// QEMU, and a static busybox where the initramfs builder looks for one.
// Decided before the run, so that a run that fails is a failure.
std::string no_vm_run_here(const std::string& kernel) {
    if (kernel.empty() || ::access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
        return "no kernel or QEMU";
    const host::Host live("/");
    const auto busybox = live.find_program("busybox");
    if (!busybox) return "no busybox installed (busybox-static)";
    std::ifstream f(*busybox, std::ios::binary);
    std::string head(65536, '\0');
    f.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(f.gcount()));
    if (!vm::elf_is_static(head)) return *busybox + " is not a static busybox";
    return {};
}

} // namespace

TEST(VmRun, TrueAndFalseUnderTcg) {
    const std::string kernel = stock_kernel();
    if (auto why = no_vm_run_here(kernel); !why.empty()) GTEST_SKIP() << why;
    fixture::TempDir runs;
    auto t = test::run_vfioctl({"vm", "run", "--kernel", kernel, "--accel", "tcg", "--run-dir",
                                runs.path.string(), "--", "true"});
    EXPECT_EQ(t.exit_code, 0) << t.err;
    auto f = test::run_vfioctl({"vm", "run", "--kernel", kernel, "--accel", "tcg", "--run-dir",
                                runs.path.string(), "--", "false"});
    EXPECT_EQ(f.exit_code, 1) << f.err;
    auto e = test::run_vfioctl({"vm", "run", "--kernel", kernel, "--accel", "tcg", "--run-dir",
                                runs.path.string(), "--", "sh", "-c", "echo out-$((6*7)); exit 7"});
    EXPECT_EQ(e.exit_code, 7) << e.err;
    EXPECT_EQ(e.out, "out-42\n");
}

TEST(VmRun, APanicEndsInBoundedTimeWithTheConsoleTail) {
    const std::string kernel = stock_kernel();
    if (auto why = no_vm_run_here(kernel); !why.empty()) GTEST_SKIP() << why;
    fixture::TempDir runs;
    // init=... is ignored with an initramfs; rdinit pointing nowhere panics.
    auto o = test::run_vfioctl({"vm", "run", "--kernel", kernel, "--accel", "tcg", "--append",
                                "rdinit=/nonexistent", "--boot-timeout", "60", "--run-dir",
                                runs.path.string(), "--", "true"});
    EXPECT_NE(o.exit_code, 0);
    EXPECT_NE(o.err.find("last console lines"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("Kernel panic"), std::string::npos) << o.err;
}

namespace {

std::string read_all(const fs::path& p, size_t max = SIZE_MAX) {
    std::ifstream f(p, std::ios::binary);
    std::string s(std::min<size_t>(max, 64 << 20), '\0');
    f.read(s.data(), static_cast<std::streamsize>(s.size()));
    s.resize(static_cast<size_t>(f.gcount()));
    return s;
}

// Why the virtiofs runs cannot happen here, or "".
std::string no_virtiofs_here(const std::string& kernel) {
    if (auto why = no_vm_run_here(kernel); !why.empty()) return why;
    if (auto d = vm::find_virtiofsd(host::Host("/")); !d) return d.error().describe();
    if (::geteuid() != 0) return "virtiofsd needs root";
    return {};
}

} // namespace

// A kernel's modules from its own directory (as 'make modules_install
// INSTALL_MOD_PATH=DIR' leaves them), not /lib/modules: --modules DIR. Only
// the modules the guest needs are copied there, so the boot proves they came
// from DIR; a DIR without 9p is refused before QEMU starts.
TEST(VmRun, ModulesFromTheKernelsOwnDirectory) {
    const std::string kernel = stock_kernel();
    if (auto why = no_vm_run_here(kernel); !why.empty()) GTEST_SKIP() << why;
    auto release = vm::bzimage_release(read_all(kernel, 32768));
    ASSERT_TRUE(release.ok()) << release.error().describe();
    const fs::path src = "/lib/modules/" + *release;
    if (!fs::exists(src / "modules.dep")) GTEST_SKIP() << "no " << src.string();
    const std::string dep = read_all(src / "modules.dep"),
                      builtin = read_all(src / "modules.builtin");
    auto order = vm::module_load_order(dep, builtin, {"virtio_pci", "9pnet_virtio", "9p"});
    ASSERT_TRUE(order.ok()) << order.error().describe();
    fixture::TempDir mods;
    std::string dep_kept;
    for (const auto& f : *order) {
        fs::create_directories((mods.path / f).parent_path());
        fs::copy_file(src / f, mods.path / f);
        for (const auto& line : util::split(dep, '\n'))
            if (line.rfind(f + ":", 0) == 0) dep_kept += line + "\n";
    }
    std::ofstream(mods.path / "modules.dep") << dep_kept;
    std::ofstream(mods.path / "modules.builtin") << builtin;
    fixture::TempDir runs;
    auto r = test::run_vfioctl({"vm", "run", "--kernel", kernel, "--modules", mods.path.string(),
                                "--accel", "tcg", "--run-dir", runs.path.string(), "--", "sh", "-c",
                                "exit 3"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    // DIR has no virtiofs: auto says so and shares over 9p. A virtiofsd
    // that could keep too few files open is found first (before packing).
    if (no_virtiofs_here(kernel).empty()) {
        const std::string few = vm::virtiofsd_file_limit_problem();
        const std::string why =
            few.empty() ? "kernel module fuse is neither in modules.dep nor built in" : few;
        EXPECT_NE(r.err.find("vfioctl: warning: sharing / over 9p, not virtiofs: " + why + "\n"),
                  std::string::npos)
            << r.err;
    }

    // Without the guest's modules there: a clear error naming one, and no guest.
    fixture::TempDir bare;
    std::ofstream(bare.path / "modules.dep") << "kernel/drivers/virtio/virtio.ko:\n";
    std::ofstream(bare.path / "modules.builtin") << "";
    auto t0 = std::chrono::steady_clock::now();
    auto m = test::run_vfioctl({"vm", "run", "--kernel", kernel, "--modules", bare.path.string(),
                                "--accel", "tcg", "--run-dir", runs.path.string(), "--", "true"});
    EXPECT_NE(m.exit_code, 0);
    EXPECT_NE(m.err.find("kernel module virtio_pci is neither in modules.dep nor built in"),
              std::string::npos)
        << m.err;
    EXPECT_NE(m.err.find("--modules DIR"), std::string::npos) << m.err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

namespace {

// The processes whose command line mentions text (a run directory: the
// virtiofsd of a run has its socket there).
std::vector<pid_t> processes_mentioning(const std::string& text) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::string cmd = read_all(e.path() / "cmdline");
        std::replace(cmd.begin(), cmd.end(), '\0', ' ');
        if (cmd.find(text) != std::string::npos) out.push_back(static_cast<pid_t>(std::stoi(name)));
    }
    return out;
}

// What the guest sees as the share: its /proc/mounts line for / (the
// command runs chrooted into the share) and the file system type of /
// (fuseblk for virtiofs).
const char* k_show_share = "grep ' / ' /proc/mounts; stat -f -c %T /; exit 5";

} // namespace

// --share virtiofs boots with / over virtiofs, read-only, and the command's
// exit code comes back; no virtiofsd is left after 'vm run' returns. Auto
// takes virtiofs here too; --share 9p still shares over 9p.
TEST(VmRun, VirtiofsAutoAnd9p) {
    const std::string kernel = stock_kernel();
    if (auto why = no_virtiofs_here(kernel); !why.empty()) GTEST_SKIP() << why;
    fixture::TempDir runs;
    auto run = [&](const std::vector<std::string>& share) {
        std::vector<std::string> args = {"vm",      "run", "--kernel",  kernel,
                                         "--accel", "tcg", "--run-dir", runs.path.string()};
        args.insert(args.end(), share.begin(), share.end());
        for (const char* a : {"--", "sh", "-c", k_show_share})
            args.push_back(a);
        return test::run_vfioctl(args);
    };
    auto v = run({"--share", "virtiofs"});
    EXPECT_EQ(v.exit_code, 5) << v.err;
    EXPECT_NE(v.out.find("hostroot / virtiofs ro,"), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("\nfuseblk\n"), std::string::npos) << v.out;
    EXPECT_EQ(processes_mentioning(runs.path.string()), std::vector<pid_t>{});
    // Auto takes virtiofs unless virtiofsd may keep too few files open (a
    // container's hard limit), and then says so.
    const std::string few = vm::virtiofsd_file_limit_problem();
    if (!few.empty()) {
        EXPECT_NE(v.err.find("vfioctl: warning: --share virtiofs: " + few + "\n"),
                  std::string::npos)
            << v.err;
    }
    auto a = run({});
    EXPECT_EQ(a.exit_code, 5) << a.err;
    if (few.empty()) {
        EXPECT_NE(a.out.find("hostroot / virtiofs ro,"), std::string::npos) << a.out;
        EXPECT_EQ(a.err.find("warning"), std::string::npos) << a.err;
    } else {
        EXPECT_NE(a.out.find("hostroot / 9p ro,"), std::string::npos) << a.out;
        EXPECT_NE(a.err.find("vfioctl: warning: sharing / over 9p, not virtiofs: " + few + "\n"),
                  std::string::npos)
            << a.err;
    }
    auto n = run({"--share", "9p"});
    EXPECT_EQ(n.exit_code, 5) << n.err;
    EXPECT_NE(n.out.find("hostroot / 9p ro,"), std::string::npos) << n.out;
    // 9p passes the host's statfs type through (ext2/ext3 for ext4): no FUSE.
    EXPECT_EQ(n.out.find("fuseblk"), std::string::npos) << n.out;
    EXPECT_EQ(processes_mentioning(runs.path.string()), std::vector<pid_t>{});
}

// The guest's command is root there and can remount the share read-write;
// the host's files stay unwritten all the same, over virtiofs (virtiofsd
// serves a read-only view of /) as over 9p (QEMU's readonly=on).
TEST(VmRun, ReadOnlyEvenWhenTheGuestRemountsReadWrite) {
    const std::string kernel = stock_kernel();
    if (auto why = no_virtiofs_here(kernel); !why.empty()) GTEST_SKIP() << why;
    char tmpl[] = "/var/tmp/vfioctl-ro-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const fs::path dir = tmpl;
    std::ofstream(dir / "f") << "host\n";
    fixture::TempDir runs;
    for (const char* share : {"virtiofs", "9p"}) {
        const std::string script =
            "mount -o remount,rw / && grep ' / ' /proc/mounts; echo guest > " +
            (dir / "f").string() + "; touch " + (dir / "new").string() + "; exit 4";
        auto o =
            test::run_vfioctl({"vm", "run", "--share", share, "--kernel", kernel, "--accel", "tcg",
                               "--run-dir", runs.path.string(), "--", "sh", "-c", script});
        EXPECT_EQ(o.exit_code, 4) << share << ": " << o.err;
        EXPECT_NE(o.out.find(std::string("hostroot / ") + share + " rw,"), std::string::npos)
            << o.out;
        EXPECT_NE(o.out.find("Read-only file system"), std::string::npos) << o.out;
        EXPECT_EQ(read_all(dir / "f"), "host\n") << share;
        EXPECT_FALSE(fs::exists(dir / "new")) << share;
    }
    fs::remove_all(dir);
}

// A virtiofsd that cannot start: auto says why in one line and shares over
// 9p (where virtiofsd may keep too few files open, that is the reason it
// gives first); --share virtiofs fails before QEMU starts. Either way none
// is left.
TEST(VmRun, VirtiofsdThatFailsFallsBackTo9pOrFails) {
    const std::string kernel = stock_kernel();
    if (auto why = no_virtiofs_here(kernel); !why.empty()) GTEST_SKIP() << why;
    fixture::TempDir bin, runs;
    // First on PATH: claims to be the C virtiofsd, then exits.
    const std::string fake = (bin.path / "virtiofsd").string();
    std::ofstream(fake)
        << "#!/bin/sh\n[ \"$1\" = --help ] && { echo '    -o source=PATH'; exit 0; }\n"
           "echo 'fuse: something is wrong' >&2\nexit 1\n";
    ::chmod(fake.c_str(), 0755);
    const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
    ::setenv("PATH", (bin.path.string() + ":" + path).c_str(), 1);
    auto a = test::run_vfioctl({"vm", "run", "--kernel", kernel, "--accel", "tcg", "--run-dir",
                                runs.path.string(), "--", "sh", "-c", k_show_share});
    auto e = test::run_vfioctl({"vm", "run", "--share", "virtiofs", "--kernel", kernel, "--accel",
                                "tcg", "--run-dir", runs.path.string(), "--", "true"});
    ::setenv("PATH", path.c_str(), 1);
    EXPECT_EQ(a.exit_code, 5) << a.err;
    EXPECT_NE(a.out.find("hostroot / 9p ro,"), std::string::npos) << a.out;
    const std::string few = vm::virtiofsd_file_limit_problem();
    const std::string why =
        few.empty() ? "virtiofsd exited (status 1): fuse: something is wrong: " + fake : few;
    EXPECT_NE(a.err.find("vfioctl: warning: sharing / over 9p, not virtiofs: " + why + "\n"),
              std::string::npos)
        << a.err;
    EXPECT_EQ(e.exit_code, 1);
    EXPECT_NE(e.err.find("cannot share / over virtiofs: virtiofsd exited (status 1)"),
              std::string::npos)
        << e.err;
    EXPECT_EQ(processes_mentioning(runs.path.string()), std::vector<pid_t>{});
}

// A guest that panics under virtiofs: 'vm run' ends in bounded time and
// its virtiofsd is gone too.
TEST(VmRun, APanicUnderVirtiofsLeavesNoVirtiofsd) {
    const std::string kernel = stock_kernel();
    if (auto why = no_virtiofs_here(kernel); !why.empty()) GTEST_SKIP() << why;
    fixture::TempDir runs;
    auto o = test::run_vfioctl({"vm", "run", "--share", "virtiofs", "--kernel", kernel, "--accel",
                                "tcg", "--append", "rdinit=/nonexistent", "--boot-timeout", "60",
                                "--run-dir", runs.path.string(), "--", "true"});
    EXPECT_NE(o.exit_code, 0);
    EXPECT_NE(o.err.find("Kernel panic"), std::string::npos) << o.err;
    EXPECT_EQ(processes_mentioning(runs.path.string()), std::vector<pid_t>{});
}
