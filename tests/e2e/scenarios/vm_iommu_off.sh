#!/bin/bash
# With the IOMMU off, "vfioctl vm start --gpu" stops before launching QEMU
# with the cause from "status", and changes nothing; without a device the
# VM still starts (the seed's "VM works fine, just no GPU inside").
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=off
# e2e-timeout: 300
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

kernel="$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)"
[ -n "$kernel" ] || skip "no /boot/vmlinuz-*"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"

step "vm start --gpu refuses before anything starts"
run refuse "$VFIOCTL" vm start l2 --kernel "$kernel" --accel tcg --gpu "$nic"
expect_rc "vm start --gpu with the IOMMU off" 3
expect_text refuse "no IOMMU group"
expect_text refuse "intel_iommu=off"
pgrep -f "^/usr/bin/qemu-system-x86_64" >/dev/null && fail "a QEMU runs after the refusal"
[ ! -e /run/vfioctl/l2 ] || fail "a run directory was made"
expect_driver "$nic" e1000e
ok "nothing started, nothing changed"

step "a VM without a device starts"
run plain "$VFIOCTL" vm start plain --kernel "$kernel" --memory 256 --accel tcg
expect_rc "vm start plain" 0
run stop "$VFIOCTL" vm stop plain --timeout 2
expect_rc "vm stop plain" 0
