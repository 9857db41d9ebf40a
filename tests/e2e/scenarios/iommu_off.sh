#!/bin/bash
# The user's host: the firmware has an IOMMU (ACPI DMAR) but the kernel runs
# with intel_iommu=off. No IOMMU groups exist, QEMU cannot take a device
# ("no iommu_group found"), and vfioctl must say why and what fixes it.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-qemu: -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=04.0
# e2e-qemu: -device secondary-vga,bus=rp1
# e2e-append: intel_iommu=off iommu=pt
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

step "kernel facts"
grep -qw intel_iommu=off /proc/cmdline || fail "intel_iommu=off is not on the kernel command line"
[ -e /sys/firmware/acpi/tables/DMAR ] || fail "no ACPI DMAR table"
[ "$(group_count)" = 0 ] || fail "the kernel has $(group_count) IOMMU groups"
nic="$(pci_find 8086 10d3)"
gpu="$(pci_find_class 03)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
[ -n "$gpu" ] || fail "no display-class device"
ok "DMAR present, no IOMMU groups, e1000e at $nic, stand-in GPU at $gpu"

step "QEMU with the NIC assigned fails as on the user's host"
load_vfio
l2_qemu qemu_vfio -device "vfio-pci,host=$nic"
[ "$RC" != 0 ] || fail "QEMU started with vfio-pci,host=$nic although the IOMMU is off"
message="$(cat "$RESULTS/qemu_vfio.err" "$RESULTS/qemu_vfio.out" | grep -m1 'no iommu_group found')"
[ -n "$message" ] || fail "QEMU failed without 'no iommu_group found'"
ok "QEMU says: $message"

step "vfioctl status"
run status "$VFIOCTL" status
expect_rc "vfioctl status" 3
expect_text status intel_iommu=off
expect_text status "vfioctl iommu enable"

run status_json "$VFIOCTL" status --json
expect_rc "vfioctl status --json" 3
j="$RESULTS/status_json.out"
schema_check "$j" status
json_check "$j" 'd["iommu"]["platform"] == "intel"' "platform is intel"
json_check "$j" 'd["iommu"]["acpi_table"] == "DMAR"' "ACPI table is DMAR"
json_check "$j" 'd["iommu"]["enabled"] is False' "IOMMU is not enabled"
json_check "$j" 'd["iommu"]["group_count"] == 0' "no groups"
json_check "$j" 'd["kvm"]["accelerator"] in ("kvm", "tcg")' "accelerator is kvm or tcg"
json_check "$j" 'd["verdict"] != "will_work"' "overall verdict is not will_work"
json_check "$j" "gpu('$gpu') is not None" "the stand-in GPU $gpu is listed"
json_check "$j" "gpu('$gpu')['verdict'] != 'will_work'" "the GPU's verdict is not will_work"
json_check "$j" "'intel_iommu=off' in text(gpu('$gpu')['causes'])" "the GPU's causes name intel_iommu=off"
json_check "$j" "'vfioctl iommu enable' in text(gpu('$gpu')['steps'])" "the GPU's steps name vfioctl iommu enable"

step "vfioctl groups"
run groups "$VFIOCTL" groups --json
expect_rc "vfioctl groups --json" 0 3
json_check "$RESULTS/groups.out" 'd["groups"] == []' "no groups reported"

step "vfioctl explain"
run explain "$VFIOCTL" explain "$message"
expect_rc "vfioctl explain" 0
expect_text explain intel_iommu=off
run explain_unknown "$VFIOCTL" explain "qemu-system-x86_64: the frobnicator is out of flux"
expect_rc "vfioctl explain (unknown text)" 1
