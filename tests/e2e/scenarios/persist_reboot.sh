#!/bin/bash
# 'bind --persistent' across real reboots, systemd and udev as a host runs
# them (e2e.systemd=1 on a GRUB disk, the package built on the host unpacked
# onto it as in recover_reboot).
# Boot 0 (the harness's): the disk, the package's files, vfioctl-bind.service
# enabled as the postinst enables it.
# Boot 1 (systemd): the e1000e is on e1000e (nothing listed: the unit's
# condition is false); with a driverctl override to e1000e in
# /etc/driverctl.d, 'bind --persistent' refuses and changes nothing; with one
# to vfio-pci, it would keep driverctl's and add none; then, without it,
# 'bind --persistent' binds it and records /etc/vfioctl/bind.d/pci-ADDRESS.
# Boot 2: before any vfioctl command, the e1000e is on vfio-pci with
# driver_override=vfio-pci, vfioctl-bind.service succeeded and bound it, and
# the kernel log has no line of e1000e about the device (e1000e never bound
# it, though udev loaded the module); 'unbind --persistent' gives it back
# and removes the entry.
# Boot 3: back on e1000e, no override, the unit applied nothing; then the
# udev rule alone: with an entry written, e1000e unloaded and the device
# removed and rescanned, udev loads e1000e for it again, and yet the device
# is on vfio-pci with driver_override set by the rule.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-disk: 256
# e2e-timeout: 900
# e2e-requires: python3 grub-install update-grub sfdisk mkfs.ext4 dpkg-deb
. "$E2E_LIB/scenario.sh"

boot="${E2E_BOOT:-0}"
unit=vfioctl-bind.service

# unit_state WHAT: the unit's systemctl show, its journal and kernel log.
unit_state() {
    run "unit_show_$1" systemctl show "$unit" -p ActiveState -p Result -p ExecMainStatus -p ConditionResult
    run "unit_log_$1" journalctl -b -u "$unit" --no-pager -o cat
}

# no_e1000e_line NIC: the kernel log has no line of e1000e about NIC.
no_e1000e_line() {
    run "kmsg_$boot" journalctl -k -b --no-pager -o cat
    if grep -aqF "e1000e $1" "$RESULTS/kmsg_$boot.out"; then
        grep -aF "e1000e $1" "$RESULTS/kmsg_$boot.out"
        fail "e1000e bound $1 in this boot (kernel log above)"
    fi
    grep -aq "e1000e: Intel(R) PRO/1000 Network Driver" "$RESULTS/kmsg_$boot.out" ||
        echo "note: the e1000e module did not print its banner in this boot"
    ok "the kernel log has no line of e1000e about $1"
}

case "$boot" in
0)
    step "boot 0: a GRUB disk for systemd, the package on it, $unit enabled"
    grub_disk "intel_iommu=on iommu=pt e2e.systemd=1 systemd.unit=e2e.target"
    d=/mnt/disk
    mkdir -p "$d" && mount /dev/vda1 "$d" || fail "cannot mount the disk"
    deb_onto_disk "$d"
    [ -f "$PKG/lib/udev/rules.d/61-vfioctl.rules" ] || fail "the package has no /lib/udev/rules.d/61-vfioctl.rules"
    [ -f "$PKG/lib/systemd/system/$unit" ] || fail "the package has no /lib/systemd/system/$unit"
    # What deb-systemd-helper enable does for WantedBy=sysinit.target.
    ln -s "/lib/systemd/system/$unit" "$d/etc/systemd/system/sysinit.target.wants/$unit"
    nic="$(pci_find 8086 10d3)"
    [ -n "$nic" ] || fail "no e1000e (8086:10d3)"
    echo "$nic" >"$d/e2e/nic"
    ok "the package's files are on the disk, $unit enabled"
    umount "$d" || fail "cannot unmount the disk"
    request_reboot
    ;;
1)
    step "boot 1: systemd; nothing listed yet, then bind --persistent"
    [ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is $(cat /proc/1/comm), not systemd"
    nic="$(cat /e2e/nic)"
    unit_state 1
    expect_text unit_show_1 "ConditionResult=no"
    udevadm settle -t 30 || true
    expect_driver "$nic" e1000e
    # driverctl's override to another driver is not fought: refused, nothing changed.
    mkdir -p /etc/driverctl.d
    echo e1000e >"/etc/driverctl.d/pci-$nic"
    run refused /usr/bin/vfioctl bind --persistent "$nic"
    expect_rc "bind --persistent against driverctl's override to e1000e" 1
    expect_text refused "driverctl unset-override $nic"
    expect_driver "$nic" e1000e
    [ ! -e "/etc/vfioctl/bind.d/pci-$nic" ] || fail "the refused bind wrote an entry"
    # driverctl's override to vfio-pci is respected: no second entry.
    echo vfio-pci >"/etc/driverctl.d/pci-$nic"
    run respected /usr/bin/vfioctl bind --persistent --dry-run "$nic"
    expect_rc "bind --persistent --dry-run with driverctl's override to vfio-pci" 0
    expect_text respected "driverctl already binds it to vfio-pci at boot"
    rm -f "/etc/driverctl.d/pci-$nic"
    run bind /usr/bin/vfioctl bind --persistent "$nic"
    expect_rc "bind --persistent $nic" 0
    expect_text bind "recorded /etc/vfioctl/bind.d/pci-$nic"
    expect_driver "$nic" vfio-pci
    [ "$(cat "/etc/vfioctl/bind.d/pci-$nic")" = vfio-pci ] || fail "the entry does not hold vfio-pci"
    run status_json /usr/bin/vfioctl --json status
    json_check "$RESULTS/status_json.out" \
        "[(b['source'], b['address']) for b in d['persistent']['bindings']] == [('vfioctl', '$nic')]" \
        "status lists the persistent binding"
    sync
    request_reboot
    ;;
2)
    step "boot 2: on vfio-pci before any vfioctl command"
    [ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is $(cat /proc/1/comm), not systemd"
    nic="$(cat /e2e/nic)"
    # First what the boot did, before vfioctl runs here.
    expect_driver "$nic" vfio-pci
    [ "$(cat "/sys/bus/pci/devices/$nic/driver_override")" = vfio-pci ] || fail "$nic has no driver_override=vfio-pci"
    ok "$nic has driver_override=vfio-pci"
    unit_state 2
    expect_text unit_show_2 "Result=success"
    expect_text unit_show_2 "ExecMainStatus=0"
    expect_text unit_show_2 "ConditionResult=yes"
    expect_text unit_log_2 "$nic: bound"
    udevadm settle -t 30 || true
    # udev loaded e1000e (so it had its chance at the device), and yet:
    run lsmod_2 grep -w e1000e /proc/modules
    expect_rc "e1000e loaded by udev" 0
    no_e1000e_line "$nic"
    expect_driver "$nic" vfio-pci
    run unbind /usr/bin/vfioctl unbind --persistent "$nic"
    expect_rc "unbind --persistent $nic" 0
    expect_text unbind "removed /etc/vfioctl/bind.d/pci-$nic"
    expect_driver "$nic" e1000e
    [ ! -e "/etc/vfioctl/bind.d/pci-$nic" ] || fail "the entry is still there"
    sync
    request_reboot
    ;;
3)
    step "boot 3: back on e1000e"
    nic="$(cat /e2e/nic)"
    udevadm settle -t 30 || true
    expect_driver "$nic" e1000e
    [ "$(cat "/sys/bus/pci/devices/$nic/driver_override")" = "(null)" ] || fail "$nic has a driver_override"
    ok "$nic has no driver_override"
    unit_state 3
    expect_text unit_show_3 "Result=success"
    # The removed entry's bytes are in boot-journal.json, not beside it:
    # bind.d is empty and the unit's condition false.
    expect_text unit_show_3 "ConditionResult=no"

    step "boot 3: the udev rule alone: a listed device that appears goes to vfio-pci"
    # As in an initramfs, or a device added while its driver is not loaded:
    # the rule must set the override before 80-drivers.rules loads e1000e.
    echo vfio-pci >"/etc/vfioctl/bind.d/pci-$nic"
    modprobe -r e1000e || fail "cannot unload e1000e"
    modprobe -r vfio-pci 2>/dev/null || true
    echo 1 >"/sys/bus/pci/devices/$nic/remove" || fail "cannot remove $nic"
    echo 1 >/sys/bus/pci/rescan || fail "cannot rescan the bus"
    udevadm settle -t 60 || true
    [ -e "/sys/bus/pci/devices/$nic" ] || fail "$nic did not come back after the rescan"
    run lsmod_3 grep -w e1000e /proc/modules
    expect_rc "e1000e loaded again by udev for the new device" 0
    expect_driver "$nic" vfio-pci
    [ "$(cat "/sys/bus/pci/devices/$nic/driver_override")" = vfio-pci ] || fail "$nic has no driver_override=vfio-pci"
    ok "61-vfioctl.rules set driver_override=vfio-pci and loaded vfio-pci before e1000e could bind"
    rm -f "/etc/vfioctl/bind.d/pci-$nic"
    ;;
esac
