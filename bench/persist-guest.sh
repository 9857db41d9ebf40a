#!/bin/bash
# The guest half of bench/persist.sh: boot-time binding, vfioctl's
# persistent binding (/etc/vfioctl/bind.d, vfioctl-bind.service and
# 61-vfioctl.rules from the package) against driverctl's persistent override
# (/etc/driverctl.d, its udev rule and driverctl@.service), on the same GRUB
# disk with systemd and udev as PID 1's helpers, the two alternating boot by
# boot. A udev rule the benchmark adds records, for every driver bind of the
# e1000e, the driver and the seconds since the kernel started
# (/proc/uptime) in /run/bench-bound; a boot's measurement is the time of
# the bind to vfio-pci, and whether e1000e bound it before (a vfioctl boot
# where it did fails the run; for driverctl it is recorded).
# Boot 0 prepares the disk; boots 1..2*BENCH_ROUNDS measure.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-disk: 256
# e2e-timeout: 1500
# e2e-max-boots: 16
# e2e-requires: python3 grub-install update-grub sfdisk mkfs.ext4 dpkg-deb driverctl
. "$E2E_LIB/scenario.sh"

boot="${E2E_BOOT:-0}"
rounds="${BENCH_ROUNDS:-4}"
[ $((2 * rounds + 1)) -le 16 ] || fail "BENCH_ROUNDS=$rounds needs more than 16 boots (at most 7)"
timings="$RESULTS/timings.tsv"

# The method of boot N (1-based): vfioctl on odd boots, driverctl on even.
method_of() { if [ $(($1 % 2)) = 1 ]; then echo vfioctl; else echo driverctl; fi; }

# configure METHOD NIC: the next boot binds NIC to vfio-pci with METHOD only.
configure() {
    rm -f "/etc/vfioctl/bind.d/pci-$2" "/etc/driverctl.d/pci-$2"
    mkdir -p /etc/vfioctl/bind.d /etc/driverctl.d
    case "$1" in
    vfioctl) echo vfio-pci >"/etc/vfioctl/bind.d/pci-$2" ;;
    driverctl) echo vfio-pci >"/etc/driverctl.d/pci-$2" ;;
    esac
    sync
}

case "$boot" in
0)
    step "boot 0: a GRUB disk for systemd, the package on it, the bind recorder"
    grub_disk "intel_iommu=on iommu=pt e2e.systemd=1 systemd.unit=e2e.target"
    d=/mnt/disk
    mkdir -p "$d" || fail "cannot make $d"
    mount /dev/vda1 "$d" || fail "cannot mount the disk"
    deb_onto_disk "$d"
    ln -s /lib/systemd/system/vfioctl-bind.service \
        "$d/etc/systemd/system/sysinit.target.wants/vfioctl-bind.service"
    nic="$(pci_find 8086 10d3)"
    [ -n "$nic" ] || fail "no e1000e (8086:10d3)"
    echo "$nic" >"$d/e2e/nic"
    mkdir -p "$d/etc/udev/rules.d"
    cat >"$d/etc/udev/rules.d/99-bench-bound.rules" <<RULE
ACTION=="bind", SUBSYSTEM=="pci", KERNEL=="$nic", RUN+="/bin/sh -c 'read u rest </proc/uptime; echo %E{DRIVER} \$\$u >>/run/bench-bound'"
RULE
    printf 'boot\tmethod\tbound_s\te1000e_first\n' >"$timings"
    # The first measured boot's configuration.
    mkdir -p "$d/etc/vfioctl/bind.d" "$d/etc/driverctl.d"
    echo vfio-pci >"$d/etc/vfioctl/bind.d/pci-$nic"
    umount "$d" || fail "cannot unmount the disk"
    request_reboot
    ;;
*)
    [ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is $(cat /proc/1/comm), not systemd"
    nic="$(cat /e2e/nic)"
    method="$(method_of "$boot")"
    step "boot $boot: $method"
    udevadm settle -t 60 || true
    [ -s /run/bench-bound ] || fail "no bind of $nic was recorded"
    cat /run/bench-bound
    # vfioctl promises that the host driver never binds it; driverctl's
    # override is applied by a service after udev saw the device, which
    # the benchmark records rather than fails.
    first=no
    if grep -q '^e1000e ' /run/bench-bound; then first=yes; fi
    [ "$method" = driverctl ] || [ "$first" = no ] || fail "e1000e bound $nic first ($method)"
    t="$(awk '$1 == "vfio-pci" { print $2; exit }' /run/bench-bound)"
    [ -n "$t" ] || fail "$nic was not bound to vfio-pci ($method)"
    expect_driver "$nic" vfio-pci
    if [ "$method" = driverctl ]; then
        run_quiet "status_$boot" /usr/bin/vfioctl --json status
        json_check "$RESULTS/status_$boot.out" \
            "any(b['source'] == 'driverctl' and b['address'] == '$nic' for b in d['persistent']['bindings'])" \
            "status reports driverctl's override"
    fi
    printf '%s\t%s\t%s\t%s\n' "$boot" "$method" "$t" "$first" >>"$timings"
    ok "$method: $nic on vfio-pci at ${t}s after the kernel started (e1000e bound it first: $first)"
    next=$((boot + 1))
    if [ "$next" -le $((2 * rounds)) ]; then
        configure "$(method_of "$next")" "$nic"
        request_reboot
    fi
    ;;
esac
