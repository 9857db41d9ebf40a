#!/bin/bash
# After "vfioctl iommu enable" and a reboot: intel_iommu=on iommu=pt. Groups
# exist with identity default domains, the NIC and the stand-in GPU (each on
# its own port) are alone in their groups, vfio-pci takes the NIC and an L2
# QEMU is given it.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-qemu: -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=04.0
# e2e-qemu: -device secondary-vga,bus=rp1
# e2e-append: intel_iommu=on iommu=pt
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

step "kernel facts"
groups="$(group_count)"
[ "$groups" -gt 0 ] || fail "no IOMMU groups with intel_iommu=on"
nic="$(pci_find 8086 10d3)"
gpu="$(pci_find_class 03)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
[ -n "$gpu" ] || fail "no display-class device"
nic_group="$(iommu_group_of "$nic")"
gpu_group="$(iommu_group_of "$gpu")"
[ -n "$nic_group" ] || fail "$nic has no IOMMU group"
[ -n "$gpu_group" ] || fail "$gpu has no IOMMU group"
[ "$(ls "/sys/kernel/iommu_groups/$nic_group/devices")" = "$nic" ] || fail "$nic is not alone in group $nic_group"
[ "$(ls "/sys/kernel/iommu_groups/$gpu_group/devices")" = "$gpu" ] || fail "$gpu is not alone in group $gpu_group"
[ "$(cat "/sys/kernel/iommu_groups/$nic_group/type")" = identity ] || fail "group $nic_group is not identity"
ok "$groups groups; $nic alone in group $nic_group, $gpu alone in group $gpu_group, identity"

step "vfioctl groups"
run groups "$VFIOCTL" groups --json
expect_rc "vfioctl groups --json" 0
j="$RESULTS/groups.out"
schema_check "$j" groups
json_check "$j" "len(d['groups']) == $groups" "$groups groups reported"
json_check "$j" "group_of('$nic')['number'] == $nic_group" "$nic is in group $nic_group"
json_check "$j" "addresses(group_of('$nic')) == ['$nic']" "$nic is alone in its group"
json_check "$j" "group_of('$nic')['viable'] is True" "the NIC's group is viable"
json_check "$j" "group_of('$nic')['type'] == 'identity'" "the NIC's group type is identity"
json_check "$j" "group_of('$nic')['devices'][0]['id'] == '8086:10d3'" "the NIC's id is 8086:10d3"
json_check "$j" "addresses(group_of('$gpu')) == ['$gpu']" "$gpu is alone in its group"
json_check "$j" "'gpu' in group_of('$gpu')['devices'][0]['flags']" "$gpu is flagged gpu"

step "vfioctl status"
run status "$VFIOCTL" status
expect_rc "vfioctl status" 0
run status_json "$VFIOCTL" status --json
expect_rc "vfioctl status --json" 0
j="$RESULTS/status_json.out"
schema_check "$j" status
json_check "$j" 'd["iommu"]["platform"] == "intel"' "platform is intel"
json_check "$j" 'd["iommu"]["acpi_table"] == "DMAR"' "ACPI table is DMAR"
json_check "$j" 'd["iommu"]["enabled"] is True' "IOMMU is enabled"
json_check "$j" "d['iommu']['group_count'] == $groups" "group count is $groups"
json_check "$j" 'd["iommu"]["default_domain"] == "identity"' "default domain is identity"
json_check "$j" 'd["kvm"]["accelerator"] == "tcg"' "accelerator is tcg (L1 has no /dev/kvm)"
json_check "$j" "gpu('$gpu')['verdict'] == 'will_work'" "the GPU's verdict is will_work"
json_check "$j" 'd["verdict"] == "will_work"' "overall verdict is will_work"

step "vfio-pci takes the NIC and QEMU is given it"
load_vfio
echo vfio-pci >"/sys/bus/pci/devices/$nic/driver_override"
echo "$nic" >/sys/bus/pci/drivers_probe
driver="$(basename "$(readlink "/sys/bus/pci/devices/$nic/driver")")"
[ "$driver" = vfio-pci ] || fail "$nic is bound to '$driver', not vfio-pci"
[ -c "/dev/vfio/$nic_group" ] || fail "/dev/vfio/$nic_group is missing"
ok "$nic bound to vfio-pci, /dev/vfio/$nic_group exists"
l2_qemu qemu_vfio -device "vfio-pci,host=$nic"
expect_rc "L2 QEMU with vfio-pci,host=$nic" 0
qmp_lists_pci "$RESULTS/qemu_vfio.out" 8086 10d3 ||
    fail "L2 QEMU's query-pci does not list 8086:10d3"
ok "L2 QEMU's query-pci lists 8086:10d3"
