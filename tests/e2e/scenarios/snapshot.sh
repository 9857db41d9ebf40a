#!/bin/bash
# "vfioctl snapshot" records a host so that "vfioctl --root SNAPSHOT status"
# elsewhere gives the same answer: recorded inside L1, replayed on the host.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-qemu: -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=04.0
# e2e-qemu: -device secondary-vga,bus=rp1
# e2e-qemu: -device pcie-pci-bridge,id=br1,addr=05.0
# e2e-qemu: -device e1000,bus=br1,addr=1,romfile=
# e2e-append: intel_iommu=on iommu=pt
# e2e-requires: python3
# e2e-host-check: yes
. "$E2E_LIB/scenario.sh"

if [ "$E2E_PHASE" = guest ]; then
    step "record inside L1"
    run snapshot "$VFIOCTL" snapshot "$RESULTS/snap"
    expect_rc "vfioctl snapshot" 0
    [ -d "$RESULTS/snap" ] || fail "no snapshot directory"
    "$VFIOCTL" status --json >"$RESULTS/inside.json" 2>"$RESULTS/inside.err"
    echo $? >"$RESULTS/inside.rc"
    ok "status inside L1 exits $(cat "$RESULTS/inside.rc")"
    python3 "$E2E_LIB/jsoncheck.py" check "$RESULTS/inside.json" 'd["iommu"]["group_count"] > 0' ||
        fail "status inside L1 shows no groups"
    exit 0
fi

step "replay on the host"
"$VFIOCTL" --root "$RESULTS/snap" status --json >"$RESULTS/outside.json" 2>"$RESULTS/outside.err"
outside_rc=$?
[ -s "$RESULTS/outside.err" ] && sed 's/^/stderr: /' "$RESULTS/outside.err"
[ "$outside_rc" = "$(cat "$RESULTS/inside.rc")" ] ||
    fail "exit status $outside_rc on the snapshot, $(cat "$RESULTS/inside.rc") inside L1"
ok "same exit status ($outside_rc)"
# Free memory per NUMA node is read at two moments (the snapshot, then
# status inside); it is the one fact that may move between them.
python3 "$E2E_LIB/jsoncheck.py" same "$RESULTS/inside.json" "$RESULTS/outside.json" \
    '^\$\.numa\.nodes\[[0-9]+\]\.mem_free_kib$' ||
    fail "status --json on the snapshot differs from inside L1 (left: inside, right: snapshot)"
ok "status --json on the snapshot equals status --json inside L1"
