// The QEMU argv builder: golden command lines, BAR-sized windows, and the
// same argv run by the real QEMU (-S, then QMP query-pci) to show that the
// topology is the one meant.

#include "fixture/fixture.hpp"
#include "vm/argv.hpp"
#include "vm/process.hpp"
#include "vm/qmp.hpp"
#include "vm/virtiofs.hpp"

#include <csignal>
#include <gtest/gtest.h>
#include <unistd.h>

using namespace vfioctl;

namespace {

constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

vm::PassFunction fn(const char* addr, uint16_t vendor, uint16_t device, uint16_t cls,
                    std::vector<pci::Bar> bars = {}) {
    return {*pci::PciAddress::parse(addr), vendor, device, cls, std::move(bars), "vfio-pci"};
}

// An H100 PCIe: 16 MiB registers, a 128 GiB 64-bit prefetchable BAR1 and 32 MiB BAR3.
vm::PassSlot h100() {
    return {{fn("8a:00.0", 0x10de, 0x2336, 0x0302,
                {{0, 16 * MiB, false, false, false},
                 {1, 128 * GiB, true, true, false},
                 {3, 32 * MiB, true, true, false}})}};
}

// Whatever fails in a test, the QEMU it started does not outlive it.
struct Reaper {
    pid_t pid;
    ~Reaper() {
        if (vm::wait_child(pid, 0)) return;
        ::kill(pid, SIGKILL);
        vm::wait_child(pid, -1);
    }
};

vm::Profile dev_profile() {
    vm::Profile p;
    p.name = "dev";
    p.memory_mib = 8192;
    p.cpus = 4;
    p.boot.kernel = "/boot/vmlinuz";
    p.boot.append = "console=ttyS0";
    p.share_host_root = true;
    p.ssh_port = 2222;
    return p;
}

} // namespace

TEST(VmArgv, GoldenWithoutGpu) {
    vm::LaunchSpec s;
    s.qemu = "/usr/bin/qemu-system-x86_64";
    s.qmp_socket = "/run/vfioctl/dev/qmp.sock";
    s.pidfile = "/run/vfioctl/dev/qemu.pid";
    s.daemonize = true;
    s.serials = {{vm::SerialPort::socket, "/run/vfioctl/dev/console.sock", "/var/log/dev,1.log"}};
    const std::vector<std::string> want = {
        "/usr/bin/qemu-system-x86_64",
        "-name",
        "dev",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "8192M",
        "-smp",
        "4",
        "-daemonize",
        "-pidfile",
        "/run/vfioctl/dev/qemu.pid",
        "-qmp",
        "unix:/run/vfioctl/dev/qmp.sock,server=on,wait=off",
        "-chardev",
        "socket,id=serial0,path=/run/vfioctl/dev/console.sock,server=on,wait=off,logfile=/var/log/"
        "dev,,1.log,"
        "logappend=on",
        "-serial",
        "chardev:serial0",
        "-kernel",
        "/boot/vmlinuz",
        "-append",
        "console=ttyS0",
        "-fsdev",
        "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device",
        "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-netdev",
        "user,id=net0,hostfwd=tcp::2222-:22",
        "-device",
        "virtio-net-pci,netdev=net0,romfile="};
    EXPECT_EQ(vm::qemu_argv(dev_profile(), s), want);
}

// virtiofs: the guest's RAM a shared memfd (vhost-user maps it), the
// vhost-user-fs device on virtiofsd's socket, and no 9p.
TEST(VmArgv, GoldenVirtiofsShare) {
    vm::Profile p = dev_profile();
    p.ssh_port.reset();
    vm::LaunchSpec s;
    s.qemu = "qemu";
    s.no_reboot = true;
    s.initrd_override = "/run/vfioctl/run.7/initramfs.cpio";
    s.virtiofs_socket = "/run/vfioctl/run,7/virtiofs.sock";
    const std::vector<std::string> want = {"qemu",
                                           "-name",
                                           "dev",
                                           "-nodefaults",
                                           "-no-user-config",
                                           "-display",
                                           "none",
                                           "-machine",
                                           "q35,memory-backend=mem",
                                           "-accel",
                                           "tcg",
                                           "-cpu",
                                           "max",
                                           "-m",
                                           "8192M",
                                           "-smp",
                                           "4",
                                           "-object",
                                           "memory-backend-memfd,id=mem,size=8192M,share=on",
                                           "-no-reboot",
                                           "-kernel",
                                           "/boot/vmlinuz",
                                           "-initrd",
                                           "/run/vfioctl/run.7/initramfs.cpio",
                                           "-append",
                                           "console=ttyS0",
                                           "-chardev",
                                           "socket,id=vfs,path=/run/vfioctl/run,,7/virtiofs.sock",
                                           "-device",
                                           "vhost-user-fs-pci,chardev=vfs,tag=hostroot"};
    EXPECT_EQ(vm::qemu_argv(p, s), want);
    // Not sharing the host root: the socket changes nothing.
    p.share_host_root = false;
    vm::LaunchSpec plain = s;
    plain.virtiofs_socket.clear();
    EXPECT_EQ(vm::qemu_argv(p, s), vm::qemu_argv(p, plain));
}

TEST(VmArgv, GoldenH100WithAudioCompanionUnderKvm) {
    vm::Profile p = dev_profile();
    p.share_host_root = false;
    p.ssh_port.reset();
    p.extra_args = {"-S"};
    vm::LaunchSpec s;
    s.qemu = "qemu";
    s.kvm = true;
    vm::PassSlot gpu = h100();
    gpu.functions.push_back(
        fn("8a:00.1", 0x10de, 0x22a3, 0x0403, {{0, 16 * 1024, false, false, false}}));
    s.slots = {gpu, {{fn("8b:00.0", 0x15b3, 0x101d, 0x0200)}}};
    s.serials = {{vm::SerialPort::file, "/tmp/c.log", {}}};
    const std::vector<std::string> want = {
        "qemu",
        "-name",
        "dev",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-machine",
        "q35",
        "-accel",
        "kvm",
        "-cpu",
        "host,host-phys-bits=on",
        "-m",
        "8192M",
        "-smp",
        "4",
        "-global",
        "q35-pcihost.pci-hole64-size=512G",
        "-chardev",
        "file,id=serial0,path=/tmp/c.log,append=on",
        "-serial",
        "chardev:serial0",
        "-kernel",
        "/boot/vmlinuz",
        "-append",
        "console=ttyS0",
        "-device",
        "pcie-root-port,id=rp0,bus=pcie.0,chassis=1,addr=10.0",
        "-device",
        "vfio-pci,host=0000:8a:00.0,id=hostdev0,bus=rp0,addr=00.0,multifunction=on",
        "-device",
        "vfio-pci,host=0000:8a:00.1,id=hostdev0-1,bus=rp0,addr=00.1",
        "-device",
        "pcie-root-port,id=rp1,bus=pcie.0,chassis=2,addr=11.0",
        "-device",
        "vfio-pci,host=0000:8b:00.0,id=hostdev1,bus=rp1,addr=00.0",
        "-S"};
    EXPECT_EQ(vm::qemu_argv(p, s), want);
    for (const auto& a : vm::qemu_argv(p, s))
        EXPECT_EQ(a.find("x-vga"), std::string::npos) << a;
}

TEST(VmArgv, TcgAsksForPhysBitsWhenABarIs64GiBClass) {
    vm::Profile p = dev_profile();
    vm::LaunchSpec s;
    s.slots = {h100()};
    auto argv = vm::qemu_argv(p, s);
    auto cpu = std::find(argv.begin(), argv.end(), "-cpu");
    ASSERT_NE(cpu, argv.end());
    EXPECT_EQ(*(cpu + 1), "max,phys-bits=40");
}

TEST(VmArgv, MmioPlanSizesTheWindowFromTheBars) {
    auto none = vm::plan_mmio({}, 2048);
    EXPECT_EQ(none.hole64_bytes, 0u);
    EXPECT_EQ(none.phys_bits, 0);
    auto one = vm::plan_mmio({h100()}, 2048);
    EXPECT_EQ(one.bar_bytes, 128 * GiB + 32 * MiB);
    EXPECT_EQ(one.hole64_bytes, 512 * GiB);
    EXPECT_EQ(one.phys_bits, 40);
    // Eight H100s with 1 TiB of RAM: a 4 TiB window past 1 TiB needs 43 bits.
    std::vector<vm::PassSlot> eight(8, h100());
    auto big = vm::plan_mmio(eight, 1024 * 1024);
    EXPECT_EQ(big.hole64_bytes, 4096 * GiB);
    EXPECT_EQ(big.phys_bits, 43);
    // A small 64-bit BAR fits QEMU's default window.
    vm::PassSlot nic{
        {fn("03:00.0", 0x8086, 0x10d3, 0x0200, {{0, 128 * 1024, true, false, false}})}};
    auto small = vm::plan_mmio({nic}, 2048);
    EXPECT_EQ(small.hole64_bytes, 0u);
    EXPECT_EQ(small.phys_bits, 0);
}

TEST(VmArgv, GroupSlotsKeepsAGpusFunctionsTogether) {
    pci::PciDevice gpu, audio, other;
    gpu.addr = *pci::PciAddress::parse("8a:00.0");
    gpu.class_code = 0x0302;
    audio.addr = *pci::PciAddress::parse("8a:00.1");
    other.addr = *pci::PciAddress::parse("03:00.0");
    auto slots = vm::group_slots({&audio, &other, &gpu});
    ASSERT_EQ(slots.size(), 2u);
    EXPECT_EQ(slots[0].functions.at(0).host.str(), "0000:03:00.0");
    ASSERT_EQ(slots[1].functions.size(), 2u);
    EXPECT_EQ(slots[1].functions[0].host.str(), "0000:8a:00.0");
    EXPECT_EQ(slots[1].functions[1].host.str(), "0000:8a:00.1");
}

TEST(VmArgv, SizeArg) {
    EXPECT_EQ(vm::size_arg(512 * GiB), "512G");
    EXPECT_EQ(vm::size_arg(4096 * GiB), "4T");
    EXPECT_EQ(vm::size_arg(3 * MiB), "3M");
    EXPECT_EQ(vm::size_arg(1000), "1000");
}

TEST(VmArgvQemu, RealQemuShowsTheMeantTopology) {
    const char* qemu = "/usr/bin/qemu-system-x86_64";
    if (::access(qemu, X_OK) != 0) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
    fixture::TempDir dir;
    vm::Profile p;
    p.name = "topology";
    p.memory_mib = 2048;
    p.cpus = 1;
    p.extra_args = {"-S"}; // first checked as QEMU accepted it, before the firmware runs
    vm::LaunchSpec s;
    s.qemu = qemu;
    s.qmp_socket = (dir.path / "qmp.sock").string();
    s.serials = {{vm::SerialPort::file, (dir.path / "console.log").string(), {}}};
    // Emulated stand-ins for host functions: a two-function slot and a
    // single one, each behind its own root port; an H100-sized BAR so that
    // the window and phys-bits go through QEMU too.
    auto e1000e = [](const char* addr) {
        auto f = fn(addr, 0x8086, 0x10d3, 0x0200);
        f.model = "e1000e,romfile=";
        return f;
    };
    vm::PassSlot two{{e1000e("8a:00.0"), e1000e("8a:00.1")}};
    two.functions[0].bars = h100().functions[0].bars;
    s.slots = {two, {{e1000e("8b:00.0")}}};
    auto argv = vm::qemu_argv(p, s);
    ASSERT_NE(std::find(argv.begin(), argv.end(), "q35-pcihost.pci-hole64-size=512G"), argv.end());
    auto pid = vm::spawn(argv);
    ASSERT_TRUE(pid.ok()) << pid.error().describe();
    Reaper reaper{*pid};
    auto qmp = vm::QmpClient::connect(s.qmp_socket, 20000);
    ASSERT_TRUE(qmp.ok()) << qmp.error().describe();
    auto st = qmp->query_status();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(*st, "prelaunch");
    auto hole =
        qmp->execute("qom-get", {{"path", "/machine/q35"}, {"property", "pci-hole64-size"}});
    ASSERT_TRUE(hole.ok()) << hole.error().describe();
    EXPECT_EQ(hole->get<uint64_t>(), 512 * GiB);
    // Bridges get bus numbers from the guest's firmware: let it run (no
    // boot device, so it stops after enumerating) until the devices behind
    // the root ports show.
    ASSERT_TRUE(qmp->execute("cont").ok());
    Result<std::vector<vm::GuestPciDevice>> pci = std::vector<vm::GuestPciDevice>{};
    auto find = [&](const std::string& id) -> const vm::GuestPciDevice* {
        for (const auto& d : *pci)
            if (d.qdev_id == id) return &d;
        return nullptr;
    };
    for (int i = 0; i < 300; ++i) {
        pci = qmp->query_pci();
        ASSERT_TRUE(pci.ok()) << pci.error().describe();
        if (find("hostdev0") && find("hostdev1")) break;
        ::usleep(100000);
    }
    const auto *rp0 = find("rp0"), *rp1 = find("rp1"), *f0 = find("hostdev0"),
               *f1 = find("hostdev0-1"), *g = find("hostdev1");
    ASSERT_TRUE(rp0 && rp1 && f0 && f1 && g);
    EXPECT_EQ(rp0->parent, "");
    EXPECT_EQ(rp0->slot, 0x10);
    EXPECT_EQ(rp1->slot, 0x11);
    EXPECT_EQ(rp0->class_code, 0x0604);
    // The two functions share one slot behind rp0; the other device is
    // alone behind rp1.
    EXPECT_EQ(f0->parent, "rp0");
    EXPECT_EQ(f1->parent, "rp0");
    EXPECT_EQ(f0->slot, 0);
    EXPECT_EQ(f1->slot, 0);
    EXPECT_EQ(f0->function, 0);
    EXPECT_EQ(f1->function, 1);
    EXPECT_NE(f0->bus, 0);
    EXPECT_EQ(f0->bus, f1->bus);
    EXPECT_NE(g->bus, f0->bus);
    EXPECT_EQ(g->parent, "rp1");
    EXPECT_EQ(g->function, 0);
    size_t behind_rp1 = 0;
    for (const auto& d : *pci)
        behind_rp1 += d.parent == "rp1";
    EXPECT_EQ(behind_rp1, 1u);
    EXPECT_EQ(f0->vendor, 0x8086);
    EXPECT_EQ(f0->device, 0x10d3);
    EXPECT_TRUE(qmp->quit().ok());
    EXPECT_TRUE(vm::wait_child(*pid, 10000).has_value());
}

// The virtiofs argv run by the real QEMU against the real virtiofsd: QEMU
// connects to the socket at start (-S), and QMP shows the shared memfd and
// the vhost-user-fs device (virtio 1af4:105a) on the bus.
TEST(VmArgvQemu, RealQemuTakesTheVirtiofsShare) {
    const char* qemu = "/usr/bin/qemu-system-x86_64";
    if (::access(qemu, X_OK) != 0) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
    auto d = vm::find_virtiofsd(host::Host("/"));
    if (!d) GTEST_SKIP() << d.error().describe();
    if (::geteuid() != 0) GTEST_SKIP() << "virtiofsd needs root";
    fixture::TempDir dir;
    auto server = vm::VirtiofsServer::start(*d, dir.path.string(), 5000);
    ASSERT_TRUE(server.ok()) << server.error().describe();
    vm::Profile p;
    p.name = "virtiofs";
    p.memory_mib = 256;
    p.cpus = 1;
    p.share_host_root = true;
    p.extra_args = {"-S"};
    vm::LaunchSpec s;
    s.qemu = qemu;
    s.qmp_socket = (dir.path / "qmp.sock").string();
    s.virtiofs_socket = server->socket();
    auto pid = vm::spawn(vm::qemu_argv(p, s));
    ASSERT_TRUE(pid.ok()) << pid.error().describe();
    Reaper reaper{*pid};
    auto qmp = vm::QmpClient::connect(s.qmp_socket, 20000);
    ASSERT_TRUE(qmp.ok()) << qmp.error().describe();
    auto share = qmp->execute("qom-get", {{"path", "/objects/mem"}, {"property", "share"}});
    ASSERT_TRUE(share.ok()) << share.error().describe();
    EXPECT_TRUE(share->get<bool>());
    auto pci = qmp->query_pci();
    ASSERT_TRUE(pci.ok()) << pci.error().describe();
    bool fs = false;
    for (const auto& dev : *pci)
        fs |= dev.vendor == 0x1af4 && dev.device == 0x105a;
    EXPECT_TRUE(fs);
    EXPECT_TRUE(qmp->quit().ok());
    EXPECT_TRUE(vm::wait_child(*pid, 10000).has_value());
    // QEMU gone: its virtiofsd goes too, and stop() reaps it.
    const pid_t vpid = server->pid();
    server->stop();
    EXPECT_FALSE(vm::process_alive(vpid));
}
