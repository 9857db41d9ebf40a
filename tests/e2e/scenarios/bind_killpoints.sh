#!/bin/bash
# SIGKILL at every step of "vfioctl bind" and "vfioctl unbind" on the real
# kernel, then "vfioctl recover" gives the NIC back to e1000e. One run under
# strace counts the command's writes, renames and unlinks of the journal and
# of the sysfs driver files; then, for each of them, strace kills the command
# on entry to that call (before it runs). So every journal update and every
# kernel write of a bind and of an unbind is a kill point.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 360
# e2e-requires: python3 strace
. "$E2E_LIB/scenario.sh"

step "kernel facts"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
modprobe vfio-pci || fail "modprobe vfio-pci failed"
expect_driver "$nic" e1000e
[ -n "$(net_of "$nic")" ] || fail "$nic has no network interface"
journal="$(journal_file)"
initial="$(device_state "$nic")"

# The files a bind or an unbind changes. The journal's directory too: the
# journal is renamed into place with renameat() relative to that directory,
# and strace matches such a call only by its directory descriptor.
paths=(
    -P "$journal" -P "$(dirname "$journal")/.journal.json.tmp" -P "$(dirname "$journal")"
    -P "/sys/bus/pci/devices/$nic/driver_override" -P /sys/bus/pci/drivers_probe
    -P /sys/bus/pci/drivers/e1000e/unbind -P /sys/bus/pci/drivers/e1000e/bind
    -P /sys/bus/pci/drivers/vfio-pci/unbind -P /sys/bus/pci/drivers/vfio-pci/bind
)

# killed_at NAME SYSCALLS N CMD...: runs vfioctl CMD under strace, killed on
# entry to its Nth call of SYSCALLS on those files; RC is 137 when it was.
killed_at() {
    local name="$1" calls="$2" n="$3"
    shift 3
    strace -f -qq -o "$RESULTS/$name.strace" "${paths[@]}" -e trace="$calls" \
        -e inject="$calls:signal=KILL:when=$n" "$VFIOCTL" "$@" >"$RESULTS/$name.out" 2>"$RESULTS/$name.err"
    RC=$?
}

# recovered NAME: vfioctl recover brings the NIC back to where it started.
recovered() {
    "$VFIOCTL" recover >"$RESULTS/$1.recover.out" 2>"$RESULTS/$1.recover.err" ||
        fail "$1: vfioctl recover failed: $(cat "$RESULTS/$1.recover.err")"
    expect_unchanged "$1, then recover," "$initial" "$nic"
}

# what_was_left: the state a killed command left, for the log.
what_was_left() {
    local phase=none
    [ -e "$journal" ] && phase="$(sed -n 's/.*"phase": "\([a-z]*\)".*/\1/p' "$journal" | tr '\n' ' ')"
    echo "driver=$(driver_of "$nic") override=$(cat "/sys/bus/pci/devices/$nic/driver_override") journal=${phase% }"
}

# before_op OP: puts the NIC where OP starts from (an unbind needs a bind).
before_op() {
    [ "$1" = unbind ] || return 0
    "$VFIOCTL" bind "$nic" >/dev/null 2>&1 || fail "the bind before an unbind failed"
    expect_driver "$nic" vfio-pci
}

# count_calls OP SYSCALLS: one untouched run of OP under strace; sets COUNT_<name>
# to how many times vfioctl itself (not its unbind helper) made each call
# on those files. strace numbers the calls per process and per system call.
count_calls() {
    local op="$1" calls="$2" parent c
    before_op "$op"
    strace -f -qq -o "$RESULTS/$op-count.strace" "${paths[@]}" -e trace="$calls" \
        "$VFIOCTL" "$op" "$nic" >"$RESULTS/$op-count.out" 2>"$RESULTS/$op-count.err" ||
        fail "vfioctl $op under strace failed: $(cat "$RESULTS/$op-count.err")"
    [ "$op" = unbind ] || "$VFIOCTL" unbind "$nic" >/dev/null 2>&1 || fail "unbind after the counting bind failed"
    expect_unchanged "$op under strace, then given back," "$initial" "$nic"
    parent="$(awk 'NR == 1 { print $1 }' "$RESULTS/$op-count.strace")"
    for c in ${calls//,/ }; do
        printf -v "COUNT_$c" '%s' "$(awk -v p="$parent" -v c="$c" '$1 == p && index($2, c "(") == 1' "$RESULTS/$op-count.strace" | wc -l)"
    done
}

points=0
# every_point OP SYSCALLS: kills OP at each of its calls of SYSCALLS (as
# counted by count_calls), one run per call, and recovers after each.
every_point() {
    local op="$1" calls="$2" c n name total
    count_calls "$op" "$calls"
    for c in ${calls//,/ }; do
        total="COUNT_$c"
        total="${!total}"
        [ "$total" -gt 0 ] || continue
        echo "-- $op makes $total $c calls on the journal and the driver files"
        for n in $(seq 1 "$total"); do
            name="$op-$c-$n"
            before_op "$op"
            killed_at "$name" "$c" "$n" "$op" "$nic"
            [ "$RC" = 137 ] || fail "$name: vfioctl $op was not killed at $c #$n (exit status $RC)"
            points=$((points + 1))
            echo "-- $op killed at $c #$n ($(tail -n 2 "$RESULTS/$name.strace" | head -n 1 | cut -c1-110)): $(what_was_left)"
            recovered "$name"
        done
    done
}

step "kill points of vfioctl bind"
every_point bind write,rename,renameat,renameat2,unlink,unlinkat
bind_points=$points

step "kill points of vfioctl unbind"
every_point unbind write,rename,renameat,renameat2,unlink,unlinkat

step "summary"
[ "$bind_points" -ge 5 ] || fail "only $bind_points kill points in bind (journal, override, probe, journal)"
[ $((points - bind_points)) -ge 4 ] || fail "only $((points - bind_points)) kill points in unbind"
ok "$points kill points ($bind_points in bind, $((points - bind_points)) in unbind), each recovered"
