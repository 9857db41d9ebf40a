#!/bin/bash
# The guest half of bench/bind.sh, run inside L1 by tests/e2e/lib/run-scenario.sh
# (it is not an e2e test). Moves the e1000e to vfio-pci and back BENCH_ROUNDS
# times with each method, interleaved and in a rotating order, and writes one
# line per timed operation to $RESULTS/timings.tsv:
#   round  method  op  wall_ms  inner_ms
# Methods: raw (driver_override, unbind, drivers_probe and back, written by
# shell builtins), vfioctl (bind / unbind; inner_ms is the time vfioctl
# itself reports for its kernel writes), driverctl (--nosave set-override /
# unset-override). Floors: /bin/true, vfioctl --version and
# vfioctl bind --dry-run (the same planning as bind, no writes).
# BENCH_ALT=PATH adds the method vfioctl-alt: another vfioctl build (a
# candidate change) run the same way, with BENCH_ALT_ENV=NAME=VALUE in its
# environment when set.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 540
# e2e-requires: python3 driverctl
. "$E2E_LIB/scenario.sh"

rounds="${BENCH_ROUNDS:-10}"
out="$RESULTS/timings.tsv"
driverctl="$(command -v driverctl)" || skip "driverctl is not installed"

nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
dev="/sys/bus/pci/devices/$nic"
modprobe e1000e || fail "modprobe e1000e failed"
# Every method finds vfio-pci loaded: loading it is a one-time cost.
modprobe vfio-pci || fail "modprobe vfio-pci failed"
expect_driver "$nic" e1000e
group="$(iommu_group_of "$nic")"

now() { echo "$EPOCHREALTIME"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) * 1000 }'; }

# check METHOD OP DRIVER: the operation must have left the NIC on DRIVER,
# with no override after a give-back and /dev/vfio/N after a bind.
check() {
    local d
    d="$(driver_of "$nic")"
    [ "$d" = "$3" ] || fail "$1 $2 left $nic on $d, not $3"
    if [ "$3" = vfio-pci ]; then
        [ -c "/dev/vfio/$group" ] || fail "$1 $2: /dev/vfio/$group is missing"
    else
        [ "$(cat "$dev/driver_override")" = "(null)" ] || fail "$1 $2 left driver_override set"
        [ -n "$(net_of "$nic")" ] || fail "$1 $2: no network interface"
    fi
}

raw_bind() {
    echo vfio-pci >"$dev/driver_override" &&
        echo "$nic" >/sys/bus/pci/drivers/e1000e/unbind &&
        echo "$nic" >/sys/bus/pci/drivers_probe
}
raw_unbind() {
    echo >"$dev/driver_override" &&
        echo "$nic" >/sys/bus/pci/drivers/vfio-pci/unbind &&
        echo "$nic" >/sys/bus/pci/drivers/e1000e/bind
}

inner_ms() {
    python3 -c 'import json,sys; print("%.2f" % sum(c["ms"] for c in json.load(open(sys.argv[1]))["changes"]))' "$1" 2>/dev/null ||
        echo -
}

# bin_of METHOD ARGS...: runs the vfioctl build of METHOD.
bin_of() {
    if [ "$1" = vfioctl-alt ]; then
        shift
        if [ -n "${BENCH_ALT_ENV:-}" ]; then
            (export "${BENCH_ALT_ENV?}" && exec "$BENCH_ALT" "$@")
        else
            "$BENCH_ALT" "$@"
        fi
    else
        shift
        "$VFIOCTL" "$@"
    fi
}

# one ROUND METHOD: one bind and one give-back, each timed.
one() {
    local r="$1" m="$2" t0 t1 inner=-
    case "$m" in
    raw)
        t0=$(now); raw_bind || fail "raw bind failed"; t1=$(now)
        ;;
    vfioctl | vfioctl-alt)
        t0=$(now); bin_of "$m" --json bind "$nic" >"$RESULTS/v.json" 2>"$RESULTS/v.err" || fail "$m bind: $(cat "$RESULTS/v.err")"; t1=$(now)
        inner="$(inner_ms "$RESULTS/v.json")"
        ;;
    driverctl)
        t0=$(now); "$driverctl" --nosave set-override "$nic" vfio-pci || fail "driverctl set-override failed"; t1=$(now)
        ;;
    esac
    check "$m" bind vfio-pci
    printf '%s\t%s\tbind\t%s\t%s\n' "$r" "$m" "$(ms "$t0" "$t1")" "$inner" >>"$out"
    inner=-
    case "$m" in
    raw)
        t0=$(now); raw_unbind || fail "raw give-back failed"; t1=$(now)
        ;;
    vfioctl | vfioctl-alt)
        t0=$(now); bin_of "$m" --json unbind "$nic" >"$RESULTS/v.json" 2>"$RESULTS/v.err" || fail "$m unbind: $(cat "$RESULTS/v.err")"; t1=$(now)
        inner="$(inner_ms "$RESULTS/v.json")"
        ;;
    driverctl)
        t0=$(now); "$driverctl" --nosave unset-override "$nic" || fail "driverctl unset-override failed"; t1=$(now)
        ;;
    esac
    check "$m" unbind e1000e
    printf '%s\t%s\tunbind\t%s\t%s\n' "$r" "$m" "$(ms "$t0" "$t1")" "$inner" >>"$out"
}

floor() {
    local r="$1" t0 t1
    t0=$(now); /bin/true; t1=$(now)
    printf '%s\ttrue\texec\t%s\t-\n' "$r" "$(ms "$t0" "$t1")" >>"$out"
    t0=$(now); "$VFIOCTL" --version >/dev/null; t1=$(now)
    printf '%s\tvfioctl\tversion\t%s\t-\n' "$r" "$(ms "$t0" "$t1")" >>"$out"
    t0=$(now); "$VFIOCTL" bind --dry-run "$nic" >/dev/null 2>&1; t1=$(now)
    printf '%s\tvfioctl\tdry-run\t%s\t-\n' "$r" "$(ms "$t0" "$t1")" >>"$out"
    if [ -n "${BENCH_ALT:-}" ]; then
        t0=$(now); bin_of vfioctl-alt bind --dry-run "$nic" >/dev/null 2>&1; t1=$(now)
        printf '%s\tvfioctl-alt\tdry-run\t%s\t-\n' "$r" "$(ms "$t0" "$t1")" >>"$out"
    fi
}

printf 'round\tmethod\top\twall_ms\tinner_ms\n' >"$out"
methods=(raw vfioctl driverctl)
if [ -n "${BENCH_ALT:-}" ]; then
    [ -x "$BENCH_ALT" ] || fail "BENCH_ALT=$BENCH_ALT is not executable"
    methods+=(vfioctl-alt)
fi
nm=${#methods[@]}
step "warm-up round (not counted)"
for m in "${methods[@]}"; do one 0 "$m"; done
floor 0
sed -i '2,$d' "$out"
step "$rounds rounds"
for r in $(seq 1 "$rounds"); do
    for k in $(seq 0 $((nm - 1))); do
        one "$r" "${methods[$(((r + k) % nm))]}"
    done
    floor "$r"
done
[ -z "$(ls /etc/driverctl.d 2>/dev/null)" ] || fail "driverctl --nosave saved an override"
[ ! -e "$(journal_file)" ] || fail "vfioctl left a journal"
ok "$rounds rounds, timings in $out"
python3 - "$out" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
keys = sorted({(r["method"], r["op"]) for r in rows})
for m, op in keys:
    v = [float(r["wall_ms"]) for r in rows if (r["method"], r["op"]) == (m, op)]
    print(f"{m:10} {op:8} median {statistics.median(v):8.1f} ms  min {min(v):8.1f}  max {max(v):8.1f}  n={len(v)}")
PY
