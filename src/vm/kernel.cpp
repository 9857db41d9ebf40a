#include "vm/kernel.hpp"

#include "host/atomic_file.hpp"
#include "host/state_files.hpp"
#include "host/unique_fd.hpp"
#include "util/bytes.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <lzma.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#include <zlib.h>
#include <zstd.h>

namespace vfioctl::vm {

namespace {

using util::le;

std::string format_of(std::string_view p) {
    auto starts = [p](std::string_view magic) {
        return p.size() >= magic.size() && p.substr(0, magic.size()) == magic;
    };
    if (starts(std::string_view("\xfd"
                                "7zXZ\0",
                                6)))
        return "xz";
    if (starts("\x28\xb5\x2f\xfd")) return "zstd";
    if (starts("\x1f\x8b")) return "gzip";
    if (starts(std::string_view("\x5d\x00\x00", 3))) return "lzma";
    if (starts("\x02\x21\x4c\x18")) return "lz4";
    if (starts("\x89\x4c\x5a")) return "lzo";
    if (starts("BZh")) return "bzip2";
    if (starts("\x7f"
               "ELF"))
        return "none";
    return "unknown";
}

constexpr size_t chunk = size_t{1} << 20;

Error too_big(size_t max) {
    return Error{fmt::format("the kernel decompresses to more than {} MiB", max >> 20), {}, {}, 0};
}

Result<std::string> unxz(std::string_view data, size_t max) {
    lzma_stream s = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
        return Error{"cannot start the xz decoder", {}, {}, 0};
    std::string out;
    s.next_in = reinterpret_cast<const uint8_t*>(data.data());
    s.avail_in = data.size();
    lzma_ret r = LZMA_OK;
    while (r == LZMA_OK) {
        if (out.size() >= max) {
            lzma_end(&s);
            return too_big(max);
        }
        const size_t have = out.size();
        out.resize(have + chunk);
        s.next_out = reinterpret_cast<uint8_t*>(out.data() + have);
        s.avail_out = chunk;
        r = lzma_code(&s, LZMA_FINISH);
        out.resize(have + chunk - s.avail_out);
    }
    lzma_end(&s);
    if (r != LZMA_STREAM_END)
        return Error{
            fmt::format("the xz kernel payload is corrupt (liblzma error {})", static_cast<int>(r)),
            {},
            {},
            0};
    return out;
}

Result<std::string> unzstd(std::string_view data, size_t max) {
    ZSTD_DCtx* d = ZSTD_createDCtx();
    if (!d) return Error{"cannot start the zstd decoder", {}, {}, 0};
    // The kernel compresses with --ultra -22: windows up to 2^27.
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 31);
    std::string out;
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    size_t left = 1;
    while (left != 0) {
        if (out.size() >= max) {
            ZSTD_freeDCtx(d);
            return too_big(max);
        }
        const size_t have = out.size();
        out.resize(have + chunk);
        ZSTD_outBuffer o{out.data() + have, chunk, 0};
        left = ZSTD_decompressStream(d, &o, &in);
        out.resize(have + o.pos);
        if (ZSTD_isError(left)) {
            std::string why = ZSTD_getErrorName(left);
            ZSTD_freeDCtx(d);
            return Error{"the zstd kernel payload is corrupt (" + why + ")", {}, {}, 0};
        }
        if (left != 0 && in.pos == in.size && o.pos < chunk) {
            ZSTD_freeDCtx(d);
            return Error{"the zstd kernel payload is truncated", {}, {}, 0};
        }
    }
    ZSTD_freeDCtx(d);
    return out;
}

Result<std::string> ungzip(std::string_view data, size_t max) {
    z_stream s{};
    if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
        return Error{"cannot start the gzip decoder", {}, {}, 0};
    std::string out;
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    s.avail_in = static_cast<uInt>(data.size());
    int r = Z_OK;
    while (r == Z_OK) {
        if (out.size() >= max) {
            inflateEnd(&s);
            return too_big(max);
        }
        const size_t have = out.size();
        out.resize(have + chunk);
        s.next_out = reinterpret_cast<Bytef*>(out.data() + have);
        s.avail_out = static_cast<uInt>(chunk);
        r = inflate(&s, Z_NO_FLUSH);
        out.resize(have + chunk - s.avail_out);
        if (r == Z_BUF_ERROR && s.avail_in > 0) r = Z_OK; // output was full
    }
    inflateEnd(&s);
    if (r != Z_STREAM_END)
        return Error{
            fmt::format("the gzip kernel payload is corrupt (zlib error {})", r), {}, {}, 0};
    return out;
}

std::string hex64(uint64_t v) {
    return fmt::format("{:016x}", v);
}

// Keeps the newest `keep` vmlinux-* files in dir (by modification time).
void prune(const std::string& dir, size_t keep) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::pair<int64_t, std::string>> files;
    while (auto* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.rfind("vmlinux-", 0) != 0) continue;
        struct stat st {};
        if (::stat((dir + "/" + n).c_str(), &st) == 0)
            files.emplace_back(int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec, n);
    }
    ::closedir(d);
    if (files.size() <= keep) return;
    std::sort(files.rbegin(), files.rend());
    for (size_t i = keep; i < files.size(); ++i)
        ::unlink((dir + "/" + files[i].second).c_str());
}

} // namespace

Result<BzPayload> bzimage_payload(std::string_view image) {
    if (image.size() < 0x250 || image.substr(0x202, 4) != "HdrS")
        return Error{"not a bzImage (no HdrS setup header)", {}, {}, 0};
    if (le<uint16_t>(image, 0x206) < 0x208)
        return Error{"the bzImage's boot protocol is older than 2.08", {}, {}, 0};
    unsigned setup_sects = static_cast<unsigned char>(image[0x1f1]);
    if (setup_sects == 0) setup_sects = 4;
    const uint64_t off = uint64_t{setup_sects + 1} * 512 + le<uint32_t>(image, 0x248);
    const uint64_t len = le<uint32_t>(image, 0x24c);
    if (len == 0 || off + len > image.size())
        return Error{"the bzImage's payload lies outside the file", {}, {}, 0};
    BzPayload p;
    p.offset = static_cast<size_t>(off);
    p.length = static_cast<size_t>(len);
    p.format = format_of(image.substr(p.offset, p.length));
    return p;
}

Result<std::string> decompress_payload(std::string_view format, std::string_view data,
                                       size_t max_bytes) {
    if (format == "xz") return unxz(data, max_bytes);
    if (format == "zstd") return unzstd(data, max_bytes);
    if (format == "gzip") return ungzip(data, max_bytes);
    return Error{"vfioctl cannot decompress a " + std::string(format) + " kernel",
                 {},
                 "build the kernel with CONFIG_KERNEL_XZ, CONFIG_KERNEL_ZSTD or "
                 "CONFIG_KERNEL_GZIP, or boot its "
                 "vmlinux (--kernel vmlinux)",
                 0};
}

bool is_elf_kernel(std::string_view s) {
    return s.size() >= 64 &&
           s.substr(0, 4) == "\x7f"
                             "ELF" &&
           s[4] == 2 && s[5] == 1 && le<uint16_t>(s, 0x12) == 62;
}

bool elf_has_pvh_entry(std::string_view s) {
    if (!is_elf_kernel(s)) return false;
    const uint64_t phoff = le<uint64_t>(s, 0x20);
    const uint16_t phentsize = le<uint16_t>(s, 0x36), phnum = le<uint16_t>(s, 0x38);
    if (phentsize < 56) return false;
    for (uint16_t i = 0; i < phnum; ++i) {
        const uint64_t ph = phoff + uint64_t{i} * phentsize;
        if (ph + 56 > s.size()) return false;
        if (le<uint32_t>(s, ph) != 4) continue; // PT_NOTE
        const uint64_t off = le<uint64_t>(s, ph + 8), size = le<uint64_t>(s, ph + 32);
        if (off > s.size() || size > s.size() - off) continue;
        for (uint64_t n = off; n + 12 <= off + size;) {
            const uint32_t namesz = le<uint32_t>(s, n), descsz = le<uint32_t>(s, n + 4),
                           type = le<uint32_t>(s, n + 8);
            const uint64_t name_at = n + 12;
            const uint64_t desc_at = name_at + ((uint64_t{namesz} + 3) & ~uint64_t{3});
            const uint64_t next = desc_at + ((uint64_t{descsz} + 3) & ~uint64_t{3});
            if (next > off + size) break;
            // XEN_ELFNOTE_PHYS32_ENTRY = 18, owner "Xen".
            if (type == 18 && namesz == 4 && s.substr(name_at, 4) == std::string_view("Xen\0", 4))
                return true;
            n = next;
        }
    }
    return false;
}

Result<std::string> elf_release(std::string_view s) {
    constexpr std::string_view banner = "Linux version ";
    for (size_t at = s.find(banner); at != std::string_view::npos; at = s.find(banner, at + 1)) {
        const size_t b = at + banner.size();
        size_t e = b;
        while (e < s.size() && e - b < 128 && s[e] > ' ' && s[e] < 0x7f)
            ++e;
        if (e > b && s[b] != '%' && e < s.size() && s[e] == ' ')
            return std::string(s.substr(b, e - b));
    }
    return Error{"no \"Linux version\" banner in the kernel",
                 {},
                 "give a kernel image: arch/x86/boot/bzImage or vmlinux",
                 0};
}

std::string unpacked_name(std::string_view release, std::string_view real_path, uint64_t size,
                          int64_t mtime_ns, uint64_t inode, uint64_t device) {
    // FNV-1a over what identifies the file: a rebuilt or replaced image
    // differs in one of these.
    uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&h](std::string_view bytes) {
        for (unsigned char c : bytes) {
            h ^= c;
            h *= 0x100000001b3ull;
        }
        h ^= 0xff;
        h *= 0x100000001b3ull;
    };
    mix(real_path);
    mix(std::to_string(size));
    mix(std::to_string(mtime_ns));
    mix(std::to_string(inode));
    mix(std::to_string(device));
    std::string rel;
    for (char c : release)
        rel += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
                c == '+')
                   ? c
                   : '_';
    return "vmlinux-" + rel + "-" + hex64(h);
}

std::string default_kernel_cache() {
    if (const char* d = std::getenv("VFIOCTL_CACHE_DIR"); d && *d) return d;
    if (::geteuid() == 0) return "/var/cache/vfioctl/kernels";
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x == '/')
        return std::string(x) + "/vfioctl/kernels";
    if (const char* home = std::getenv("HOME"); home && *home == '/')
        return std::string(home) + "/.cache/vfioctl/kernels";
    return "/tmp/vfioctl-" + std::to_string(::geteuid()) + "/kernels";
}

Result<Unpacked> unpack_kernel(const std::string& path, std::string_view release,
                               const std::string& cache_dir) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (!real) return system_error("cannot resolve", path);
    const std::string real_path = real;
    std::free(real);
    struct stat st {};
    if (::stat(real_path.c_str(), &st) != 0) return system_error("cannot stat", real_path);
    const std::string name =
        unpacked_name(release, real_path, static_cast<uint64_t>(st.st_size),
                      int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec,
                      static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_dev));
    const std::string target = cache_dir + "/" + name;
    if (const host::UniqueFd fd(::open(target.c_str(), O_RDONLY | O_CLOEXEC)); fd) {
        char head[64];
        const ssize_t n = ::read(fd.get(), head, sizeof head);
        if (n == static_cast<ssize_t>(sizeof head) &&
            is_elf_kernel(std::string_view(head, sizeof head))) {
            ::utimensat(AT_FDCWD, target.c_str(), nullptr, 0); // newest, for pruning
            return Unpacked{target, true};
        }
    }

    std::string image;
    {
        const host::UniqueFd fd(::open(real_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) return system_error("cannot read the kernel", real_path);
        image.resize(static_cast<size_t>(st.st_size));
        size_t off = 0;
        while (off < image.size()) {
            ssize_t n = ::read(fd.get(), image.data() + off, image.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            off += static_cast<size_t>(n);
        }
        image.resize(off);
    }
    auto payload = bzimage_payload(image);
    if (!payload) return payload.error();
    auto elf = decompress_payload(payload->format,
                                  std::string_view(image).substr(payload->offset, payload->length));
    if (!elf) return elf.error();
    if (!is_elf_kernel(*elf))
        return Error{"the bzImage's payload is no x86-64 ELF kernel", real_path, {}, 0};
    if (!elf_has_pvh_entry(*elf))
        return Error{"the kernel has no PVH entry point", real_path, "build it with CONFIG_PVH=y",
                     0};

    if (auto s = host::make_dirs_at(cache_dir); !s) return s.error();
    // The temporary file is a vmlinux-* too: prune removes one a killed run left.
    if (auto s = host::write_file_atomic(
            target, *elf, {.temp_name = name + ".tmp." + std::to_string(::getpid())});
        !s)
        return s.error();
    prune(cache_dir, 4);
    return Unpacked{target, false};
}

} // namespace vfioctl::vm
