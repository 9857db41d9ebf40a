#!/bin/bash
# kill -9 at any moment of "vfioctl bind" or "vfioctl unbind", then
# "vfioctl recover" gives the NIC back to e1000e: driver link, no
# driver_override, network interface, no journal. The kills are spread over
# the whole run (from the start) and over the change itself (after the
# journal appears); the output says where each one landed.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 360
# e2e-requires: python3 chrt
. "$E2E_LIB/scenario.sh"

kills="${E2E_CRASH_KILLS:-10}"
unbind_kills="${E2E_CRASH_UNBIND_KILLS:-4}"
RANDOM=4242 # the same delays on every run

step "kernel facts"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e
iface="$(net_of "$nic")"
[ -n "$iface" ] || fail "$nic has no network interface"
journal="$(journal_file)"
initial="$(device_state "$nic")"

# Sleeps without starting a process: read with a timeout on a FIFO that
# never gets data.
mkfifo /tmp/crash-never || fail "mkfifo failed"
exec 9<>/tmp/crash-never
nap() { read -r -t "$1" -u 9 _; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }
elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

# read_phase: sets PHASE to the phase of the NIC's journal entry, "none"
# without a journal (shell builtins only, so polling it starts no process).
read_phase() {
    local line
    PHASE=none
    [ -e "$journal" ] || return 0
    PHASE=present
    while IFS= read -r line; do
        case "$line" in *'"phase": '*) PHASE="${line#*\"phase\": \"}"; PHASE="${PHASE%%\"*}" ;; esac
    done <"$journal" 2>/dev/null
    return 0
}

# The guest has one vCPU: this shell runs as a real-time task so that its
# timers preempt vfioctl (started as an ordinary task) the moment they fire.
# Without that, the poller and the kill only run once vfioctl yields, which
# is usually after it is done.
chrt -f -p 10 $$ || fail "cannot make the scenario shell a real-time task"
vfioctl() { chrt -o 0 "$VFIOCTL" "$@"; }

# watch CMD...: runs vfioctl CMD in the background and polls until the
# journal changes from what it was (PHASE); sets SEEN (when the change
# showed) and PID. Gives up after watch_polls polls: 15000 (5 ms naps, at
# least 75 s) times the slowdown (a command that failed without touching
# the journal is a zombie that kill -0 still finds).
watch_polls=$(($(limit 75) * 200))
watch() {
    local was="$PHASE" polls=0
    chrt -o 0 "$VFIOCTL" "$@" >/dev/null 2>&1 &
    PID=$!
    read_phase
    while [ "$PHASE" = "$was" ] && [ $polls -lt "$watch_polls" ]; do
        nap 0.005
        polls=$((polls + 1))
        read_phase
    done
    SEEN=$EPOCHREALTIME
}

step "calibration: binds and unbinds, untouched"
t0=$EPOCHREALTIME
vfioctl bind "$nic" >/dev/null 2>&1 || fail "vfioctl bind failed"
t1=$EPOCHREALTIME
bind_ms="$(elapsed_ms "$t0" "$t1")"
vfioctl unbind "$nic" >/dev/null 2>&1 || fail "vfioctl unbind failed"
read_phase
watch bind "$nic"
wait "$PID" || fail "vfioctl bind failed"
t1=$EPOCHREALTIME
expect_driver "$nic" vfio-pci
bind_window="$(elapsed_ms "$SEEN" "$t1")"
read_phase
watch unbind "$nic"
wait "$PID" || fail "vfioctl unbind failed"
t1=$EPOCHREALTIME
unbind_window="$(elapsed_ms "$SEEN" "$t1")"
expect_unchanged "bind then unbind" "$initial" "$nic"
ok "vfioctl bind takes ${bind_ms} ms here, ${bind_window} ms of it after the journal appears;" \
    "unbind runs ${unbind_window} ms after the journal says restoring"

# restored N: vfioctl recover must leave the NIC as it was at the start.
restored() {
    run "recover_$1" vfioctl recover
    expect_rc "recover after kill $1" 0
    [ "$(driver_of "$nic")" = e1000e ] || fail "kill $1: $nic is on $(driver_of "$nic") after recover"
    [ "$(cat "/sys/bus/pci/devices/$nic/driver_override")" = "(null)" ] ||
        fail "kill $1: driver_override is '$(cat "/sys/bus/pci/devices/$nic/driver_override")' after recover"
    [ -n "$(net_of "$nic")" ] || fail "kill $1: $nic has no network interface after recover"
    [ ! -e "$journal" ] || fail "kill $1: the journal is still there after recover"
    expect_unchanged "kill $1 then recover" "$initial" "$nic"
}

# where: what the killed command left behind, before recover.
where() {
    read_phase
    echo "driver=$(driver_of "$nic") override=$(cat "/sys/bus/pci/devices/$nic/driver_override") journal=$PHASE"
}

# Tallies of where the kills landed.
before_change=0 mid_change=0 after_change=0 finished=0

# tally bind|unbind RC: counts one kill by the exit status of the killed
# command and the journal it left (PHASE).
tally() {
    local before=none after=bound
    [ "$1" = unbind ] && before=bound after=none
    if [ "$2" != 137 ]; then
        finished=$((finished + 1))
    elif [ "$PHASE" = "$before" ]; then
        before_change=$((before_change + 1))
    elif [ "$PHASE" = "$after" ]; then
        after_change=$((after_change + 1))
    else
        mid_change=$((mid_change + 1))
    fi
}

# kill_it DELAY_MS: kill -9 of PID after DELAY_MS; sets RC.
kill_it() {
    nap "$(secs "$1")"
    kill -9 "$PID" 2>/dev/null
    wait "$PID"
    RC=$?
}

from_start=$((kills / 3))
step "$kills kills during vfioctl bind: $from_start at random times, $((kills - from_start)) spread over the change"
for i in $(seq 1 "$kills"); do
    if [ "$i" -le "$from_start" ]; then
        # Anywhere in the run: 0 to the calibrated bind time after the start.
        delay=$((RANDOM % (bind_ms + 1)))
        how="${delay} ms after the start"
        chrt -o 0 "$VFIOCTL" bind "$nic" >/dev/null 2>&1 &
        PID=$!
    else
        # Inside the change: evenly over the calibrated window after the
        # journal appears, with a little jitter.
        j=$((i - from_start - 1)) n=$((kills - from_start))
        delay=$(((bind_window * j) / n + RANDOM % 5))
        how="${delay} ms after the journal appeared"
        read_phase
        watch bind "$nic"
    fi
    kill_it "$delay"
    state="$(where)"
    read_phase
    tally bind "$RC"
    echo "-- bind kill $i, $how: exit status $RC; $state"
    restored "bind$i"
done

step "$unbind_kills kills during vfioctl unbind, spread over the change"
for i in $(seq 1 "$unbind_kills"); do
    vfioctl bind "$nic" >/dev/null 2>&1 || fail "vfioctl bind before unbind kill $i failed"
    expect_driver "$nic" vfio-pci
    delay=$(((unbind_window * (i - 1)) / unbind_kills + RANDOM % 5))
    how="${delay} ms after the journal said restoring"
    read_phase
    watch unbind "$nic"
    kill_it "$delay"
    state="$(where)"
    read_phase
    tally unbind "$RC"
    echo "-- unbind kill $i, $how: exit status $RC; $state"
    restored "unbind$i"
done

step "where the kills landed"
echo "before any change (bind: no journal; unbind: still bound): $before_change"
echo "mid-change (journal phase binding or restoring): $mid_change"
echo "after the change, before exit (bind: phase bound; unbind: journal gone): $after_change"
echo "too late (the command had finished): $finished"
[ "$mid_change" -gt 0 ] || fail "no kill landed mid-change"
ok "$((kills + unbind_kills)) kills, $mid_change of them mid-change, every one recovered"
