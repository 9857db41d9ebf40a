#!/bin/bash
# "vfioctl bind" moves the e1000e (alone in its IOMMU group) to vfio-pci,
# journaled and verified; "vfioctl unbind" gives it back to e1000e with its
# network interface. Twice is a no-op, --dry-run and bad input change
# nothing, an interface that is up with an address blocks the bind and a
# holder of /dev/vfio/N blocks the unbind unless --force, and a corrupt
# journal stops every change and is kept.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 300
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

step "kernel facts"
lone_e1000e
nic="$NIC" group="$GROUP"
iface="$(net_of "$nic")"
[ -n "$iface" ] || fail "$nic has no network interface"
[ "$(cat "/sys/bus/pci/devices/$nic/driver_override")" = "(null)" ] || fail "$nic has a driver_override already"
[ ! -e "$(journal_file)" ] || fail "a journal exists before the first bind"
[ ! -e /sys/module/vfio_pci ] || fail "vfio-pci is loaded before the first bind"
ok "$nic ($iface) alone in group $group, on e1000e, interface down, vfio-pci not loaded"
initial="$(device_state "$nic")"

step "bad input changes nothing"
run bad_bdf "$VFIOCTL" bind 00:zz.9
expect_rc "bind of a malformed address" 1 2
[ -s "$RESULTS/bad_bdf.err" ] || fail "no error message for a malformed address"
expect_unchanged "bind 00:zz.9" "$initial" "$nic"
run bad_word "$VFIOCTL" bind frobnicate
expect_rc "bind of a word" 1 2
expect_text bad_word frobnicate
expect_unchanged "bind frobnicate" "$initial" "$nic"
run unknown_bdf "$VFIOCTL" bind 0000:00:1f.7
expect_rc "bind of an address with no device" 1
expect_text unknown_bdf "0000:00:1f.7"
expect_text unknown_bdf "no PCI device"
expect_unchanged "bind 0000:00:1f.7" "$initial" "$nic"
run unknown_id "$VFIOCTL" bind 1234:5678
expect_rc "bind of an ID nothing has" 1
expect_text unknown_id "1234:5678"
expect_unchanged "bind 1234:5678" "$initial" "$nic"
run no_target "$VFIOCTL" bind
expect_rc "bind with no target" 1 2
expect_unchanged "bind with no target" "$initial" "$nic"
run unbind_neither "$VFIOCTL" unbind
expect_rc "unbind with neither a target nor --all" 2
expect_unchanged "unbind with no target" "$initial" "$nic"

step "bind --dry-run shows the plan and changes nothing"
run dry "$VFIOCTL" bind --dry-run "$nic"
expect_rc "bind --dry-run" 0
expect_text dry "e1000e -> vfio-pci"
expect_unchanged "bind --dry-run" "$initial" "$nic"
run dry_json "$VFIOCTL" bind --dry-run --json "$nic"
expect_rc "bind --dry-run --json" 0
json_check "$RESULTS/dry_json.out" \
    "d['dry_run'] is True and d['changed'] is False and [(p['address'], p['driver'], p['group']) for p in d['plan']] == [('$nic', 'e1000e', $group)]" \
    "the dry-run plan is $nic from e1000e in group $group"
expect_unchanged "bind --dry-run --json" "$initial" "$nic"

step "bind (short address form)"
short="${nic#0000:}"
t0=$EPOCHREALTIME
run bind "$VFIOCTL" bind "$short"
t1=$EPOCHREALTIME
expect_rc "vfioctl bind $short" 0
ok "bind took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms"
expect_driver "$nic" vfio-pci
[ -e /sys/module/vfio_pci ] || fail "vfio-pci is not loaded after bind"
ok "bind loaded vfio-pci"
[ -c "/dev/vfio/$group" ] || fail "/dev/vfio/$group is not a character device"
ok "/dev/vfio/$group exists"
[ -z "$(net_of "$nic")" ] || fail "$nic still has a network interface"
[ "$(cat "/sys/bus/pci/devices/$nic/driver_override")" = vfio-pci ] || fail "driver_override is not vfio-pci"
[ -f "$(journal_file)" ] || fail "no journal at $(journal_file)"
json_check "$(journal_file)" \
    "[(e['address'], e['original_driver'], e['original_override'], e['phase'], e['group']) for e in d['devices']] == [('$nic', 'e1000e', None, 'bound', $group)]" \
    "the journal records $nic: was e1000e, no override, bound, group $group"
run_quiet status_bound "$VFIOCTL" status --json
json_check "$RESULTS/status_bound.out" \
    "[(e['address'], e['original_driver'], e['phase']) for e in d['journal_pending']] == [('$nic', 'e1000e', 'bound')]" \
    "status --json lists $nic in journal_pending"
run_quiet status_text "$VFIOCTL" status
expect_text status_text "vfioctl unbind --all"
bound="$(device_state "$nic")"

step "bind again is a no-op"
run bind_again "$VFIOCTL" bind "$nic"
expect_rc "second vfioctl bind" 0
expect_text bind_again "already on vfio-pci"
expect_unchanged "the second bind" "$bound" "$nic"
run bind_again_json "$VFIOCTL" bind --json "$nic"
expect_rc "second vfioctl bind --json" 0
json_check "$RESULTS/bind_again_json.out" "all(c['changed'] is False for c in d['changes'])" "no change is reported"
expect_unchanged "the third bind" "$bound" "$nic"

step "unbind refuses while a process holds /dev/vfio/$group"
# This shell opens the group as QEMU does; vfioctl itself does not inherit it.
exec 8<>"/dev/vfio/$group" || fail "cannot open /dev/vfio/$group"
run held "$VFIOCTL" unbind "$nic" 8>&-
expect_rc "unbind while /dev/vfio/$group is held" 1
expect_text held "pid $$"
expect_unchanged "the refused unbind" "$bound" "$nic"
exec 8>&-

step "unbind gives the NIC back"
t0=$EPOCHREALTIME
run unbind "$VFIOCTL" unbind "$nic"
t1=$EPOCHREALTIME
expect_rc "vfioctl unbind $nic" 0
ok "unbind took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms"
expect_driver "$nic" e1000e
[ "$(net_of "$nic")" = "$iface" ] || fail "$nic's interface is '$(net_of "$nic")', expected $iface"
ok "interface $iface is back"
[ "$(cat "/sys/bus/pci/devices/$nic/driver_override")" = "(null)" ] || fail "driver_override is not cleared"
[ ! -e "$(journal_file)" ] || fail "the journal is still there after unbind"
ok "driver_override cleared, journal gone"
run_quiet status_free "$VFIOCTL" status --json
json_check "$RESULTS/status_free.out" "d['journal_pending'] == []" "status --json has no journal_pending"
expect_unchanged "bind then unbind" "$initial" "$nic"

run unbind_again "$VFIOCTL" unbind "$nic"
expect_rc "second vfioctl unbind" 0
expect_unchanged "the second unbind" "$initial" "$nic"
run recover_idle "$VFIOCTL" recover
expect_rc "vfioctl recover with no journal" 0
expect_unchanged "recover with no journal" "$initial" "$nic"

step "an interface that is up with an address blocks the bind"
iface_up "$iface" 192.0.2.10/24
up="$(device_state "$nic")"
run busy "$VFIOCTL" bind "$nic"
expect_rc "bind of a NIC in use" 1
expect_text busy "$iface"
expect_text busy "--force"
expect_unchanged "the refused bind" "$up" "$nic"
run busy_json "$VFIOCTL" bind --json "$nic"
expect_rc "bind --json of a NIC in use" 1
json_check "$RESULTS/busy_json.out" "d['changed'] is False and '$iface' in text(d['blockers'])" \
    "the JSON names $iface among the blockers"
expect_unchanged "the refused bind (--json)" "$up" "$nic"

run forced "$VFIOCTL" bind --force "$nic"
expect_rc "bind --force" 0
expect_driver "$nic" vfio-pci
[ -c "/dev/vfio/$group" ] || fail "/dev/vfio/$group is missing after bind --force"
exec 8<>"/dev/vfio/$group" || fail "cannot open /dev/vfio/$group"
run forced_back "$VFIOCTL" unbind --all --force 8>&-
exec 8>&-
expect_rc "unbind --all --force while /dev/vfio/$group is held" 0
expect_driver "$nic" e1000e
[ "$(net_of "$nic")" = "$iface" ] || fail "$nic's interface is '$(net_of "$nic")', expected $iface"
[ ! -e "$(journal_file)" ] || fail "the journal is still there after unbind --all --force"
ok "bind --force took it, unbind --all --force took it back from a holder of /dev/vfio/$group, with $iface"

step "a corrupt journal stops every change and is kept"
printf '{"format": 1, "devices": [{"address": "%s", "gro' "$nic" >"$(journal_file)"
corrupt_sum="$(sha256sum <"$(journal_file)")"
corrupt="$(device_state "$nic")"
run corrupt_recover "$VFIOCTL" recover
expect_rc "recover with a truncated journal" 1
expect_text corrupt_recover "journal"
expect_text corrupt_recover "$(journal_file)"
run corrupt_bind "$VFIOCTL" bind "$nic"
expect_rc "bind with a truncated journal" 1
expect_text corrupt_bind "journal"
run corrupt_unbind "$VFIOCTL" unbind --all
expect_rc "unbind --all with a truncated journal" 1
expect_unchanged "every command on a truncated journal" "$corrupt" "$nic"
[ "$(sha256sum <"$(journal_file)")" = "$corrupt_sum" ] || fail "the truncated journal was modified"
ok "the truncated journal is kept as it was"
rm -f "$(journal_file)"
