#pragma once
// Kernel images for 'vm run' and 'verify': what a file holds (bzImage or an
// uncompressed ELF vmlinux), its release, and the uncompressed kernel inside
// a bzImage. Under TCG a bzImage spends most of its boot decompressing
// itself (about 2.8 s of 5 s for Debian's xz kernel on one host core, and
// the same share of a nested guest's minutes); QEMU boots the ELF directly
// through PVH when the kernel has CONFIG_PVH, so vfioctl unpacks it once,
// keeps it in a cache, and boots that.

#include "util/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace vfioctl::vm {

// The compressed kernel inside a bzImage (boot protocol 2.08+).
struct BzPayload {
    std::string format; // "xz", "zstd", "gzip", "lzma", "lz4", "lzo", "bzip2", or "unknown"
    size_t offset = 0;  // in the image
    size_t length = 0;
};

// Pure: where the payload sits and how it is compressed; an Error when the
// data is no bzImage or its header points outside it.
Result<BzPayload> bzimage_payload(std::string_view image);

// Pure: the payload decompressed (xz, zstd and gzip; an Error names any
// other format). Stops with an Error past max_bytes.
Result<std::string> decompress_payload(std::string_view format, std::string_view data,
                                       size_t max_bytes = size_t{1} << 30);

// Pure: true for a 64-bit little-endian x86-64 ELF executable.
bool is_elf_kernel(std::string_view image);

// Pure: true when the ELF carries the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY,
// from CONFIG_PVH) that QEMU needs to boot it without a bzImage.
bool elf_has_pvh_entry(std::string_view elf);

// Pure: the release in an ELF kernel's banner ("Linux version 6.1.0-57-amd64 (...");
// an Error when there is none.
Result<std::string> elf_release(std::string_view elf);

// Pure: the cache file name for an image identified by its path, size,
// modification time and inode: "vmlinux-RELEASE-HASH".
std::string unpacked_name(std::string_view release, std::string_view real_path, uint64_t size,
                          int64_t mtime_ns, uint64_t inode, uint64_t device);

// Where unpacked kernels are kept: $VFIOCTL_CACHE_DIR, else
// /var/cache/vfioctl/kernels for root, else $XDG_CACHE_HOME/vfioctl/kernels,
// else ~/.cache/vfioctl/kernels.
std::string default_kernel_cache();

// What unpack_kernel did.
struct Unpacked {
    std::string path;    // the ELF to boot
    bool cached = false; // it was already there
};

// The uncompressed ELF of the bzImage at path (the running system's file),
// from cache_dir or decompressed into it (atomically: a temporary file,
// fsync, rename); keeps the newest four there. An Error says why it cannot:
// no bzImage, a format it cannot decompress, no PVH entry note, a cache it
// cannot write.
Result<Unpacked> unpack_kernel(const std::string& path, std::string_view release,
                               const std::string& cache_dir);

} // namespace vfioctl::vm
