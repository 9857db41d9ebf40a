#!/bin/bash
# Where / lives decides what bind may touch, and what cannot be known is
# refused. L1's root is an overlay whose lower layer is the host root over
# virtio-9p (tag hostroot) mounted outside L1's view: the 9p device is the
# root filesystem's, refused even with --force. Then, in a private mount
# namespace where vfioctl's /proc/self/mountinfo is an empty file (and then
# garbage), nothing says where / lives: every device that may hold it (the
# virtio-9p devices, class 0002, not storage) is refused as unknown_root,
# --force included; a NIC, which cannot hold /, still plans a bind.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 300
# e2e-requires: python3 unshare mount
. "$E2E_LIB/scenario.sh"

# hidden_mountinfo FILE CMD...: runs CMD in a private mount namespace where
# its own /proc/self/mountinfo shows FILE. The shell bind-mounts FILE over
# /proc/<its pid>/mountinfo and then execs CMD, which keeps the pid.
hidden_mountinfo() {
    local file="$1"
    shift
    unshare --mount --propagation private -- sh -c \
        'mount --bind "$0" "/proc/$$/mountinfo" || exit 99; exec "$@"' "$file" "$@"
}

step "kernel facts"
root_dev="$(tag_device hostroot)"
results_dev="$(tag_device results)"
[ -n "$root_dev" ] || fail "no virtio-9p device with tag hostroot"
[ -n "$results_dev" ] || fail "no virtio-9p device with tag results"
[ "$(awk '$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }' /proc/self/mountinfo)" = overlay ] ||
    fail "L1's root is not an overlay: $(grep ' / / ' /proc/self/mountinfo)"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e
all="$root_dev $results_dev $nic"
before="$(device_state $all)"
ok "root overlay over 9p $root_dev, results on $results_dev, e1000e $nic"

step "an overlay root: its 9p layer is the root filesystem's device, even with --force"
run overlay "$VFIOCTL" bind --json --force "$root_dev"
expect_rc "bind --force of the overlay root's 9p device" 1
json_check "$RESULTS/overlay.out" \
    "d['changed'] is False and [r['kind'] for r in d['refused'] if r['address'] == '$root_dev'] == ['root_filesystem']" \
    "refused as root_filesystem"
expect_unchanged "the refused bind" "$before" $all

step "mountinfo hidden (an empty file): unknown_root, even with --force"
: >"$RESULTS/empty-mountinfo"
run hidden_probe hidden_mountinfo "$RESULTS/empty-mountinfo" cat /proc/self/mountinfo
expect_rc "reading the hidden mountinfo" 0
[ ! -s "$RESULTS/hidden_probe.out" ] || fail "the command still sees a mount table: $(head -3 "$RESULTS/hidden_probe.out")"
ok "a command in the namespace reads an empty /proc/self/mountinfo"
for dev in "$root_dev" "$results_dev"; do
    run "hidden_$dev" hidden_mountinfo "$RESULTS/empty-mountinfo" "$VFIOCTL" bind --json --force "$dev"
    expect_rc "bind --force of $dev with mountinfo hidden" 1
    json_check "$RESULTS/hidden_$dev.out" \
        "d['changed'] is False and [r['kind'] for r in d['refused'] if r['address'] == '$dev'] == ['unknown_root'] and 'findmnt /' in text(d['refused'])" \
        "$dev refused as unknown_root, with how to check by hand"
done
expect_unchanged "the refused binds" "$before" $all
run hidden_status hidden_mountinfo "$RESULTS/empty-mountinfo" "$VFIOCTL" status
expect_text hidden_status "/proc/self/mountinfo is empty"
run hidden_nic hidden_mountinfo "$RESULTS/empty-mountinfo" "$VFIOCTL" bind --json --dry-run "$nic"
expect_rc "bind --dry-run of the NIC with mountinfo hidden" 0
json_check "$RESULTS/hidden_nic.out" "d['changed'] is False and not d['refused']" "the NIC, which cannot hold /, is not refused"

step "mountinfo garbage: unknown_root, even with --force"
printf 'this is not\001 a mount table\n\n42\n' >"$RESULTS/garbage-mountinfo"
run garbage hidden_mountinfo "$RESULTS/garbage-mountinfo" "$VFIOCTL" bind --json --force "$root_dev"
expect_rc "bind --force of the root's device with garbage mountinfo" 1
json_check "$RESULTS/garbage.out" \
    "d['changed'] is False and [r['kind'] for r in d['refused'] if r['address'] == '$root_dev'] == ['unknown_root']" \
    "refused as unknown_root"
expect_unchanged "every refused bind" "$before" $all
ls /usr/bin >/dev/null || fail "the root filesystem is gone"
ok "the root filesystem still answers"
