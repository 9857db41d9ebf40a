#!/bin/bash
# Two NICs behind a PCIe-to-PCI bridge share one IOMMU group with the bridge:
# neither can be assigned alone, and vfioctl must say so.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device pcie-pci-bridge,id=br1,addr=05.0
# e2e-qemu: -device e1000,bus=br1,addr=1,romfile=
# e2e-qemu: -device e1000,bus=br1,addr=2,romfile=
# e2e-append: intel_iommu=on iommu=pt
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
modprobe e1000 || fail "modprobe e1000 failed"
for dev in "$a" "$b"; do
    [ "$(basename "$(readlink "/sys/bus/pci/devices/$dev/driver")")" = e1000 ] || fail "$dev is not driven by e1000"
done
ok "$a and $b share group $group: $(cd "/sys/kernel/iommu_groups/$group/devices" && echo *)"

step "vfioctl groups"
run groups "$VFIOCTL" groups --json
expect_rc "vfioctl groups --json" 0
j="$RESULTS/groups.out"
json_check "$j" "group_of('$a') is not None and group_of('$a')['number'] == $group" "$a is in group $group"
json_check "$j" "group_of('$a') == group_of('$b')" "$a and $b are in the same group"
json_check "$j" "len(addresses(group_of('$a'))) >= 3" "the group also holds the bridge"
json_check "$j" "group_of('$a')['viable'] is False or '$b' in text({k: v for k, v in group_of('$a').items() if k != 'devices'})" \
    "the group is not viable, or it says that $b must go along with $a"
json_check "$j" "any('bridge' in dev['flags'] for dev in group_of('$a')['devices'])" "a member is flagged bridge"
json_check "$j" "all(dev['driver'] == 'e1000' for dev in group_of('$a')['devices'] if dev['address'] in ('$a', '$b'))" "both NICs show driver e1000"
