#!/bin/bash
# Builds (or reuses) the e2e guest's initramfs and prints its path.
#
# Usage: mkinitramfs.sh KERNEL_VERSION CACHE_DIR
#
# The image holds a static busybox, lib/init as /init and the modules that
# mount the host root over virtio-9p with an overlay on top (etc/e2e-modules)
# and those that mount an ext4 root from a virtio disk
# (etc/e2e-disk-modules), resolved with their dependencies from
# /lib/modules/KERNEL_VERSION/modules.dep. It is
# cached in CACHE_DIR under a name derived from the kernel version and the
# content of every input, so a changed script or module makes a new image.
# Exit status: 0 built or reused, 77 when busybox or the modules are missing,
# 1 on any other failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kver="${1:?usage: mkinitramfs.sh KERNEL_VERSION CACHE_DIR}"
cache="${2:?usage: mkinitramfs.sh KERNEL_VERSION CACHE_DIR}"
moddir="${E2E_MODULES_DIR:-/lib/modules/$kver}"

# The modules the guest loads itself; their dependencies come first.
wanted=(virtio_pci 9pnet_virtio 9p overlay)
# Loaded only when the guest boots from a disk (root= on the command line):
# the block device and ext4. ext4 asks the crypto API for crc32c, which no
# modules.dep line names and no modprobe is there to find, so it is listed.
wanted_disk=(virtio_blk crc32c_generic ext4)

skip() {
    echo "e2e: SKIP: $*" >&2
    exit 77
}

find_busybox() {
    local c
    for c in "${E2E_BUSYBOX:-}" /bin/busybox /usr/bin/busybox; do
        if [ -z "$c" ] || [ ! -x "$c" ]; then continue; fi
        # The initramfs has no C library, so busybox must be static.
        local out
        out="$(LC_ALL=C ldd "$c" 2>&1 || true)"
        if grep -q -e 'not a dynamic executable' -e 'statically linked' <<<"$out"; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

busybox="$(find_busybox)" || skip "no static busybox (install busybox-static)"
[ -f "$moddir/modules.dep" ] || skip "no $moddir/modules.dep (modules for kernel $kver)"

norm() { echo "${1//-/_}"; }

# Prints the modules.dep path of module $1, or nothing when it is built in.
module_path() {
    local name line
    name="$(norm "$1")"
    line="$(awk -F: -v n="$name" '{
        f = $1; sub(/.*\//, "", f); sub(/\.ko(\.(xz|zst|gz))?$/, "", f); gsub(/-/, "_", f)
        if (f == n) { print $1; exit }
    }' "$moddir/modules.dep")"
    if [ -n "$line" ]; then
        echo "$line"
        return 0
    fi
    if [ -f "$moddir/modules.builtin" ] &&
        sed 's|.*/||; s|\.ko$||; s|-|_|g' "$moddir/modules.builtin" | grep -qx "$name"; then
        return 0
    fi
    echo "e2e: module $1 is neither in $moddir/modules.dep nor built in" >&2
    return 1
}

# Load order: for each wanted module its dependencies (modules.dep lists
# them last-loaded first), then the module; each path once.
order=()
add_once() {
    local p
    for p in "${order[@]}"; do [ "$p" = "$1" ] && return 0; done
    order+=("$1")
}
add_module() {
    local path deps i
    path="$(module_path "$1")" || skip "kernel $kver lacks module $1"
    [ -n "$path" ] || return 0
    read -r -a deps <<<"$(awk -F: -v p="$path" '$1 == p { print $2; exit }' "$moddir/modules.dep")"
    for ((i = ${#deps[@]} - 1; i >= 0; i--)); do add_once "${deps[i]}"; done
    add_once "$path"
}
for m in "${wanted[@]}"; do add_module "$m"; done
base_count=${#order[@]}
for m in "${wanted_disk[@]}"; do add_module "$m"; done

key="$(
    {
        echo "$kver"
        printf '%s\n' "${order[@]}"
        echo "$base_count"
        sha256sum "$here/init" "${BASH_SOURCE[0]}" "$busybox" | cut -d' ' -f1
        for p in "${order[@]}"; do sha256sum "$moddir/$p" | cut -d' ' -f1; done
    } | sha256sum | cut -c1-16
)"
image="$cache/initramfs-$kver-$key.cpio.gz"
if [ -s "$image" ]; then
    echo "$image"
    exit 0
fi

mkdir -p "$cache"
stage="$(mktemp -d "$cache/.stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/etc" "$stage/lib/e2e-modules" "$stage/dev" "$stage/proc" "$stage/sys"
cp "$busybox" "$stage/bin/busybox"
cp "$here/init" "$stage/init"
chmod 0755 "$stage/init" "$stage/bin/busybox"

# Decompresses a module into $2; busybox insmod cannot read .ko.zst.
unpack_module() {
    case "$1" in
    *.ko) cp "$1" "$2" ;;
    *.ko.xz) xz -dc "$1" >"$2" 2>/dev/null || "$busybox" xz -dc "$1" >"$2" ;;
    *.ko.gz) gzip -dc "$1" >"$2" ;;
    *.ko.zst) command -v zstd >/dev/null || skip "module $1 is zstd-compressed and zstd is missing"
        zstd -qdc "$1" >"$2" ;;
    *) echo "e2e: unknown module format: $1" >&2; return 1 ;;
    esac
}
: >"$stage/etc/e2e-modules"
: >"$stage/etc/e2e-disk-modules"
for i in "${!order[@]}"; do
    p="${order[i]}"
    name="$(basename "$p")"
    name="${name%%.ko*}"
    unpack_module "$moddir/$p" "$stage/lib/e2e-modules/$name.ko"
    if [ "$i" -lt "$base_count" ]; then
        echo "$name" >>"$stage/etc/e2e-modules"
    else
        echo "$name" >>"$stage/etc/e2e-disk-modules"
    fi
done

tmp="$(mktemp "$cache/.initramfs.XXXXXX")"
if command -v cpio >/dev/null; then
    (cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$tmp"
else
    (cd "$stage" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc) | gzip -9n >"$tmp"
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$image"
# Images from earlier inputs for this kernel are never used again.
for old in "$cache/initramfs-$kver-"*.cpio.gz; do
    [ "$old" = "$image" ] || rm -f "$old"
done
echo "$image"
