#!/bin/bash
# 'vfioctl vm run --kernel K -- true' against the bare QEMU command that
# boots the same kernel and runs the same command with the same
# accelerator, in one hyperfine run; and against the same bare command
# booting the uncompressed kernel that vfioctl unpacked (PVH), which is
# what vfioctl boots under TCG. Writes a Markdown report.
#
# Usage: bench/vm_run.sh [VFIOCTL] [KERNEL] [OUT.md]
#   VFIOCTL  the built binary (default build/vfioctl)
#   KERNEL   a bzImage with its modules in /lib/modules (default: newest /boot/vmlinuz-*)
#   OUT.md   the report (default /tmp/vm-bench.md)
# Environment: RUNS (default 5), ACCEL (tcg|kvm; default what vfioctl picks).
set -euo pipefail

vfioctl="$(realpath "${1:-build/vfioctl}")"
kernel="${2:-$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)}"
out="${3:-/tmp/vm-bench.md}"
runs="${RUNS:-5}"
command -v hyperfine >/dev/null || { echo "bench: hyperfine is not installed" >&2; exit 77; }
qemu="$(command -v qemu-system-x86_64)" || { echo "bench: QEMU is not installed" >&2; exit 77; }
kver="$(basename "$kernel")"
kver="${kver#vmlinuz-}"
moddir="/lib/modules/$kver"
[ -f "$moddir/modules.dep" ] || { echo "bench: no $moddir/modules.dep" >&2; exit 77; }

accel="${ACCEL:-}"
if [ -z "$accel" ]; then
    if [ -e /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
        accel=kvm
    else
        accel=tcg
    fi
fi
cpu=max
[ "$accel" = kvm ] && cpu=host

work="$(mktemp -d /tmp/vm-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The baseline's initramfs, built here by hand: static busybox, the same
# modules (dependencies first, from modules.dep) and a hand-written init
# that mounts the host root over 9p, runs the command and powers off.
stage="$work/stage"
mkdir -p "$stage/bin" "$stage/dev" "$stage/proc" "$stage/sys" "$stage/root" "$stage/lib/m"
cp /bin/busybox "$stage/bin/busybox"
mods=()
for m in virtio_pci 9pnet_virtio 9p; do
    path="$(awk -F: -v n="/$m.ko" 'index($1, n) && substr($1, length($1) - length(n) + 1) == n { print $1; exit }' "$moddir/modules.dep")"
    read -r -a deps <<<"$(awk -F: -v p="$path" '$1 == p { print $2; exit }' "$moddir/modules.dep")"
    for ((i = ${#deps[@]} - 1; i >= 0; i--)); do mods+=("${deps[i]}"); done
    mods+=("$path")
done
order=""
for p in "${mods[@]}"; do
    n="$(basename "$p" .ko)"
    case " $order " in *" $n "*) continue ;; esac
    cp "$moddir/$p" "$stage/lib/m/$n.ko"
    order="$order $n"
done
cat >"$stage/init" <<INIT
#!/bin/busybox sh
B=/bin/busybox
\$B mount -t devtmpfs dev /dev
for m in$order; do \$B insmod /lib/m/\$m.ko; done
\$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /root
\$B mount -t proc proc /root/proc
\$B mount -t sysfs sysfs /root/sys
\$B mount -t devtmpfs dev /root/dev
\$B mount -t tmpfs tmpfs /root/tmp
\$B chroot /root /usr/bin/true
\$B poweroff -f
INIT
chmod 0755 "$stage/init"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$work/base.cpio"

bare=("$qemu" -nodefaults -no-user-config -display none -machine q35 -accel "$accel" -cpu "$cpu"
    -m 1024M -smp 1 -no-reboot -chardev "file,id=c,path=$work/bare-console.log,append=on" -serial chardev:c
    -kernel "$kernel" -initrd "$work/base.cpio" -append "console=ttyS0 quiet panic=-1 rdinit=/init"
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot)
ours=("$vfioctl" vm run --share 9p --accel "$accel" --kernel "$kernel" --run-dir "$work/runs" -- true)

# Both must work before they are timed; vfioctl's run also says which
# kernel it booted (the unpacked ELF, under TCG).
"${bare[@]}" </dev/null
booted="$(VFIOCTL_RUN_TIMES=1 "${ours[@]}" 2>&1 </dev/null | sed -n 's/^vfioctl: .*total [0-9.]* ms (\(.*\))$/\1/p')"
extra=()
if [ -n "$booted" ] && [ "$booted" != "$kernel" ]; then
    pvh=("${bare[@]}")
    for i in "${!pvh[@]}"; do [ "${pvh[i]}" = "$kernel" ] && pvh[i]="$booted"; done
    "${pvh[@]}" </dev/null
    extra=(-n "bare QEMU, unpacked kernel ($accel)" "$(printf '%q ' "${pvh[@]}")")
fi

q() { printf '%q ' "$@"; }
hyperfine --warmup 1 --runs "$runs" -N --export-markdown "$work/table.md" --export-json "$work/times.json" \
    -n "bare QEMU ($accel)" "$(q "${bare[@]}")" -n "vfioctl vm run ($accel)" "$(q "${ours[@]}")" "${extra[@]}"

# vfioctl's own time before QEMU starts, and boot to the command.
startup=()
for i in 1 2 3 4 5; do
    startup+=("$(VFIOCTL_RUN_TIMES=1 "${ours[@]}" 2>&1 >/dev/null | sed -n 's/.*before QEMU \([0-9.]*\) ms.*/\1/p')")
done
boot="$(VFIOCTL_RUN_TIMES=1 "${ours[@]}" 2>&1 >/dev/null | sed -n 's/.*boot to command \([0-9.]*\) ms.*/\1/p')"
ratio="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("%.3f" % (r[1]["median"]/r[0]["median"]))' "$work/times.json")"
ratio_pvh="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("%.3f" % (r[1]["median"]/r[2]["median"]) if len(r) > 2 else "n/a")' "$work/times.json")"
{
    echo "# vm run benchmark"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, accelerator $accel, kernel $kernel, $runs runs"
    echo
    cat "$work/table.md"
    echo
    echo "- vfioctl / bare QEMU (medians): ${ratio}x"
    echo "- vfioctl / bare QEMU booting the same unpacked kernel (medians): ${ratio_pvh}x (kernel booted: ${booted:-?})"
    echo "- vfioctl's own time before QEMU starts (ms, 5 runs): ${startup[*]}"
    echo "- QEMU start to the command starting (ms): $boot"
} >"$out"
cat "$out"
