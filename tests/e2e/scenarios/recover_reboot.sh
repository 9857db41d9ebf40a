#!/bin/bash
# vfioctl-recover.service after a real reboot, with systemd as PID 1.
# Boot 0 (the harness's): a GRUB disk whose command line asks the harness's
# init for its systemd mode (e2e.systemd=1 systemd.unit=e2e.target); the
# package built on the host (build/pkg) unpacked onto it as dpkg would put
# it (/usr through the disk's /usr overlay, /etc, the unit enabled the way
# deb-systemd-helper enables it); the e1000e bound with the package's
# vfioctl and the disk's state dir, so that the journal names boot 0.
# Boot 1, through GRUB, systemd as PID 1: vfioctl-recover.service ran before
# the scenario (sysinit.target), succeeded, and settled the entry without
# touching the device (the reboot gave it back to e1000e); 'status' reports
# the settlement.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-disk: 256
# e2e-timeout: 420
# e2e-requires: python3 grub-install update-grub sfdisk mkfs.ext4 dpkg-deb
. "$E2E_LIB/scenario.sh"

boot="${E2E_BOOT:-0}"
unit=vfioctl-recover.service

case "$boot" in
0)
    step "boot 0: a GRUB disk for systemd, the package on it, a bind"
    grub_disk "intel_iommu=on iommu=pt e2e.systemd=1 systemd.unit=e2e.target"
    d=/mnt/disk
    mkdir -p "$d" && mount /dev/vda1 "$d" || fail "cannot mount the disk"
    deb_onto_disk "$d"
    pkg="$PKG"
    # What deb-systemd-helper enable does for WantedBy=sysinit.target.
    ln -s "/lib/systemd/system/$unit" "$d/etc/systemd/system/sysinit.target.wants/$unit"
    ok "the package's files are on the disk, $unit enabled"

    nic="$(pci_find 8086 10d3)"
    [ -n "$nic" ] || fail "no e1000e (8086:10d3)"
    modprobe e1000e || fail "modprobe e1000e failed"
    run bind "$pkg/usr/bin/vfioctl" --json bind --state-dir "$d/var/lib/vfioctl" "$nic"
    expect_rc "bind $nic (state on the disk)" 0
    expect_driver "$nic" vfio-pci
    cat /proc/sys/kernel/random/boot_id >"$d/e2e/boot0-id"
    echo "$nic" >"$d/e2e/nic"
    json_check "$d/var/lib/vfioctl/journal.json" \
        "[(e['address'], e['boot']) for e in d['devices']] == [('$nic', open('$d/e2e/boot0-id').read().strip())]" \
        "the disk's journal holds $nic, bound in boot 0"
    umount "$d" || fail "cannot unmount the disk"
    request_reboot
    ;;
1)
    step "boot 1: systemd, after the reboot"
    [ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is $(cat /proc/1/comm), not systemd"
    ok "PID 1 is systemd ($(readlink /proc/1/exe))"
    [ -x /usr/bin/vfioctl ] || fail "/usr/bin/vfioctl is not there"
    boot0="$(cat /e2e/boot0-id)" nic="$(cat /e2e/nic)"
    [ "$(cat /proc/sys/kernel/random/boot_id)" != "$boot0" ] || fail "the boot id did not change"
    run unit_show systemctl show "$unit" -p ActiveState -p Result -p ExecMainStatus -p ConditionResult
    expect_text unit_show "ActiveState=active"
    expect_text unit_show "Result=success"
    expect_text unit_show "ExecMainStatus=0"
    expect_text unit_show "ConditionResult=yes"
    run unit_status systemctl status "$unit" --no-pager
    run unit_log journalctl -b -u "$unit" --no-pager -o cat
    expect_text unit_log "Settled 1 journal entry of an earlier boot"
    expect_text unit_log "$nic: was on e1000e"
    [ ! -e /var/lib/vfioctl/journal.json ] || fail "the journal is still there"
    json_check /var/lib/vfioctl/settled.json \
        "[(e['address'], e['boot']) for s in d['settlements'] for e in s['devices']] == [('$nic', '$boot0')]" \
        "settled.json records $nic from boot 0"
    expect_driver "$nic" e1000e
    [ "$(cat "/sys/bus/pci/devices/$nic/driver_override")" = "(null)" ] || fail "$nic has a driver_override"
    ok "$nic is on e1000e with no override: the reboot gave it back, the unit touched nothing"
    run status /usr/bin/vfioctl --json status
    expect_rc "status" 0 3
    json_check "$RESULTS/status.out" "'$nic' in text(d['settled']['last'])" "status reports $nic settled"
    run status_text /usr/bin/vfioctl status
    expect_text status_text "settled"
    ;;
esac
