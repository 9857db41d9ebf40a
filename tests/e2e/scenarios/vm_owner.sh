#!/bin/bash
# QEMU without root, as libvirt runs it: "bind --owner" gives the group's
# /dev/vfio/N to a user, and "vm start --owner" runs QEMU as that user from
# its first instruction (setpriv), with a locked-memory limit of the guest's
# RAM + 1 GiB (prlimit; VFIO pins all guest RAM). The control: the same
# QEMU as that user on a group node root still owns fails to open it.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt no_timer_check
# e2e-timeout: 420
# e2e-requires: python3 setpriv prlimit qemu-system-x86_64
. "$E2E_LIB/scenario.sh"

kernel="$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)"
[ -n "$kernel" ] || skip "no /boot/vmlinuz-*"
uid=4321
gid=65534

step "facts: an unprivileged user, the e1000e on its own"
grep -q '^e2evm:' /etc/passwd || echo "e2evm:x:$uid:$gid::/nonexistent:/usr/sbin/nologin" >>/etc/passwd
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e

step "control: as the user, QEMU cannot open a group root owns"
run bind_root "$VFIOCTL" bind "$nic"
expect_rc "bind" 0
group="$(iommu_group_of "$nic")"
[ "$(stat -c %u "/dev/vfio/$group")" = 0 ] || fail "/dev/vfio/$group is not root's"
run control timeout "$(limit 60)" setpriv --reuid=$uid --regid=$gid --clear-groups -- \
    qemu-system-x86_64 -M q35 -accel tcg -m 64 -display none -nodefaults -S \
    -device "vfio-pci,host=$nic"
[ "$RC" -ne 0 ] || fail "QEMU as uid $uid opened /dev/vfio/$group"
expect_text control "Permission denied"
run unbind_root "$VFIOCTL" unbind "$nic"
expect_rc "unbind" 0
expect_driver "$nic" e1000e

step "bind --owner: the node is the user's"
run nouser "$VFIOCTL" bind "$nic" --owner nosuch
expect_rc "bind --owner nosuch" 2
expect_driver "$nic" e1000e
run bind_owner "$VFIOCTL" --json bind "$nic" --owner e2evm
expect_rc "bind --owner e2evm" 0
json_check "$RESULTS/bind_owner.out" "d['owner']['nodes'] == ['/dev/vfio/$group'] and d['owner']['uid'] == $uid" \
    "bind reports /dev/vfio/$group as e2evm's"
[ "$(stat -c %u:%a "/dev/vfio/$group")" = "$uid:600" ] || fail "/dev/vfio/$group: $(stat -c %u:%a "/dev/vfio/$group")"
ok "/dev/vfio/$group is $uid's, mode 600"
run unbind_owner "$VFIOCTL" unbind "$nic"
expect_rc "unbind" 0
expect_driver "$nic" e1000e

step "vm start --owner: QEMU runs as the user and has the device"
run start "$VFIOCTL" --json vm start l2 --kernel "$kernel" --memory 256 --accel tcg --gpu "$nic" --owner e2evm
expect_rc "vm start --owner" 0
pid="$(json_eval "$RESULTS/start.out" 'd["pid"]')"
[ -d "/proc/$pid" ] || fail "QEMU (PID $pid) is not running"
uids="$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")"
[ "$uids" = "$uid $uid $uid $uid" ] || fail "QEMU runs with uids '$uids'"
ok "QEMU (PID $pid) runs as uid $uid: real, effective, saved and fs"
caps="$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")"
[ "$caps" = 0000000000000000 ] || fail "QEMU has capabilities $caps"
ok "QEMU has no capabilities"
memlock="$(awk '/^Max locked memory/ {print $4}' "/proc/$pid/limits")"
[ "$memlock" = $(((256 + 1024) * 1024 * 1024)) ] || fail "QEMU's locked-memory limit is $memlock"
ok "QEMU's locked-memory limit is the guest's RAM + 1 GiB"
json_check "$RESULTS/start.out" "d['owner']['nodes'] == ['/dev/vfio/$group']" "vm start gave /dev/vfio/$group to e2evm"
run status "$VFIOCTL" --json vm status l2
expect_rc "vm status" 0
json_check "$RESULTS/status.out" 'd["status"] == "running"' "L2 is running"
json_check "$RESULTS/status.out" 'd["missing_on_guest_bus"] == []' "8086:10d3 is on L2's bus"
expect_driver "$nic" vfio-pci

step "vm stop gives the device back, and checks it came back"
run stop "$VFIOCTL" --json vm stop l2 --timeout 5
expect_rc "vm stop" 0
expect_driver "$nic" e1000e
json_check "$RESULTS/stop.out" "[h['address'] for h in d['health_after']] == ['$nic']" "vm stop checks the device it gave back"
json_check "$RESULTS/stop.out" "d['health_after'][0]['expected_driver'] == 'e1000e' and d['health_after'][0]['driver'] == 'e1000e'" \
    "it is back on the driver the journal named"
json_check "$RESULTS/stop.out" "d['health_after'][0]['responds'] is True and d['health_after'][0]['state'] in ('healthy', 'unknown')" \
    "its config space answers; not wedged or unhealthy"
[ ! -d "/proc/$pid" ] || fail "QEMU (PID $pid) still runs"
ok "QEMU is gone"
