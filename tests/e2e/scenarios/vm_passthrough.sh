#!/bin/bash
# "vfioctl vm start --gpu" passes the e1000e (alone in its IOMMU group) to an
# L2 guest: the group goes to vfio-pci, QEMU runs detached with the device
# behind its own pcie-root-port, "vm status" finds 8086:10d3 on L2's bus,
# "vm stop" gives the device back to e1000e. "verify --gpu" boots L2 with it
# and sees 8086:10d3 inside. A VM without a device boots too. One full L2
# boot (verify, about 100 s here next to another scenario, TCG inside TCG); the
# other VMs are stopped while they boot.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt no_timer_check
# e2e-timeout: 600
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"
# The boot phases of every L2 boot go to the log, failed or not.
export VFIOCTL_RUN_TIMES=1

kernel="$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)"
[ -n "$kernel" ] || skip "no /boot/vmlinuz-*"

step "facts"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e

# The vm stop timeouts stay short and fixed: they only bound the wait for an
# ACPI power-off that a guest still booting ignores, after which vm stop
# quits QEMU, with the same result at any speed.

step "vm start without a device"
run plain "$VFIOCTL" vm start plain --kernel "$kernel" --memory 256 --accel tcg
expect_rc "vm start plain" 0
expect_text plain "VM started with PID"
run plain_status "$VFIOCTL" --json vm status plain
expect_rc "vm status plain" 0
json_check "$RESULTS/plain_status.out" 'd["status"] == "running"' "plain VM is running"
run plain_stop "$VFIOCTL" vm stop plain --timeout 2
expect_rc "vm stop plain" 0

step "vm start --gpu: bind, start, device on L2's bus"
run start "$VFIOCTL" vm start l2 --kernel "$kernel" --memory 256 --accel tcg --gpu "$nic"
expect_rc "vm start --gpu" 0
expect_text start "VM started with PID"
expect_driver "$nic" vfio-pci
run status "$VFIOCTL" --json vm status l2
expect_rc "vm status" 0
json_check "$RESULTS/status.out" 'd["status"] == "running"' "L2 is running"
json_check "$RESULTS/status.out" 'd["missing_on_guest_bus"] == []' "8086:10d3 is on L2's bus"
json_check "$RESULTS/status.out" 'any(p["id"] == "8086:10d3" and p["qdev_id"] == "hostdev0" for p in d["guest_pci"])' \
    "the device is hostdev0 on L2's bus"
run again "$VFIOCTL" vm start l2 --kernel "$kernel"
expect_rc "a second vm start of l2" 1
expect_text again "already running"

step "vm stop gives the device back"
run stop "$VFIOCTL" vm stop l2 --timeout 5
expect_rc "vm stop" 0
expect_driver "$nic" e1000e

step "verify --gpu sees 8086:10d3 inside the guest"
# 400 s: 2.5 times the slowest L2 boot here (160 s), stretched by this
# run's slowdown; nested TCG may be slower than L1's boot shows.
run verify "$VFIOCTL" verify --gpu "$nic" --kernel "$kernel" --accel tcg --memory 512 --timeout "$(limit 400)"
expect_rc "verify --gpu" 0
expect_text verify "8086:10d3"
expect_text verify "verify: OK"
expect_driver "$nic" e1000e
