#!/bin/bash
# A non-isolated group: two e1000 NICs behind a PCIe-to-PCI bridge share one
# IOMMU group with it. Binding one moves both NICs to vfio-pci and leaves the
# bridge alone; giving one back returns both to e1000.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device pcie-pci-bridge,id=br1,addr=05.0
# e2e-qemu: -device e1000,bus=br1,addr=1,romfile=
# e2e-qemu: -device e1000,bus=br1,addr=2,romfile=
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 300
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

step "kernel facts"
read -r a b rest <<<"$(pci_find 8086 100e | tr '\n' ' ')"
if [ -z "$a" ] || [ -z "$b" ]; then
    fail "expected two e1000 (8086:100e), found '$a' '$b'"
fi
group="$(iommu_group_of "$a")"
[ -n "$group" ] || fail "$a has no IOMMU group"
[ "$(iommu_group_of "$b")" = "$group" ] || fail "$a and $b are in different groups"
bridge=
for m in "/sys/kernel/iommu_groups/$group/devices"/*; do
    m="$(basename "$m")"
    [ "$m" = "$a" ] || [ "$m" = "$b" ] || bridge="$bridge $m"
done
bridge="${bridge# }"
[ -n "$bridge" ] || fail "group $group holds no bridge"
case "$(cat "/sys/bus/pci/devices/$bridge/class")" in 0x0604*) ;; *) fail "$bridge is not a PCI bridge" ;; esac
modprobe e1000 || fail "modprobe e1000 failed"
expect_driver "$a" e1000
expect_driver "$b" e1000
ia="$(net_of "$a")" ib="$(net_of "$b")"
if [ -z "$ia" ] || [ -z "$ib" ]; then
    fail "the NICs have no interfaces ('$ia', '$ib')"
fi
ok "group $group: $a ($ia), $b ($ib), bridge $bridge (driver $(driver_of "$bridge"))"
initial="$(device_state "$a" "$b" "$bridge")"
bridge_before="$(device_state "$bridge" | head -n1)"

step "the plan names both NICs and not the bridge"
run dry "$VFIOCTL" bind --dry-run --json "$a"
expect_rc "bind --dry-run --json $a" 0
json_check "$RESULTS/dry.out" "sorted(p['address'] for p in d['plan']) == sorted(['$a', '$b'])" "the plan is $a and $b"
json_check "$RESULTS/dry.out" "[p['target'] for p in sorted(d['plan'], key=lambda p: p['address'])] == [True, False]" \
    "$a is the target, $b comes along as its group mate"
run dry_text "$VFIOCTL" bind --dry-run "$a"
expect_text dry_text "same group"
expect_unchanged "bind --dry-run" "$initial" "$a" "$b" "$bridge"

step "bind one NIC moves the whole group"
run bind "$VFIOCTL" bind "$a"
expect_rc "vfioctl bind $a" 0
expect_driver "$a" vfio-pci
expect_driver "$b" vfio-pci
[ "$(device_state "$bridge" | head -n1)" = "$bridge_before" ] || fail "the bridge changed: $(device_state "$bridge" | head -n1)"
ok "the bridge $bridge is untouched"
[ -c "/dev/vfio/$group" ] || fail "/dev/vfio/$group is missing"
ok "/dev/vfio/$group exists"
json_check "$(journal_file)" \
    "sorted((e['address'], e['original_driver'], e['phase']) for e in d['devices']) == sorted([('$a', 'e1000', 'bound'), ('$b', 'e1000', 'bound')])" \
    "the journal holds both NICs, from e1000"

step "binding the other member is a no-op"
bound="$(device_state "$a" "$b" "$bridge")"
run bind_b "$VFIOCTL" bind "$b"
expect_rc "vfioctl bind $b" 0
expect_unchanged "bind of the group mate" "$bound" "$a" "$b" "$bridge"

step "give back one NIC: the whole group returns"
run unbind "$VFIOCTL" unbind "$b"
expect_rc "vfioctl unbind $b" 0
expect_driver "$a" e1000
expect_driver "$b" e1000
if [ "$(net_of "$a")" != "$ia" ] || [ "$(net_of "$b")" != "$ib" ]; then
    fail "interfaces are '$(net_of "$a")' and '$(net_of "$b")', expected $ia and $ib"
fi
ok "interfaces $ia and $ib are back"
[ ! -e "$(journal_file)" ] || fail "the journal is still there"
expect_unchanged "bind then unbind of the group" "$initial" "$a" "$b" "$bridge"

step "by vendor:device, every match, and back with --all"
run bind_id "$VFIOCTL" bind 8086:100e
expect_rc "vfioctl bind 8086:100e" 0
expect_driver "$a" vfio-pci
expect_driver "$b" vfio-pci
run unbind_all "$VFIOCTL" unbind --all
expect_rc "vfioctl unbind --all" 0
expect_unchanged "bind 8086:100e then unbind --all" "$initial" "$a" "$b" "$bridge"
