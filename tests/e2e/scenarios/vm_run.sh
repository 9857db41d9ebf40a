#!/bin/bash
# "vfioctl vm run" inside L1 (IOMMU on): the kernel-development loop boots
# the Debian kernel as L2 with L1's root shared read-only and returns the
# command's exit code. With --gpu the e1000e is bound for the run, the
# command finds it on L2's bus and exits 0, and it is back on e1000e
# afterwards; "false" returns 1; a kernel that panics ends in bounded time
# with a non-zero exit and its last console lines. Each run boots L2 under
# TCG inside TCG (3 to 4 minutes each here), so the runs are few.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 1500
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

kernel="$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)"
[ -n "$kernel" ] || skip "no /boot/vmlinuz-*"
vmrun=("$VFIOCTL" vm run --kernel "$kernel" --accel tcg --memory 256)

step "vm run with the e1000e: bound for the run, on L2's bus, given back"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e
# The command looks for 8086:10d3 on L2's bus and exits 0 only if it is there.
look='for d in /sys/bus/pci/devices/*; do
  if [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x8086:0x10d3 ]; then echo "found ${d##*/}"; exit 0; fi
done; exit 9'
run g "${vmrun[@]}" --boot-timeout 480 --gpu "$nic" -- sh -c "$look"
expect_rc "vm run --gpu $nic" 0
expect_text g "found 0000:"
expect_driver "$nic" e1000e
[ ! -s "$(journal_file)" ] || json_check "$(journal_file)" 'd["devices"] == []' "no journal entry left"
ok "nothing left in the journal"

step "vm run -- false"
run f "${vmrun[@]}" --boot-timeout 480 -- false
expect_rc "vm run -- false" 1

step "a kernel that panics: non-zero in bounded time, with the console tail"
start=$(date +%s)
run p "${vmrun[@]}" --append rdinit=/nonexistent --boot-timeout 300 -- true
took=$(($(date +%s) - start))
[ "$RC" != 0 ] || fail "vm run of a panicking kernel exited 0"
ok "vm run of a panicking kernel exits $RC"
expect_text p "last console lines"
expect_text p "Kernel panic"
[ "$took" -lt 360 ] || fail "the panic took ${took}s to be reported"
ok "the panic was reported after ${took}s"
