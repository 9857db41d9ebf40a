#!/bin/bash
# An Intel host whose firmware has the IOMMU (VT-d) switched off: no DMAR
# table, no units, no groups, whatever the kernel command line says. Only a
# firmware setting fixes it, and vfioctl must say so.
# e2e-qemu: -cpu max,vendor=GenuineIntel
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-qemu: -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=04.0
# e2e-qemu: -device secondary-vga,bus=rp1
# e2e-append: intel_iommu=on iommu=pt
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

step "kernel facts"
grep -q GenuineIntel /proc/cpuinfo || fail "the CPU is not GenuineIntel"
[ ! -e /sys/firmware/acpi/tables/DMAR ] || fail "an ACPI DMAR table exists"
[ ! -e /sys/firmware/acpi/tables/IVRS ] || fail "an ACPI IVRS table exists"
[ -z "$(ls /sys/class/iommu 2>/dev/null)" ] || fail "IOMMU units exist: $(ls /sys/class/iommu)"
[ "$(group_count)" = 0 ] || fail "the kernel has IOMMU groups"
gpu="$(pci_find_class 03)"
[ -n "$gpu" ] || fail "no display-class device"
ok "no DMAR, no IVRS, no units, no groups; stand-in GPU at $gpu"

step "vfioctl status"
run status "$VFIOCTL" status
expect_rc "vfioctl status" 3
expect_text status VT-d
run status_json "$VFIOCTL" status --json
expect_rc "vfioctl status --json" 3
j="$RESULTS/status_json.out"
json_check "$j" 'd["iommu"]["platform"] == "none"' "platform is none"
json_check "$j" 'd["iommu"]["acpi_table"] is None' "no ACPI table"
json_check "$j" 'd["iommu"]["enabled"] is False' "IOMMU is not enabled"
json_check "$j" 'd["iommu"]["group_count"] == 0' "no groups"
json_check "$j" "gpu('$gpu') is not None and gpu('$gpu')['verdict'] != 'will_work'" "the GPU's verdict is not will_work"
json_check "$j" "'VT-d' in text(gpu('$gpu'))" "the GPU's causes or steps name VT-d"
