#!/bin/bash
# Records the snapshot fixture "iommu-off": the user's host, an ACPI DMAR
# table but intel_iommu=off iommu=pt, so no groups; a NIC and a stand-in GPU.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-qemu: -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=04.0
# e2e-qemu: -device secondary-vga,bus=rp1
# e2e-append: intel_iommu=off iommu=pt
. "$E2E_LIB/scenario.sh"

run snapshot "$VFIOCTL" snapshot "$RESULTS/snap"
expect_rc "vfioctl snapshot" 0
"$VFIOCTL" status --json >"$RESULTS/status.json"
echo "status --json exits $?"
