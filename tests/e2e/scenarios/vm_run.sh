#!/bin/bash
# "vfioctl vm run --gpu" inside L1 (IOMMU on): the kernel-development loop
# boots the Debian kernel as L2 with L1's root shared read-only; the e1000e
# is bound to vfio-pci for the run, the command finds 8086:10d3 on L2's bus
# and exits 0, the device is back on e1000e afterwards and the journal is
# empty. One L2 boot, TCG inside TCG (100 to 160 s here next to another scenario):
# the exit code of a failing command ("-- false" returns 1) and a kernel that
# panics (non-zero in bounded time, with its last console lines) need no
# device and no IOMMU, so they are checked on the host, one TCG level down,
# by the unit tests VmRun.TrueAndFalseUnderTcg and
# VmRun.APanicEndsInBoundedTimeWithTheConsoleTail (tests/unit/vm_run_test.cpp).
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 600
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"
# The boot phases of every L2 boot go to the log, failed or not.
export VFIOCTL_RUN_TIMES=1

kernel="$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)"
[ -n "$kernel" ] || skip "no /boot/vmlinuz-*"

step "vm run with the e1000e: bound for the run, on L2's bus, given back"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e
# The command looks for 8086:10d3 on L2's bus and exits 0 only if it is there.
# shellcheck disable=SC2016 # L2's shell expands it
look='for d in /sys/bus/pci/devices/*; do
  if [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x8086:0x10d3 ]; then echo "found ${d##*/}"; exit 0; fi
done; exit 9'
# 400 s: 2.5 times the slowest L2 boot here (160 s), stretched by this
# run's slowdown; nested TCG may be slower than L1's boot shows.
# 9p, not auto: in L1 (root, so virtiofsd may raise its file limit) auto
# takes virtiofs, and there every program the command starts is read through
# an L1 virtiofsd under TCG: the command phase took 231 s and 295 s in two
# full runs. The share is not what this scenario is about; virtiofs is
# tested on the host (VmRun.VirtiofsAutoAnd9p).
run g "$VFIOCTL" vm run --kernel "$kernel" --accel tcg --memory 256 --share 9p \
    --boot-timeout "$(limit 400)" --gpu "$nic" -- sh -c "$look"
expect_rc "vm run --gpu $nic" 0
expect_text g "found 0000:"
expect_driver "$nic" e1000e
[ ! -s "$(journal_file)" ] || json_check "$(journal_file)" 'd["devices"] == []' "no journal entry left"
ok "nothing left in the journal"
