#!/bin/bash
# Host-critical devices are refused and nothing changes: the virtio-9p
# device under the root filesystem (never, not even with --force), the NIC
# carrying the default route, and a virtio-9p device with a mounted
# filesystem (in use).
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 300
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

step "kernel facts"
root_dev="$(tag_device hostroot)"
results_dev="$(tag_device results)"
[ -n "$root_dev" ] || fail "no virtio-9p device with tag hostroot"
[ -n "$results_dev" ] || fail "no virtio-9p device with tag results"
expect_driver "$root_dev" virtio-pci
expect_driver "$results_dev" virtio-pci
[ -n "$(iommu_group_of "$root_dev")" ] || fail "$root_dev has no IOMMU group"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e
iface="$(net_of "$nic")"
ok "root filesystem on $root_dev (9p hostroot), results on $results_dev, e1000e $nic ($iface)"

# refused NAME WHAT TEXT ARGS...: vfioctl bind ARGS exits 1, names TEXT,
# and changes nothing on any of the devices.
refused() {
    local name="$1" what="$2" text="$3" before
    shift 3
    before="$(device_state "$root_dev" "$results_dev" "$nic")"
    run "$name" "$VFIOCTL" bind "$@"
    expect_rc "$what" 1
    expect_text "$name" "$text"
    expect_unchanged "$what" "$before" "$root_dev" "$results_dev" "$nic"
}

step "the root filesystem's device is refused, even with --force"
# The dry run comes first, and --force only once the plan shows a refusal
# (never overridable), not a blocker: a bind that went ahead would take the
# guest's root.
refused root_dry "bind --dry-run of the root filesystem's device" "root filesystem" --dry-run --json "$root_dev"
json_check "$RESULTS/root_dry.out" "d['changed'] is False and 'root filesystem' in text(d['refusals']) and 'root filesystem' not in text(d['blockers'])" \
    "the root filesystem is a refusal, not a blocker"
refused root_force "bind --force of the root filesystem's device" "root filesystem" --force "$root_dev"
ls /usr/bin >/dev/null || fail "the root filesystem is gone"
ok "the root filesystem still answers"

step "a device with a mounted filesystem is in use"
refused results_dry "bind --dry-run of a device with a mounted filesystem" "$RESULTS" --dry-run "$results_dev"
expect_text results_dry "--force"
refused results "bind of a device with a mounted filesystem" "$RESULTS" "$results_dev"

step "the NIC carrying the default route is refused"
iface_up "$iface" 192.0.2.10/24
ip route add default via 192.0.2.1 dev "$iface" || fail "ip route add default failed"
grep -q "^${iface}[[:space:]]*00000000" /proc/net/route || fail "no default route via $iface in /proc/net/route"
ok "default route via $iface"
refused route_dry "bind --dry-run of the default-route NIC" "default route" --dry-run "$nic"
refused route "bind of the default-route NIC" "default route" "$nic"
expect_text route "$iface"
run route_json "$VFIOCTL" bind --json "$nic"
expect_rc "bind --json of the default-route NIC" 1
json_check "$RESULTS/route_json.out" "d['changed'] is False and 'default route via $iface' in text(d['blockers'] + d['refusals'])" \
    "the JSON names the default route via $iface"
[ "$(cat "/sys/class/net/$iface/operstate")" = up ] || fail "$iface is no longer up"
ok "$iface is still up"

step "a bind that includes the root filesystem's device is refused as a whole, even with --force"
refused mixed "bind of the NIC together with the root filesystem's device" "root filesystem" --force "$nic" "$root_dev"
