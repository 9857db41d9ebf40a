// Boots Debian's kernel with a busybox initramfs under QEMU on this machine,
// with the argv vfioctl builds (vm::prepare_firmware, vm::qemu_argv), once
// per firmware, and a stand-in for a GPU: ivshmem-plain over a sparse file,
// whose BAR2 is as large as the file (64-bit, prefetchable; nothing is
// allocated). The guest prints BAR2's line of sysfs 'resource' and powers
// off. The stand-in travels as a passed-through function with an emulated
// model, so that vfioctl sizes the windows from its BAR as from a GPU's.
//
// What it shows (OVMF 2022.11, QEMU 7.2, phys-bits 40, measured):
// - a 256 GiB BAR is assigned under SeaBIOS and, with vfioctl's
//   X-PciMmio64Mb, under OVMF; left at OVMF's default aperture it is not;
// - a 64 GiB BAR fits OVMF's default here, which is already sized from
//   phys-bits (128 GiB at 896 GiB), so no guest needs the fw_cfg for it.

#include "fixture/fixture.hpp"
#include "host/host.hpp"
#include "vm/argv.hpp"
#include "vm/firmware.hpp"
#include "vm/process.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <sys/utsname.h>
#include <unistd.h>

using namespace vfioctl;

namespace {

constexpr uint64_t GiB = 1ull << 30;

// The guest's PID 1: the ivshmem function's BAR2 (sysfs resource, line 3).
constexpr const char* k_init = R"sh(#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
for d in /sys/bus/pci/devices/*; do
  if [ "$(/bin/busybox cat "$d/vendor")" = 0x1af4 ] && [ "$(/bin/busybox cat "$d/device")" = 0x1110 ]; then
    echo "bar-probe: $d $(/bin/busybox sed -n 3p "$d/resource")"
  fi
done
echo "bar-probe: done"
/bin/busybox poweroff -f
)sh";

// One entry of a newc cpio archive (what the kernel unpacks as initramfs).
void cpio_entry(std::string& out, const std::string& name, unsigned mode, const std::string& data) {
    static unsigned ino = 1;
    char hdr[111];
    const int n = std::snprintf(
        hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino++,
        mode, 0u, 0u, 1u, 0u, data.size(), 0u, 0u, 0u, 0u, name.size() + 1, 0u);
    EXPECT_EQ(n, 110);
    out += hdr;
    out += name;
    out += '\0';
    out.append((4 - out.size() % 4) % 4, '\0');
    out += data;
    out.append((4 - out.size() % 4) % 4, '\0');
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// A static busybox, or "".
std::string static_busybox() {
    const host::Tree live("/");
    for (const char* c : {"/bin/busybox", "/usr/bin/busybox"}) {
        if (::access(c, X_OK) != 0) continue;
        // The initramfs has no C library: ldd must find none.
        auto r = live.run({"/usr/bin/ldd", c}, 10000);
        if (r && (r->output.find("not a dynamic executable") != std::string::npos ||
                  r->output.find("statically linked") != std::string::npos))
            return c;
    }
    return {};
}

// The running kernel's image, else the newest one in /boot; "" when none.
std::string kernel_image() {
    struct utsname u {};
    if (::uname(&u) == 0) {
        std::string k = std::string("/boot/vmlinuz-") + u.release;
        if (::access(k.c_str(), R_OK) == 0) return k;
    }
    std::string newest;
    for (const auto& f : host::Tree("/").list("/boot").value_or(std::vector<std::string>{}))
        if (f.starts_with("vmlinuz-") && f > newest) newest = f;
    return newest.empty() ? "" : "/boot/" + newest;
}

struct BarLine {
    bool found = false;
    uint64_t start = 0, end = 0;
};

// What a guest printed about BAR2.
BarLine parse_probe(const std::string& console) {
    BarLine b;
    std::istringstream in(console);
    std::string line;
    while (std::getline(in, line)) {
        const auto at = line.find("bar-probe: /sys");
        if (at == std::string::npos) continue;
        std::istringstream fields(line.substr(at + 11));
        std::string dev, start, end;
        fields >> dev >> start >> end;
        b.found = true;
        b.start = std::stoull(start, nullptr, 16);
        b.end = std::stoull(end, nullptr, 16);
    }
    return b;
}

class FirmwareBoot : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        const host::Tree live("/");
        s_qemu = live.find_program("qemu-system-x86_64").value_or("");
        s_kernel = kernel_image();
        const std::string busybox = static_busybox();
        if (s_qemu.empty()) s_skip = "qemu-system-x86_64 is not installed";
        if (s_kernel.empty()) s_skip = "no kernel image in /boot";
        if (busybox.empty()) s_skip = "no static busybox (install busybox-static)";
        if (!vm::find_ovmf(live, {vm::Firmware::uefi, "", ""}))
            s_skip = "OVMF is not installed (install ovmf)";
        if (!s_skip.empty()) return;
        s_dir = new fixture::TempDir();
        std::string cpio;
        for (const char* d : {"bin", "proc", "sys", "dev"})
            cpio_entry(cpio, d, 040755, "");
        cpio_entry(cpio, "bin/busybox", 0100755, slurp(busybox));
        cpio_entry(cpio, "init", 0100755, k_init);
        cpio_entry(cpio, "TRAILER!!!", 0, "");
        s_initrd = (s_dir->path / "initrd.cpio").string();
        std::ofstream(s_initrd, std::ios::binary) << cpio;
    }
    static void TearDownTestSuite() {
        delete s_dir;
        s_dir = nullptr;
    }
    void SetUp() override {
        if (!s_skip.empty()) GTEST_SKIP() << s_skip;
    }

    // Boots one guest with a bar_bytes BAR; what it saw of BAR2.
    BarLine boot(vm::Firmware fw, uint64_t bar_bytes, bool size_aperture) {
        const std::string tag = std::string(vm::firmware_id(fw)) + "-" +
                                std::to_string(bar_bytes / GiB) + "G-" +
                                (size_aperture ? "sized" : "default");
        const std::string sparse = (s_dir->path / (tag + ".mem")).string();
        const std::string log = (s_dir->path / (tag + ".log")).string();
        {
            const int fd = ::open(sparse.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
            EXPECT_GE(fd, 0);
            EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(bar_bytes)), 0);
            ::close(fd);
        }
        vm::Profile p;
        p.name = "bar-probe";
        p.memory_mib = 1024;
        p.cpus = 1;
        p.boot.kernel = s_kernel;
        p.boot.initrd = s_initrd;
        p.boot.append = "console=ttyS0 quiet panic=-1";
        p.firmware.kind = fw;
        p.extra_args = {"-object", "memory-backend-file,id=ivmem,share=on,mem-path=" + sparse +
                                       ",size=" + vm::size_arg(bar_bytes)};
        vm::LaunchSpec spec;
        spec.qemu = s_qemu;
        spec.kvm = false;
        spec.no_reboot = true;
        spec.serials = {{vm::SerialPort::file, log, ""}};
        vm::PassFunction ivshmem{*pci::PciAddress::parse("00:00.0"),
                                 0x1af4,
                                 0x1110,
                                 0x0500,
                                 {{2, bar_bytes, true, true, false}},
                                 "ivshmem-plain,memdev=ivmem"};
        spec.slots = {{{ivshmem}}};
        // The VM's variable store under a state directory of the test's own.
        auto f = vm::prepare_firmware(host::Host("/"), p.firmware,
                                      (s_dir->path / ("state-" + tag)).string(), p.name);
        EXPECT_TRUE(f) << f.error().describe();
        if (!f) return {};
        spec.firmware = *f;
        spec.firmware.size_aperture = size_aperture;
        const auto argv = vm::qemu_argv(p, spec);
        std::string line;
        for (const auto& a : argv)
            line += a + " ";
        std::cout << tag << ": " << line << "\n";

        const auto t0 = std::chrono::steady_clock::now();
        const int devnull = ::open("/dev/null", O_RDWR);
        auto pid = vm::spawn(argv, {devnull, devnull, devnull, {}, {}});
        ::close(devnull);
        EXPECT_TRUE(pid) << pid.error().describe();
        if (!pid) return {};
        auto rc = vm::wait_child(*pid, 240000);
        if (!rc) {
            ::kill(*pid, SIGKILL);
            vm::wait_child(*pid, -1);
        }
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::cout << tag << ": QEMU ran " << s << " s\n";
        RecordProperty(tag + "_seconds", std::to_string(s));
        const std::string console = slurp(log);
        EXPECT_TRUE(rc) << "QEMU still ran after 240 s; console:\n" << console;
        EXPECT_EQ(rc.value_or(-1), 0) << console;
        EXPECT_NE(console.find("bar-probe: done"), std::string::npos)
            << "the guest never reported; console:\n"
            << console;
        BarLine b = parse_probe(console);
        EXPECT_TRUE(b.found) << "no ivshmem function on the guest's bus; console:\n" << console;
        std::cout << tag << ": BAR2 " << std::hex << b.start << "-" << b.end << std::dec << "\n";
        return b;
    }

    static inline std::string s_skip, s_qemu, s_kernel, s_initrd;
    static inline fixture::TempDir* s_dir = nullptr;
};

void expect_assigned(const BarLine& b, uint64_t bytes) {
    EXPECT_NE(b.start, 0u) << "BAR2 was not assigned";
    EXPECT_EQ(b.end - b.start + 1, bytes);
    EXPECT_EQ(b.start % bytes, 0u) << "BAR2 is not aligned to its size";
}

} // namespace

TEST_F(FirmwareBoot, BiosAssignsA256GiBBar) {
    expect_assigned(boot(vm::Firmware::bios, 256 * GiB, true), 256 * GiB);
}

TEST_F(FirmwareBoot, UefiAssignsA256GiBBarWithTheSizedAperture) {
    expect_assigned(boot(vm::Firmware::uefi, 256 * GiB, true), 256 * GiB);
}

TEST_F(FirmwareBoot, UefiLeavesA256GiBBarUnassignedAtOvmfsDefault) {
    const BarLine b = boot(vm::Firmware::uefi, 256 * GiB, false);
    EXPECT_TRUE(b.found);
    EXPECT_EQ(b.start, 0u) << "OVMF's default aperture held the BAR: sizing it is not needed";
    EXPECT_EQ(b.end, 0u);
}

TEST_F(FirmwareBoot, UefiDefaultApertureHoldsA64GiBBar) {
    // OVMF 2022.11 sizes its default from phys-bits 40: 128 GiB.
    expect_assigned(boot(vm::Firmware::uefi, 64 * GiB, false), 64 * GiB);
}
