#!/bin/bash
# An AMD host: QEMU's amd-iommu gives an ACPI IVRS table and unit ivhd0, and
# the stand-in GPU on its own port can be passed through. vfioctl must report
# the AMD platform from the tables and units that exist.
# e2e-qemu: -device amd-iommu
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-qemu: -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=04.0
# e2e-qemu: -device secondary-vga,bus=rp1
# e2e-append: iommu=pt
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

step "kernel facts"
gpu="$(pci_find_class 03)"
[ -n "$gpu" ] || fail "no display-class device"
[ -e /sys/firmware/acpi/tables/IVRS ] || fail "no ACPI IVRS table"
[ ! -e /sys/firmware/acpi/tables/DMAR ] || fail "an ACPI DMAR table exists"
[ -e /sys/class/iommu/ivhd0 ] || fail "no IOMMU unit ivhd0"
groups="$(group_count)"
[ "$groups" -gt 0 ] || fail "no IOMMU groups"
ok "IVRS, ivhd0, $groups groups"

step "vfioctl status"
run status_json "$VFIOCTL" status --json
expect_rc "vfioctl status --json" 0
j="$RESULTS/status_json.out"
json_check "$j" 'd["iommu"]["platform"] == "amd"' "platform is amd"
json_check "$j" 'd["iommu"]["acpi_table"] == "IVRS"' "ACPI table is IVRS"
json_check "$j" 'd["iommu"]["enabled"] is True' "IOMMU is enabled"
json_check "$j" "d['iommu']['group_count'] == $groups" "group count is $groups"
json_check "$j" 'd["iommu"]["default_domain"] == "identity"' "default domain is identity"
json_check "$j" "gpu('$gpu')['verdict'] == 'will_work'" "the GPU's verdict is will_work"
