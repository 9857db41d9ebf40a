#!/bin/bash
# Records the snapshot fixture "iommu-on": Intel IOMMU enabled (identity
# domains), a NIC and a stand-in GPU each alone in a group, two NICs sharing
# a group behind a PCIe-to-PCI bridge.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-qemu: -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=04.0
# e2e-qemu: -device secondary-vga,bus=rp1
# e2e-qemu: -device pcie-pci-bridge,id=br1,addr=05.0
# e2e-qemu: -device e1000,bus=br1,addr=1,romfile=
# e2e-qemu: -device e1000,bus=br1,addr=2,romfile=
# e2e-append: intel_iommu=on iommu=pt
. "$E2E_LIB/scenario.sh"

run snapshot "$VFIOCTL" snapshot "$RESULTS/snap"
expect_rc "vfioctl snapshot" 0
"$VFIOCTL" status --json >"$RESULTS/status.json"
echo "status --json exits $?"
