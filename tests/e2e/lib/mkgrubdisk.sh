#!/bin/bash
# Makes DISK a bootable GRUB disk whose root file system the e2e guest's init
# can run a scenario from (its disk-root mode). Runs inside the L1 guest, as
# root, in a scenario's first boot; never on the machine that runs the suite.
#
# Usage: mkgrubdisk.sh DISK DEFAULT_GRUB
#   DISK          the blank disk the harness attached (/dev/vda, "# e2e-disk:")
#   DEFAULT_GRUB  the file to install as the disk's /etc/default/grub
# Environment (run-scenario.sh sets them): RESULTS, E2E_SHOW, E2E_KERNEL,
# E2E_INITRD.
#
# DISK gets a DOS label with one ext4 partition from 1 MiB, holding a root
# skeleton: bin, sbin, lib, lib64 as links into usr/, an empty usr/ (the
# guest's init shows the host's /usr there), a copy of this guest's /etc (the
# host's), DEFAULT_GRUB as /etc/default/grub and a byte-identical copy of it
# as /e2e/default-grub, /boot/vmlinuz-VERSION (E2E_KERNEL) and
# /boot/initrd.img-VERSION (E2E_INITRD, the harness's initramfs), and
# /e2e/show (the E2E_SHOW directories, which the init shows at the same
# paths). The harness's own kernel parameters (serial console, panic=-1,
# e2e.results=RESULTS) and the serial terminal go into a drop-in,
# /etc/default/grub.d/e2e.cfg, so that DEFAULT_GRUB stays the scenario's.
# Then grub-install (i386-pc) writes the boot loader, and the real update-grub
# runs chrooted into the disk with this guest's /usr, /proc, /sys and /dev.
set -euo pipefail

disk="${1:?usage: mkgrubdisk.sh DISK DEFAULT_GRUB}"
default_grub="${2:?usage: mkgrubdisk.sh DISK DEFAULT_GRUB}"
: "${RESULTS:?RESULTS is not set: run inside an e2e scenario}"
: "${E2E_SHOW:?E2E_SHOW is not set: run inside an e2e scenario}"
: "${E2E_KERNEL:?E2E_KERNEL is not set: run inside an e2e scenario}"
: "${E2E_INITRD:?E2E_INITRD is not set: run inside an e2e scenario}"

say() { echo "mkgrubdisk: $*"; }
die() {
    echo "mkgrubdisk: FAIL: $*" >&2
    exit 1
}

# Never on a machine that is not the e2e guest: this writes a whole disk.
grep -q 'e2e\.results=' /proc/cmdline || die "not inside the e2e guest; refusing to partition $disk"
[ "$(id -u)" = 0 ] || die "must run as root"
[ -f "$default_grub" ] || die "no file $default_grub"
[ -r "$E2E_KERNEL" ] || die "kernel image $E2E_KERNEL is not readable"
[ -r "$E2E_INITRD" ] || die "initramfs $E2E_INITRD is not readable"
kver="$(basename "$E2E_KERNEL")"
kver="${kver#vmlinuz-}"

for m in virtio_blk ext4; do
    [ -e "/sys/module/$m" ] || modprobe "$m" || die "modprobe $m failed"
done
for _ in $(seq 50); do
    [ -b "$disk" ] && break
    sleep 0.1
done
[ -b "$disk" ] || die "$disk is not a block device (is '# e2e-disk:' in the scenario's header?)"
if grep -q "^$disk" /proc/mounts; then die "$disk is mounted"; fi

part="${disk}1"
say "partitioning $disk"
echo 'label: dos
start=2048, type=83, bootable' | sfdisk --quiet --wipe always "$disk" >/dev/null ||
    die "sfdisk $disk failed"
for _ in $(seq 50); do
    [ -b "$part" ] && break
    sleep 0.1
done
[ -b "$part" ] || die "no $part after partitioning"
mkfs.ext4 -q -F -L e2e-root "$part" || die "mkfs.ext4 $part failed"

mnt="$(mktemp -d /tmp/mkgrubdisk.XXXXXX)"
mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}"; done
    rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT
mount -t ext4 "$part" "$mnt" || die "cannot mount $part"
mounted+=("$mnt")

say "root skeleton on $part"
cd "$mnt"
mkdir -p usr boot dev proc sys run root e2e home mnt var/lib/vfioctl var/log var/cache
install -d -m 1777 tmp var/tmp
chmod 0700 root
for l in bin sbin lib lib64; do ln -s "usr/$l" "$l"; done
cp -a /etc "$mnt/etc"
rm -f "$mnt/etc/default/grub"
install -m 0644 "$default_grub" "$mnt/etc/default/grub"
install -m 0644 "$default_grub" "$mnt/e2e/default-grub"
mkdir -p "$mnt/etc/default/grub.d"
cat >"$mnt/etc/default/grub.d/e2e.cfg" <<CFG
# The e2e harness: the serial console, power off on panic and where the
# scenario's results are (lib/init reads e2e.results=).
GRUB_CMDLINE_LINUX="\$GRUB_CMDLINE_LINUX console=ttyS0 panic=-1 e2e.results=$RESULTS"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
CFG
read -r -a show <<<"$E2E_SHOW"
printf '%s\n' "${show[@]}" | sort -u >"$mnt/e2e/show"
cp "$E2E_KERNEL" "$mnt/boot/vmlinuz-$kver"
cp "$E2E_INITRD" "$mnt/boot/initrd.img-$kver"
cd /

say "grub-install --target=i386-pc $disk"
grub-install --target=i386-pc --boot-directory="$mnt/boot" "$disk" 2>&1 || die "grub-install failed"

say "update-grub, chrooted into $part"
for d in usr proc sys dev; do
    case "$d" in
    usr) mount --bind /usr "$mnt/usr" ;;
    proc) mount -t proc proc "$mnt/proc" ;;
    sys) mount -t sysfs sysfs "$mnt/sys" ;;
    dev) mount --bind /dev "$mnt/dev" ;;
    esac || die "cannot mount $d in $mnt"
    mounted+=("$mnt/$d")
done
chroot "$mnt" /usr/sbin/update-grub 2>&1 || die "update-grub failed"
[ -s "$mnt/boot/grub/grub.cfg" ] || die "update-grub wrote no /boot/grub/grub.cfg"
grep -q "^[[:space:]]*linux[[:space:]].*vmlinuz-$kver" "$mnt/boot/grub/grub.cfg" ||
    die "/boot/grub/grub.cfg has no linux line for vmlinuz-$kver"
cleanup
mounted=()
trap - EXIT
sync
say "done: $disk boots GRUB, then $kver with the harness's initramfs"
