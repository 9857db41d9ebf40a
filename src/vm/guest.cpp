#include "vm/guest.hpp"

#include "util/bytes.hpp"
#include "util/strings.hpp"
#include "vm/kernel.hpp"
#include "vm/process.hpp"
#include "vm/virtiofs.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <poll.h>
#include <set>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace vfioctl::vm {

namespace {

using util::le;

std::string normalize(std::string_view name) {
    std::string n(name);
    std::replace(n.begin(), n.end(), '-', '_');
    return n;
}

// "kernel/fs/9p/9p.ko" -> "9p"; "" when the name is no .ko path.
std::string module_name(std::string_view path) {
    auto slash = path.rfind('/');
    std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
    auto ko = base.find(".ko");
    if (ko == std::string_view::npos) return {};
    return normalize(base.substr(0, ko));
}

Status write_file(const std::string& path, const std::string& data, unsigned mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return system_error("cannot write", path);
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return system_error("cannot write", path, e);
        }
        off += static_cast<size_t>(n);
    }
    ::close(fd);
    return {};
}

std::string read_from(const std::string& path, uint64_t offset) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return {};
    f.seekg(static_cast<std::streamoff>(offset));
    return std::string(std::istreambuf_iterator<char>(f), {});
}

uint64_t file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::vector<std::string> last_lines(const std::string& text, size_t n) {
    std::vector<std::string> lines;
    for (auto& l : util::split(text, '\n')) {
        while (!l.empty() && (l.back() == '\r'))
            l.pop_back();
        if (!l.empty()) lines.push_back(l);
    }
    if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<long>(n));
    return lines;
}

} // namespace

Result<std::string> bzimage_release(std::string_view image) {
    if (image.size() < 0x210 || image.substr(0x202, 4) != "HdrS")
        return Error{"not a bzImage (no HdrS setup header)",
                     {},
                     "give the kernel image: arch/x86/boot/bzImage or /boot/vmlinuz-*",
                     0};
    const size_t off = le<uint16_t>(image, 0x20e) + 0x200u;
    if (off >= image.size()) return Error{"bzImage has no version string", {}, {}, 0};
    std::string_view v = image.substr(off, std::min<size_t>(256, image.size() - off));
    v = v.substr(0, v.find_first_of(std::string_view(" \0", 2)));
    if (v.empty()) return Error{"bzImage has an empty version string", {}, {}, 0};
    return std::string(v);
}

bool elf_is_static(std::string_view s) {
    if (s.size() < 64 ||
        s.substr(0, 4) != "\x7f"
                          "ELF" ||
        s[4] != 2)
        return false;
    const uint64_t phoff = le<uint64_t>(s, 0x20);
    const uint16_t phentsize = le<uint16_t>(s, 0x36), phnum = le<uint16_t>(s, 0x38);
    for (uint16_t i = 0; i < phnum; ++i) {
        const uint64_t at = phoff + uint64_t{i} * phentsize;
        if (at + 4 > s.size()) return false;
        if (le<uint32_t>(s, at) == 3) return false; // PT_INTERP
    }
    return true;
}

Result<std::vector<std::string>> module_load_order(std::string_view dep_text,
                                                   std::string_view builtin_text,
                                                   const std::vector<std::string>& wanted) {
    // Only the wanted modules' lines are kept: modules.dep has thousands.
    std::map<std::string, std::pair<std::string, std::vector<std::string>>>
        deps; // name -> (path, deps)
    std::set<std::string> want;
    for (const auto& w : wanted)
        want.insert(normalize(w));
    for (size_t pos = 0; pos < dep_text.size();) {
        size_t nl = dep_text.find('\n', pos);
        if (nl == std::string_view::npos) nl = dep_text.size();
        std::string_view line = dep_text.substr(pos, nl - pos);
        pos = nl + 1;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string name = module_name(line.substr(0, colon));
        if (!want.count(name)) continue;
        deps[name] = {std::string(line.substr(0, colon)), util::split_ws(line.substr(colon + 1))};
    }
    std::set<std::string> builtin;
    if (deps.size() < want.size())
        for (const auto& line : util::split(builtin_text, '\n'))
            if (auto n = module_name(util::trim(line)); !n.empty()) builtin.insert(n);
    std::vector<std::string> order;
    auto add_once = [&order](const std::string& p) {
        if (std::find(order.begin(), order.end(), p) == order.end()) order.push_back(p);
    };
    for (const auto& w : wanted) {
        const std::string n = normalize(w);
        auto it = deps.find(n);
        if (it == deps.end()) {
            if (builtin.count(n)) continue;
            return Error{
                "kernel module " + w + " is neither in modules.dep nor built in",
                {},
                "build the kernel with CONFIG_VIRTIO_PCI and CONFIG_VIRTIO_FS (virtiofs) or "
                "CONFIG_NET_9P_VIRTIO and CONFIG_9P_FS (9p) (=y, or =m with --modules DIR pointing "
                "at its modules)",
                0};
        }
        // modules.dep lists a module's dependencies last-loaded first.
        const auto& d = it->second.second;
        for (auto r = d.rbegin(); r != d.rend(); ++r)
            add_once(*r);
        add_once(it->second.first);
    }
    return order;
}

std::string cpio_newc(const std::vector<CpioEntry>& entries) {
    std::string out;
    size_t total = 512;
    for (const auto& e : entries)
        total += 120 + e.name.size() + e.data.size();
    out.reserve(total);
    unsigned ino = 1;
    auto pad4 = [&out] {
        while (out.size() % 4)
            out.push_back('\0');
    };
    auto header = [&](const std::string& name, unsigned mode, size_t size, unsigned nlink,
                      unsigned maj, unsigned min) {
        out += fmt::format(
            "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            ino++, mode, 0, 0, nlink, 0, size, 0, 0, maj, min, name.size() + 1, 0);
        out += name;
        out.push_back('\0');
        pad4();
    };
    for (const auto& e : entries) {
        const bool dir = (e.mode & 0170000) == 0040000;
        const bool dev = (e.mode & 0170000) == 0020000 || (e.mode & 0170000) == 0060000;
        header(e.name, e.mode, dir || dev ? 0 : e.data.size(), dir ? 2 : 1, e.rdev_major,
               e.rdev_minor);
        if (!dir && !dev) {
            out += e.data;
            pad4();
        }
    }
    header("TRAILER!!!", 0, 0, 1, 0, 0);
    while (out.size() % 512)
        out.push_back('\0');
    return out;
}

std::string sh_quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

std::string init_script(const InitPlan& plan) {
    std::string mods, cmd, env;
    for (const auto& m : plan.modules)
        mods += " " + sh_quote(m);
    for (const auto& c : plan.command)
        cmd += " " + sh_quote(c);
    for (const auto& e : plan.env)
        env += " " + sh_quote(e);
    // Host directories under /tmp the command needs (its working directory
    // and its program's), shown again over the guest's own /tmp.
    std::string keep = " " + sh_quote(plan.cwd);
    if (!plan.command.empty() && plan.command[0].rfind('/', 0) == 0)
        keep += " " + sh_quote(plan.command[0].substr(0, plan.command[0].rfind('/')));
    return fmt::format(
        R"SH(#!/bin/busybox sh
# Generated by vfioctl vm run: PID 1 of a guest that runs one command.
B=/bin/busybox
$B mount -t devtmpfs dev /dev
ctl() {{ $B echo "vfioctl-init $*" >/dev/ttyS2; }}
fail() {{ ctl "failed: $*"; $B poweroff -f; $B sleep 5; }}
ctl started
for m in{mods}; do
    $B insmod "/lib/vfioctl/$m.ko" || fail "insmod $m"
done
R=/root
{share_mount} hostroot $R ||
    fail "cannot mount the host root ({share} tag hostroot)"
$B mount -t proc proc $R/proc || fail "cannot mount /proc"
$B mount -t sysfs sysfs $R/sys || fail "cannot mount /sys"
$B mount -t devtmpfs dev $R/dev || fail "cannot mount /dev"
ctl mounted
$B mkdir -p $R/dev/pts $R/dev/shm
$B mount -t devpts devpts $R/dev/pts
$B mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
C={cwd}
$B mkdir -p /hosttmp
$B mount --bind $R/tmp /hosttmp
$B mount -t tmpfs -o mode=1777 tmpfs $R/tmp || fail "cannot mount /tmp"
for K in{keep}; do
    case "$K" in /tmp/*) $B mkdir -p "$R$K" && $B mount --bind "/hosttmp${{K#/tmp}}" "$R$K" ;; esac
done
[ -d "$R$C" ] || C=/
$B mount -t tmpfs -o mode=0755 tmpfs $R/run || fail "cannot mount /run"
$B stty -F /dev/ttyS1 raw -echo 2>/dev/null
ctl running
$B chroot $R /usr/bin/env -i -C "$C" --{env}{cmd} </dev/null >/dev/ttyS1 2>&1
ctl "exit $?"
$B poweroff -f
$B sleep 5
)SH",
        fmt::arg("mods", mods), fmt::arg("cwd", sh_quote(plan.cwd)), fmt::arg("keep", keep),
        fmt::arg("env", env), fmt::arg("share", plan.virtiofs ? "virtiofs" : "9p"),
        fmt::arg("share_mount", plan.virtiofs
                                    ? "$B mount -t virtiofs -o ro"
                                    : "$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,"
                                      "msize=512000,cache=loose"),
        fmt::arg("cmd", cmd));
}

std::vector<std::string> share_modules(bool virtiofs) {
    if (virtiofs) return {"virtio_pci", "fuse", "virtiofs"};
    return {"virtio_pci", "9pnet_virtio", "9p"};
}

std::string run_append(const std::string& user_append, bool tcg) {
    // Not quiet: the console log holds the whole kernel log, so a boot that
    // stops shows where (no measurable cost under TCG: 5.0 s either way).
    std::string a = "console=ttyS0 panic=-1 rdinit=/init 8250.nr_uarts=4";
    // Under TCG on a busy host the kernel's IO-APIC timer check can miss its
    // ticks and panic ("IO-APIC + timer doesn't work!"), as a unit test's
    // guest did with the machine's load at 6.
    if (tcg) a += " no_timer_check";
    if (!user_append.empty()) a += " " + user_append;
    return a;
}

Result<std::string> build_initramfs(const host::Host& host, const RunRequest& req,
                                    const std::string& release, bool virtiofs) {
    std::string busybox_path = req.busybox;
    if (busybox_path.empty()) {
        auto p = host.find_program("busybox");
        if (!p)
            return Error{"busybox is not installed",
                         {},
                         "install busybox-static (a static busybox runs the guest's init)",
                         0};
        busybox_path = *p;
    }
    auto busybox = host.read(busybox_path);
    if (!busybox) return busybox.error();
    if (!elf_is_static(*busybox))
        return Error{"busybox is dynamically linked", busybox_path,
                     "install busybox-static, or give --busybox PATH to a static one", 0};

    const std::string moddir =
        req.modules_dir.empty() ? "/lib/modules/" + release : req.modules_dir;
    auto dep = host.read(moddir + "/modules.dep");
    auto builtin = host.read(moddir + "/modules.builtin");
    std::vector<std::string> files;
    if (dep) {
        auto order = module_load_order(*dep, builtin.value_or(""), share_modules(virtiofs));
        if (!order) return order.error();
        files = *order;
    } else if (!builtin) {
        // A kernel with its drivers built in has no modules at all; /init
        // finds out when it mounts the share.
    }
    std::vector<CpioEntry> entries = {
        {"bin", 040755, {}},         {"dev", 040755, {}},
        {"proc", 040755, {}},        {"sys", 040755, {}},
        {"root", 040755, {}},        {"lib", 040755, {}},
        {"lib/vfioctl", 040755, {}}, {"dev/console", 020600, {}, 5, 1},
    };
    entries.push_back({"bin/busybox", 0100755, std::move(busybox).value()});
    InitPlan plan;
    for (const auto& f : files) {
        if (!f.ends_with(".ko"))
            return Error{"module " + f + " is compressed", moddir + "/" + f,
                         "busybox insmod needs plain .ko files; build the kernel with "
                         "CONFIG_MODULE_COMPRESS_NONE",
                         0};
        auto data = host.read(f[0] == '/' ? f : moddir + "/" + f);
        if (!data) return data.error();
        const std::string name = module_name(f);
        entries.push_back({"lib/vfioctl/" + name + ".ko", 0100644, std::move(data).value()});
        plan.modules.push_back(name);
    }
    plan.virtiofs = virtiofs;
    plan.command = req.command;
    plan.cwd = req.cwd;
    plan.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                "TERM=" + std::string(std::getenv("TERM") ? std::getenv("TERM") : "dumb"),
                "LC_ALL=C.UTF-8"};
    entries.push_back({"init", 0100755, init_script(plan)});
    std::string image;
    if (!req.profile.boot.initrd.empty()) {
        auto user = host.read(req.profile.boot.initrd);
        if (!user) return user.error();
        image = std::move(user).value();
        while (image.size() % 4)
            image.push_back('\0');
    }
    image += cpio_newc(entries);
    return image;
}

namespace {

// What the host root is shared over: virtiofs (its server running until
// this is destroyed) or 9p; and the initramfs that mounts it.
struct Share {
    std::optional<VirtiofsServer> server;
    std::string image;
};

Result<Share> prepare_share(const host::Host& host, const RunRequest& req,
                            const std::string& release) {
    Share sh;
    std::optional<Error> why_not;
    if (req.profile.share != ShareMode::ninep) {
        auto tried = [&]() -> Status {
            auto d = find_virtiofsd(host);
            if (!d) return d.error();
            if (::geteuid() != 0)
                return Error{"virtiofsd needs root (its sandbox and the read-only view of / are "
                             "mount namespaces)",
                             {},
                             "run as root, or use --share 9p",
                             EPERM};
            // Before packing: auto then goes to 9p without packing twice.
            if (auto few = virtiofsd_file_limit_problem(); !few.empty()) {
                if (req.profile.share != ShareMode::virtiofs)
                    return Error{few, {}, "use --share virtiofs anyway", 0};
                if (req.warn) req.warn("--share virtiofs: " + few);
            }
            auto image = build_initramfs(host, req, release, true);
            if (!image) return image.error();
            auto server = VirtiofsServer::start(*d, req.run_dir, 5000);
            if (!server) return server.error();
            sh.server.emplace(std::move(server).value());
            sh.image = std::move(image).value();
            return {};
        }();
        if (tried) return sh;
        Error e = tried.error();
        if (req.profile.share == ShareMode::virtiofs) {
            e.message = "cannot share / over virtiofs: " + e.message;
            return e;
        }
        // Auto on a host without virtiofsd is plain 9p, not worth a warning.
        if (e.errnum != ENOENT || !e.path.empty()) why_not = e;
    }
    auto image = build_initramfs(host, req, release, false);
    if (!image) return image.error();
    sh.image = std::move(image).value();
    if (why_not && req.warn) req.warn("sharing / over 9p, not virtiofs: " + why_not->describe());
    return sh;
}

} // namespace

std::pair<std::vector<BootPhase>, std::string> boot_phases(const BootMilestones& m,
                                                           const std::string& share) {
    const std::pair<const std::optional<double>*, const char*> steps[] = {
        {&m.kernel, "QEMU start to kernel output"},
        {&m.init, "kernel output to init"},
        {&m.mounted, "init to the host root mounted"},
        {&m.running, "host root mounted to the command"},
        {&m.exited, "the command"},
    };
    const std::string waiting[] = {
        "the kernel's first console output (QEMU runs; firmware or kernel decompression)",
        "the initramfs's /init (the kernel is still booting)",
        "the host root to mount over " + share,
        "the command to start (mounting /proc, /sys, /dev, /tmp)",
        "the command to finish",
    };
    std::vector<BootPhase> phases;
    double last = 0;
    for (size_t i = 0; i < std::size(steps); ++i) {
        const auto& at = *steps[i].first;
        if (!at) return {phases, waiting[i]};
        phases.push_back({steps[i].second, std::max(0.0, *at - last)});
        last = *at;
    }
    return {phases, ""};
}

namespace {

// The kernel QEMU boots, and its release: the bzImage as given, its
// unpacked ELF (see vm/kernel.hpp), or an ELF vmlinux as given.
struct BootKernel {
    std::string path;
    std::string release;
};

Result<BootKernel> pick_kernel(const host::Host& host, const RunRequest& req) {
    const std::string& given = req.profile.boot.kernel;
    std::string head;
    {
        std::ifstream f(host.path(given), std::ios::binary);
        head.resize(32768);
        f.read(head.data(), static_cast<std::streamsize>(head.size()));
        head.resize(static_cast<size_t>(f.gcount()));
        if (head.empty())
            return Error{
                "cannot read the kernel", given,
                "give a bzImage: --kernel /boot/vmlinuz-$(uname -r) or arch/x86/boot/bzImage",
                ENOENT};
    }
    if (is_elf_kernel(head)) {
        auto elf = host.read(given);
        if (!elf) return elf.error();
        if (!elf_has_pvh_entry(*elf))
            return Error{"the ELF kernel has no PVH entry point, so QEMU cannot boot it", given,
                         "build it with CONFIG_PVH=y, or give its bzImage (arch/x86/boot/bzImage)",
                         0};
        auto release = elf_release(*elf);
        if (!release) {
            Error e = release.error();
            e.path = given;
            return e;
        }
        return BootKernel{given, *release};
    }
    auto release = bzimage_release(head);
    if (!release) {
        Error e = release.error();
        e.path = given;
        return e;
    }
    BootKernel k{given, *release};
    const bool want = req.unpack == Unpack::yes || (req.unpack == Unpack::auto_ && !req.kvm);
    if (!want || !host.is_live()) return k;
    const std::string cache = req.kernel_cache.empty() ? default_kernel_cache() : req.kernel_cache;
    auto unpacked = unpack_kernel(given, *release, cache);
    if (!unpacked) {
        Error e = unpacked.error();
        if (req.unpack == Unpack::yes) {
            e.message = "cannot unpack the kernel: " + e.message;
            return e;
        }
        if (req.warn) req.warn("booting the compressed kernel (slower under TCG): " + e.describe());
        return k;
    }
    k.path = unpacked->path;
    return k;
}

// Reads what is there of fd (non-blocking) into buf; false at end of file.
bool drain(int fd, std::string& buf) {
    char tmp[4096];
    for (;;) {
        ssize_t n = ::read(fd, tmp, sizeof tmp);
        if (n > 0) {
            buf.append(tmp, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return n != 0;
    }
}

// A FIFO at path, replacing whatever is there.
Status make_fifo(const std::string& path) {
    ::unlink(path.c_str());
    if (::mkfifo(path.c_str(), 0600) != 0) return system_error("cannot create a FIFO", path);
    return {};
}

// A descriptor that becomes readable when our child pid ends; -1 where the
// kernel has no pidfd_open (before 5.3).
int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    return -1;
#endif
}

} // namespace

Result<RunResult> run_guest(const host::Host& host, const RunRequest& req) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    auto kernel = pick_kernel(host, req);
    if (!kernel) return kernel.error();
    auto share = prepare_share(host, req, kernel->release);
    if (!share) return share.error();
    const std::string initrd = req.run_dir + "/initramfs.cpio";
    // The init's reports come through a FIFO (QEMU's pipe chardev writes
    // control.out), so that waiting for them blocks instead of polling.
    const std::string control = req.run_dir + "/control";
    if (auto s = write_file(initrd, share->image, 0600); !s) return s.error();
    if (auto s = make_fifo(control + ".in"); !s) return s.error();
    if (auto s = make_fifo(control + ".out"); !s) return s.error();
    // Open for reading before QEMU opens it for writing, which would block.
    int ctl_fd = ::open((control + ".out").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (ctl_fd < 0) return system_error("cannot open", control + ".out");
    const uint64_t console_start = file_size(req.console_log);

    LaunchSpec spec;
    spec.qemu = req.qemu;
    spec.kvm = req.kvm;
    spec.slots = req.slots;
    spec.no_reboot = true;
    spec.serials = {{SerialPort::file, req.console_log, {}},
                    {SerialPort::stdio, {}, {}},
                    {SerialPort::pipe, control, {}}};
    spec.initrd_override = initrd;
    spec.append_override = run_append(req.profile.boot.append, !req.kvm);
    if (share->server) spec.virtiofs_socket = share->server->socket();
    Profile p = req.profile;
    p.boot.kernel = kernel->path;
    p.share_host_root = true;
    p.ssh_port.reset();
    auto argv = qemu_argv(p, spec);

    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    SpawnIo io;
    io.in = devnull;
    auto pid = spawn(argv, io);
    if (devnull >= 0) ::close(devnull);
    if (!pid) {
        ::close(ctl_fd);
        return pid.error();
    }
    const auto started = Clock::now();
    const int pidfd = open_pidfd(*pid);

    RunResult r;
    r.virtiofs = share->server.has_value();
    r.kernel_booted = kernel->path;
    r.prespawn_ms = std::chrono::duration<double, std::milli>(started - req.t0).count();
    BootMilestones m;
    bool have_exit = false;
    std::optional<int> qemu_rc;
    auto ms_since = [](Clock::time_point t) {
        return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
    };
    std::string ctl_buf;
    size_t ctl_parsed = 0;
    auto parse_ctl = [&] {
        for (size_t nl; (nl = ctl_buf.find('\n', ctl_parsed)) != std::string::npos;
             ctl_parsed = nl + 1) {
            std::string l(
                util::trim(std::string_view(ctl_buf).substr(ctl_parsed, nl - ctl_parsed)));
            const double now = ms_since(started);
            if (l == "vfioctl-init started" && !m.init) {
                m.init = now;
            } else if (l == "vfioctl-init mounted" && !m.mounted) {
                m.mounted = now;
            } else if (l == "vfioctl-init running" && !m.running) {
                m.running = now;
                r.boot_ms = now;
            } else if (util::starts_with(l, "vfioctl-init exit ") && !have_exit) {
                if (auto n = util::parse_dec(l.substr(18))) {
                    have_exit = true;
                    r.exit_code = static_cast<int>(*n);
                    m.exited = now;
                }
            } else if (util::starts_with(l, "vfioctl-init failed: ") && r.failure.empty()) {
                r.failure = "the guest's init failed: " + l.substr(21);
            }
        }
    };
    // Milestones out of order (a lost line) still count as reached.
    auto settle = [&m] {
        if (m.exited && !m.running) m.running = m.exited;
        if (m.running && !m.mounted) m.mounted = m.running;
        if (m.mounted && !m.init) m.init = m.mounted;
        if (m.init && !m.kernel) m.kernel = m.init;
    };
    bool ctl_open = true;
    for (;;) {
        // Sleep until the init says something, QEMU ends, or the next
        // deadline; until the kernel has printed, look at the console log
        // twice a second.
        double wait_ms = 3600000;
        if (!m.running) wait_ms = std::min(wait_ms, req.boot_timeout_ms - ms_since(started));
        if (req.timeout_ms > 0) wait_ms = std::min(wait_ms, req.timeout_ms - ms_since(started));
        if (m.exited) wait_ms = std::min(wait_ms, 10000 - (ms_since(started) - *m.exited));
        if (!m.kernel) wait_ms = std::min(wait_ms, 500.0);
        if (pidfd < 0) wait_ms = std::min(wait_ms, 100.0);
        pollfd fds[2] = {{ctl_open ? ctl_fd : -1, POLLIN, 0}, {pidfd, POLLIN, 0}};
        const int n = ::poll(fds, 2, static_cast<int>(std::max(0.0, std::ceil(wait_ms))));
        ++r.wakeups;
        if (n < 0 && errno != EINTR) break;
        if (ctl_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ctl_open = drain(ctl_fd, ctl_buf);
            parse_ctl();
        }
        if (!m.kernel && file_size(req.console_log) > console_start) m.kernel = ms_since(started);
        settle();
        qemu_rc = wait_child(*pid, 0);
        if (qemu_rc) break;
        std::string kill_reason;
        if (!m.running && ms_since(started) > req.boot_timeout_ms)
            kill_reason = fmt::format("the guest did not reach the command within {:g} s",
                                      req.boot_timeout_ms / 1000.0);
        else if (req.timeout_ms > 0 && ms_since(started) > req.timeout_ms)
            kill_reason =
                fmt::format("the command did not finish within {:g} s", req.timeout_ms / 1000.0);
        else if (m.exited && ms_since(started) - *m.exited > 10000)
            kill_reason = "the guest did not power off after the command";
        if (!kill_reason.empty()) {
            ::kill(*pid, SIGKILL);
            qemu_rc = wait_child(*pid, -1);
            if (!have_exit && r.failure.empty()) r.failure = kill_reason;
            break;
        }
    }
    if (!qemu_rc) {
        // poll() itself failed: end QEMU rather than leave it.
        ::kill(*pid, SIGKILL);
        qemu_rc = wait_child(*pid, -1);
        if (r.failure.empty()) r.failure = system_error("cannot wait for QEMU", "").describe();
    }
    // What QEMU wrote before it ended.
    if (ctl_open) drain(ctl_fd, ctl_buf);
    parse_ctl();
    if (!m.kernel && file_size(req.console_log) > console_start) m.kernel = ms_since(started);
    settle();
    ::close(ctl_fd);
    if (pidfd >= 0) ::close(pidfd);
    auto [phases, waiting] = boot_phases(m, r.virtiofs ? "virtiofs" : "9p");
    r.phases = std::move(phases);
    r.command_ran = have_exit;
    if (!have_exit) {
        r.waiting_for = waiting;
        r.exit_code = 1;
        if (r.failure.empty())
            r.failure = *qemu_rc != 0 ? fmt::format("QEMU failed (exit status {})", *qemu_rc)
                        : m.running
                            ? "the guest stopped while the command ran (kernel panic?)"
                            : "the guest stopped before reaching the command (kernel panic?)";
        r.console_tail = last_lines(read_from(req.console_log, console_start), 25);
    }
    r.total_ms = ms_since(t0);
    return r;
}

} // namespace vfioctl::vm
