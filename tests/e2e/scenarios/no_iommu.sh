#!/bin/bash
# A VM whose hypervisor gives it no virtual IOMMU, as most cloud VMs with a
# GPU are: no DMAR table, no units, no groups, whatever the kernel command
# line says. The CPU's hypervisor flag and DMI ("QEMU") say it is a VM, so
# vfioctl must name the VM's settings (QEMU's intel-iommu), never a firmware
# setup, and its summary must say passthrough works after those steps. (The
# bare-metal case, VT-d off in the firmware, is the unit tests'.)
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
expect_text status "running as a guest of QEMU/KVM"
expect_text status "intel-iommu,intremap=on,caching-mode=on"
if grep -aqF "BIOS/UEFI" "$RESULTS/status.out"; then
    fail "status sends a VM's user to a firmware setup"
fi
ok "status does not send a VM's user to a firmware setup"
run status_json "$VFIOCTL" status --json
expect_rc "vfioctl status --json" 3
j="$RESULTS/status_json.out"
json_check "$j" 'd["iommu"]["platform"] == "none"' "platform is none"
json_check "$j" 'd["iommu"]["acpi_table"] is None' "no ACPI table"
json_check "$j" 'd["iommu"]["enabled"] is False' "IOMMU is not enabled"
json_check "$j" 'd["iommu"]["group_count"] == 0' "no groups"
json_check "$j" "gpu('$gpu') is not None and gpu('$gpu')['verdict'] != 'will_work'" "the GPU's verdict is not will_work"
json_check "$j" 'd["machine"]["guest"] is True and d["machine"]["hypervisor"] == "qemu_kvm"' "a QEMU/KVM guest"
json_check "$j" 'd["machine"]["dmi_sys_vendor"] == "QEMU"' "DMI names QEMU"
json_check "$j" "'virtual machine (QEMU/KVM)' in text(gpu('$gpu')['causes'])" "the cause is the VM's missing virtual IOMMU"
json_check "$j" "'VT-d' not in text(gpu('$gpu'))" "no VT-d firmware step for a VM"
json_check "$j" "any('intel-iommu' in s for s in gpu('$gpu')['steps'])" "a step names QEMU's intel-iommu"
json_check "$j" "[r['after'] for r in d['summary'] if r['feature'] == 'VM GPU passthrough'] == ['Works']" "the summary says passthrough works after the steps"
