// Kernel images for 'vm run': the bzImage payload, its decompression (xz,
// zstd, gzip, checked against the libraries' own compressors), the PVH note,
// the release in an ELF banner, the unpack cache; the boot phases; and that
// waiting for a guest blocks instead of polling.

#include "fixture/fixture.hpp"
#include "support.hpp"
#include "vm/guest.hpp"
#include "vm/kernel.hpp"

#include <chrono>
#include <cmath>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <lzma.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

using namespace vfioctl;
namespace fs = std::filesystem;

namespace {

void put32(std::string& s, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i)
        s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put16(std::string& s, size_t at, uint16_t v) {
    s[at] = static_cast<char>(v & 0xff);
    s[at + 1] = static_cast<char>(v >> 8);
}
void put64(std::string& s, size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i)
        s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// A minimal x86-64 ELF: one PT_NOTE with the given notes, then body.
std::string fake_elf(const std::string& notes, const std::string& body) {
    std::string e(64 + 56, '\0');
    e.replace(0, 4,
              "\x7f"
              "ELF");
    e[4] = 2; // 64-bit
    e[5] = 1; // little-endian
    e[6] = 1;
    put16(e, 0x10, 2);  // ET_EXEC
    put16(e, 0x12, 62); // x86-64
    put64(e, 0x20, 64); // phoff
    put16(e, 0x36, 56); // phentsize
    put16(e, 0x38, 1);  // phnum
    put32(e, 64, 4);    // PT_NOTE
    put64(e, 64 + 8, e.size());
    put64(e, 64 + 32, notes.size());
    return e + notes + body;
}

std::string note(const std::string& owner, uint32_t type, const std::string& desc) {
    std::string n(12, '\0');
    put32(n, 0, static_cast<uint32_t>(owner.size() + 1));
    put32(n, 4, static_cast<uint32_t>(desc.size()));
    put32(n, 8, type);
    std::string name = owner + '\0';
    while (name.size() % 4)
        name += '\0';
    std::string d = desc;
    while (d.size() % 4)
        d += '\0';
    return n + name + d;
}

// A bzImage whose payload (at 0x600) is data.
std::string fake_bz(const std::string& data) {
    std::string img(0x600, '\0');
    img[0x1f1] = 1; // one setup sector: the payload counts from 2 * 512
    img.replace(0x202, 4, "HdrS");
    put16(img, 0x206, 0x20f);
    put32(img, 0x248, 0x200);
    put32(img, 0x24c, static_cast<uint32_t>(data.size()));
    return img + data + "SIZE"; // the kernel appends the length after the stream
}

std::string xz(const std::string& in) {
    std::string out(lzma_stream_buffer_bound(in.size()), '\0');
    size_t pos = 0;
    EXPECT_EQ(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC32, nullptr,
                                      reinterpret_cast<const uint8_t*>(in.data()), in.size(),
                                      reinterpret_cast<uint8_t*>(out.data()), &pos, out.size()),
              LZMA_OK);
    out.resize(pos);
    return out;
}

std::string zst(const std::string& in) {
    std::string out(ZSTD_compressBound(in.size()), '\0');
    out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
    return out;
}

std::string gz(const std::string& in) {
    z_stream s{};
    EXPECT_EQ(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string out(deflateBound(&s, in.size()), '\0');
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    s.avail_in = static_cast<uInt>(in.size());
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

std::string stock_kernel() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/boot", ec))
        if (e.path().filename().string().rfind("vmlinuz-", 0) == 0) return e.path().string();
    return {};
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

} // namespace

TEST(VmKernel, PayloadFormatsRoundTrip) {
    // Several MiB, so the decoders go round their output loop.
    std::string kernel =
        fake_elf(note("Xen", 18, "\x00\x10\x00\x01"), "Linux version 6.9.0-test (me@here) #1\n");
    for (int i = 0; kernel.size() < (3u << 20); ++i)
        kernel += "block " + std::to_string(i * 7919) + "\n";
    for (const auto& [format, packed] :
         {std::pair{"xz", xz(kernel)}, {"zstd", zst(kernel)}, {"gzip", gz(kernel)}}) {
        const std::string img = fake_bz(packed);
        auto p = vm::bzimage_payload(img);
        ASSERT_TRUE(p.ok()) << p.error().describe();
        EXPECT_EQ(p->format, format);
        EXPECT_EQ(p->offset, 0x600u);
        EXPECT_EQ(p->length, packed.size());
        auto out = vm::decompress_payload(p->format,
                                          std::string_view(img).substr(p->offset, p->length + 4));
        ASSERT_TRUE(out.ok()) << format << ": " << out.error().describe();
        EXPECT_EQ(*out, kernel) << format;
        auto capped = vm::decompress_payload(
            p->format, std::string_view(img).substr(p->offset, p->length), 1 << 20);
        ASSERT_FALSE(capped.ok()) << format;
        EXPECT_NE(capped.error().message.find("more than 1 MiB"), std::string::npos)
            << capped.error().message;
        // A damaged stream is an Error, not garbage.
        std::string bad = packed;
        bad[bad.size() / 2] ^= 0x55;
        bad[bad.size() / 2 + 1] ^= 0x55;
        EXPECT_FALSE(vm::decompress_payload(format, bad).ok()) << format;
        EXPECT_FALSE(
            vm::decompress_payload(format, std::string_view(packed).substr(0, packed.size() / 2))
                .ok())
            << format;
    }
    auto lz4 = vm::decompress_payload("lz4", "x");
    ASSERT_FALSE(lz4.ok());
    EXPECT_NE(lz4.error().message.find("lz4"), std::string::npos);
}

TEST(VmKernel, BadBzImages) {
    EXPECT_FALSE(vm::bzimage_payload("").ok());
    EXPECT_FALSE(vm::bzimage_payload(std::string(0x300, 'x')).ok());
    std::string img = fake_bz("abc");
    put32(img, 0x24c, 1u << 30); // past the end
    auto e = vm::bzimage_payload(img);
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("outside"), std::string::npos);
    std::string old = fake_bz("abc");
    put16(old, 0x206, 0x207);
    EXPECT_FALSE(vm::bzimage_payload(old).ok());
    EXPECT_EQ(vm::bzimage_payload(fake_bz("garbage")).value().format, "unknown");
}

TEST(VmKernel, PvhNoteAndBanner) {
    const std::string pvh =
        fake_elf(note("GNU", 3, "abcd") + note("Xen", 18, "\x00\x10\x00\x01"), "");
    EXPECT_TRUE(vm::is_elf_kernel(pvh));
    EXPECT_TRUE(vm::elf_has_pvh_entry(pvh));
    EXPECT_FALSE(vm::elf_has_pvh_entry(fake_elf(note("Xen", 17, "abcd"), "")));
    EXPECT_FALSE(vm::elf_has_pvh_entry(fake_elf(note("Xex", 18, "abcd"), "")));
    EXPECT_FALSE(vm::elf_has_pvh_entry(fake_elf("", "")));
    // A note whose sizes run past its segment is not read past it.
    std::string broken = note("Xen", 18, "abcd");
    put32(broken, 4, 0x7fffffff);
    EXPECT_FALSE(vm::elf_has_pvh_entry(fake_elf(broken, "")));
    EXPECT_FALSE(vm::is_elf_kernel("\x7f"
                                   "ELF"));

    auto r =
        vm::elf_release(fake_elf("", std::string("x\0%s version %s (\0Linux version %s\0", 34) +
                                         "Linux version 6.12.0-rc1+ (dev@box) #3 SMP\n"));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(*r, "6.12.0-rc1+");
    EXPECT_FALSE(vm::elf_release(fake_elf("", "no banner here")).ok());
}

TEST(VmKernel, CacheNameFollowsTheFile) {
    const auto base = vm::unpacked_name("6.1.0-57-amd64", "/boot/vmlinuz", 100, 5, 7, 9);
    EXPECT_EQ(base.rfind("vmlinux-6.1.0-57-amd64-", 0), 0u) << base;
    EXPECT_EQ(base, vm::unpacked_name("6.1.0-57-amd64", "/boot/vmlinuz", 100, 5, 7, 9));
    EXPECT_NE(base, vm::unpacked_name("6.1.0-57-amd64", "/boot/vmlinuz2", 100, 5, 7, 9));
    EXPECT_NE(base, vm::unpacked_name("6.1.0-57-amd64", "/boot/vmlinuz", 101, 5, 7, 9));
    EXPECT_NE(base, vm::unpacked_name("6.1.0-57-amd64", "/boot/vmlinuz", 100, 6, 7, 9));
    EXPECT_NE(base, vm::unpacked_name("6.1.0-57-amd64", "/boot/vmlinuz", 100, 5, 8, 9));
    EXPECT_NE(base, vm::unpacked_name("6.1.0-57-amd64", "/boot/vmlinuz", 100, 5, 7, 10));
    EXPECT_EQ(vm::unpacked_name("a/../b c", "/x", 1, 1, 1, 1).find('/', 8), std::string::npos);
}

TEST(VmKernel, UnpackCachesAndPrunes) {
    fixture::TempDir dir;
    const std::string elf =
        fake_elf(note("Xen", 18, "\x00\x10\x00\x01"), "Linux version 6.9.0 (x) #1\n");
    const fs::path cache = dir.path / "cache" / "kernels";
    std::vector<std::string> made;
    for (int i = 0; i < 6; ++i) {
        const fs::path img = dir.path / ("bz" + std::to_string(i));
        std::ofstream(img, std::ios::binary) << fake_bz(xz(elf + std::to_string(i)));
        auto u = vm::unpack_kernel(img.string(), "6.9.0", cache.string());
        ASSERT_TRUE(u.ok()) << u.error().describe();
        EXPECT_FALSE(u->cached);
        EXPECT_EQ(slurp(u->path), elf + std::to_string(i));
        made.push_back(u->path);
        auto again = vm::unpack_kernel(img.string(), "6.9.0", cache.string());
        ASSERT_TRUE(again.ok());
        EXPECT_TRUE(again->cached);
        EXPECT_EQ(again->path, u->path);
        // Distinct modification times for the pruning order.
        struct timespec ts[2] = {{0, UTIME_OMIT}, {1000000 + i, 0}};
        ::utimensat(AT_FDCWD, u->path.c_str(), ts, 0);
    }
    size_t left = 0;
    for (const auto& e : fs::directory_iterator(cache)) {
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos);
        ++left;
    }
    EXPECT_EQ(left, 4u);
    EXPECT_FALSE(fs::exists(made[0]));
    EXPECT_TRUE(fs::exists(made[5]));

    // No PVH note, a format it cannot read, a missing file: Errors, nothing cached.
    const fs::path nopvh = dir.path / "nopvh";
    std::ofstream(nopvh, std::ios::binary) << fake_bz(xz(fake_elf("", "Linux version 1 (x)")));
    auto e = vm::unpack_kernel(nopvh.string(), "1", cache.string());
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().hint.find("CONFIG_PVH"), std::string::npos);
    const fs::path lz4 = dir.path / "lz4";
    std::ofstream(lz4, std::ios::binary) << fake_bz("\x02\x21\x4c\x18 not really");
    EXPECT_FALSE(vm::unpack_kernel(lz4.string(), "1", cache.string()).ok());
    EXPECT_FALSE(vm::unpack_kernel((dir.path / "none").string(), "1", cache.string()).ok());
    // A cache that cannot be created.
    std::ofstream(dir.path / "file") << "x";
    auto nodir = vm::unpack_kernel((dir.path / "bz5").string(), "6.9.0",
                                   (dir.path / "file" / "sub").string());
    EXPECT_FALSE(nodir.ok());
}

// The stock kernel unpacks to an ELF with the PVH note and the same release
// as its bzImage header.
TEST(VmKernel, StockKernelUnpacks) {
    const std::string kernel = stock_kernel();
    if (kernel.empty()) GTEST_SKIP() << "no /boot/vmlinuz-*";
    const std::string img = slurp(kernel);
    auto release = vm::bzimage_release(img);
    ASSERT_TRUE(release.ok());
    fixture::TempDir dir;
    auto u = vm::unpack_kernel(kernel, *release, dir.path.string());
    if (!u.ok() && u.error().hint.find("CONFIG_PVH") != std::string::npos)
        GTEST_SKIP() << u.error().describe();
    ASSERT_TRUE(u.ok()) << u.error().describe();
    const std::string elf = slurp(u->path);
    EXPECT_TRUE(vm::elf_has_pvh_entry(elf));
    auto banner = vm::elf_release(elf);
    ASSERT_TRUE(banner.ok());
    EXPECT_EQ(*banner, *release);
}

TEST(VmKernel, BootPhases) {
    vm::BootMilestones m;
    auto [none, w0] = vm::boot_phases(m, "9p");
    EXPECT_TRUE(none.empty());
    EXPECT_NE(w0.find("first console output"), std::string::npos);
    m.kernel = 400;
    m.init = 2400;
    auto [two, w2] = vm::boot_phases(m, "virtiofs");
    ASSERT_EQ(two.size(), 2u);
    EXPECT_EQ(two[0].ms, 400);
    EXPECT_EQ(two[1].ms, 2000);
    EXPECT_EQ(w2, "the host root to mount over virtiofs");
    m.mounted = 2600;
    m.running = 2650;
    m.exited = 3650;
    auto [all, w5] = vm::boot_phases(m, "9p");
    ASSERT_EQ(all.size(), 5u);
    EXPECT_EQ(all[4].name, "the command");
    EXPECT_EQ(all[4].ms, 1000);
    EXPECT_EQ(w5, "");
}

// A run whose command sleeps: vfioctl waits on the init's FIFO and QEMU's
// pidfd, so it wakes twice a second until the kernel has printed (to see
// that it did) and then only for what happens: the init's reports and
// QEMU's end. The old wait looked at a file every 5 ms, which took 12 % of
// a nested guest's only CPU. Counted by the wait itself, so a slow or busy
// machine changes the count only through the time to the kernel's output.
TEST(VmKernel, WaitingForTheGuestBlocks) {
    const std::string kernel = stock_kernel();
    if (kernel.empty() || ::access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
        GTEST_SKIP() << "no kernel or QEMU";
    if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "no busybox";
    fixture::TempDir dir;
    vm::RunRequest req;
    req.profile.name = "wait-test";
    req.profile.memory_mib = 256;
    req.profile.boot.kernel = kernel;
    req.profile.share = vm::ShareMode::ninep;
    req.command = {"/bin/sleep", "4"};
    req.run_dir = dir.path.string();
    req.console_log = (dir.path / "console.log").string();
    req.kernel_cache = (dir.path / "kernels").string();
    req.qemu = "/usr/bin/qemu-system-x86_64";
    req.boot_timeout_ms = 600000;
    host::Host live("/");
    // The unpacking is not what is looked at here.
    req.unpack = vm::Unpack::no;
    auto r = vm::run_guest(live, req);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    if (!r->command_ran && r->failure.find("busybox") != std::string::npos)
        GTEST_SKIP() << r->failure;
    ASSERT_TRUE(r->command_ran) << r->failure;
    EXPECT_EQ(r->exit_code, 0);
    EXPECT_GE(r->total_ms, 4000);
    ASSERT_EQ(r->phases.size(), 5u);
    EXPECT_EQ(r->waiting_for, "");
    // Ticks until the kernel's first output; after it, every wake-up reads
    // something: the serial port hands QEMU the init's reports a byte at a
    // time, so at worst one wake-up for each of their 86 bytes, and one for
    // QEMU's end. A 5 ms poll would have woken 800 times in the sleep alone.
    const int ticks = static_cast<int>(std::ceil(r->phases[0].ms / 500)) + 1;
    RecordProperty("wakeups", r->wakeups);
    EXPECT_LE(r->wakeups, ticks + 86 + 4)
        << r->phases[0].ms << " ms to the kernel's output, " << r->total_ms << " ms in all";
    EXPECT_GE(r->wakeups, 5); // the four reports and QEMU's end were each seen
    EXPECT_FALSE(fs::exists(dir.path / "kernels")) << "--unpack no unpacked";
}

// The CLI: an ELF vmlinux boots as given, --unpack yes caches the bzImage's
// kernel, --unpack takes only auto/yes/no, and a boot that runs out of time
// says what it was waiting for and how far it got.
TEST(VmKernel, CliBootsElfAndSaysWhereABootStopped) {
    const std::string kernel = stock_kernel();
    if (kernel.empty() || ::access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
        GTEST_SKIP() << "no kernel or QEMU";
    fixture::TempDir dir;
    const std::string runs = (dir.path / "runs").string();
    auto release = vm::bzimage_release(slurp(kernel));
    ASSERT_TRUE(release.ok());
    auto u = vm::unpack_kernel(kernel, *release, (dir.path / "kernels").string());
    if (!u.ok()) GTEST_SKIP() << u.error().describe();

    auto elf = test::run_vfioctl({"vm", "run", "--kernel", u->path, "--accel", "tcg", "--memory",
                                  "256", "--run-dir", runs, "--", "sh", "-c", "echo elf-$((6*7))"});
    if (elf.err.find("busybox") != std::string::npos) GTEST_SKIP() << elf.err;
    EXPECT_EQ(elf.exit_code, 0) << elf.err;
    EXPECT_EQ(elf.out, "elf-42\n");

    auto bad =
        test::run_vfioctl({"vm", "run", "--kernel", kernel, "--unpack", "maybe", "--", "true"});
    EXPECT_EQ(bad.exit_code, 2) << bad.err;

    // 1.5 s is not enough for any kernel under TCG: the init is never
    // reached, and the error says so and what it was waiting for. How far
    // the boot got in that time depends on the machine's load.
    auto slow =
        test::run_vfioctl({"vm", "run", "--kernel", u->path, "--accel", "tcg", "--memory", "256",
                           "--boot-timeout", "1.5", "--run-dir", runs, "--", "true"});
    EXPECT_EQ(slow.exit_code, 1);
    EXPECT_NE(slow.err.find("did not reach the command within 1.5 s"), std::string::npos)
        << slow.err;
    EXPECT_NE(slow.err.find("waiting for: "), std::string::npos) << slow.err;

    // A kernel that stops before init (rdinit pointing nowhere panics):
    // the error names the init as the milestone not reached, and the
    // console log holds the kernel's whole log, since the boot is not quiet.
    const std::string log = (dir.path / "console.log").string();
    auto panic = test::run_vfioctl({"vm", "run", "--kernel", u->path, "--accel", "tcg", "--memory",
                                    "256", "--append", "rdinit=/nonexistent", "--boot-timeout",
                                    "600", "--console-log", log, "--run-dir", runs, "--", "true"});
    EXPECT_EQ(panic.exit_code, 1);
    EXPECT_NE(panic.err.find("waiting for: the initramfs's /init"), std::string::npos) << panic.err;
    EXPECT_NE(panic.err.find("QEMU start to kernel output"), std::string::npos) << panic.err;
    const std::string console = slurp(log);
    EXPECT_NE(console.find("Linux version " + *release), std::string::npos)
        << console.substr(0, 400);
    EXPECT_NE(console.find("Command line:"), std::string::npos);
    EXPECT_NE(console.find("Kernel panic"), std::string::npos);
}
