#!/usr/bin/env bash
# Benchmark: boot-time binding. vfioctl's persistent binding (bind.d,
# vfioctl-bind.service before udev's coldplug, 61-vfioctl.rules) against
# driverctl's persistent override (/etc/driverctl.d, its udev rule and
# driverctl@.service), in the same L1 boot disk (GRUB, systemd, udev), the
# two alternating boot by boot: seconds from the kernel's start to the
# e1000e bound to vfio-pci (/proc/uptime when udev sees the bind).
# Prints a Markdown table; docs/bench.md records the results. The guest
# half is bench/persist-guest.sh.
#   bench/persist.sh [BUILD_DIR] [ROUNDS]   (default: build, 4; at most 7)
# Needs what tests/e2e needs plus grub-pc-bin, dpkg-dev and driverctl, and
# the package (scripts/package, or the 'package' test). It never touches
# this machine's drivers: every write happens inside L1.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
rounds=${2:-4}
vfioctl=$build/vfioctl
[ -x "$vfioctl" ] || { echo "bench: $vfioctl is missing (build the vfioctl target)" >&2; exit 1; }
ls "$build"/pkg/vfioctl_*.deb >/dev/null 2>&1 || { echo "bench: no $build/pkg/vfioctl_*.deb (run scripts/package)" >&2; exit 1; }
for tool in python3 driverctl qemu-system-x86_64; do
  command -v "$tool" >/dev/null || { echo "bench: missing $tool" >&2; exit 1; }
done
results=$build/bench-results/persist
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tests/e2e/lib/run-scenario.sh --vfioctl "$vfioctl" --build-dir "$build" --results-dir "$results" \
  --env "BENCH_ROUNDS=$rounds" bench/persist-guest.sh >&2
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$results/share/timings.tsv" "$load_before" "$load_after" <<'PY'
import csv, statistics, sys

path, load_before, load_after = sys.argv[1:4]
rows = list(csv.DictReader(open(path), delimiter="\t"))
t = {m: [float(r["bound_s"]) for r in rows if r["method"] == m] for m in ("vfioctl", "driverctl")}
if not t["vfioctl"] or not t["driverctl"]:
    sys.exit("bench: a method has no measurement")
vf, dc = statistics.median(t["vfioctl"]), statistics.median(t["driverctl"])
print(f"L1 under the e2e harness (GRUB disk, systemd and udev), the e1000e (8086:10d3); "
      f"{len(t['vfioctl'])} boots each, alternating. Host load average {load_before} before, "
      f"{load_after} after.")
print()
first = {m: sum(1 for r in rows if r["method"] == m and r["e1000e_first"] == "yes") for m in t}
print("| method | each boot (s) | median | against driverctl | boots where e1000e bound it first |")
print("|---|---|---:|---:|---:|")
for m, med in (("vfioctl (bind.d, vfioctl-bind.service)", vf), ("driverctl (driverctl.d, driverctl@.service)", dc)):
    key = m.split()[0]
    each = ", ".join(f"{x:.2f}" for x in t[key])
    print(f"| {m} | {each} | {med:.2f} s | {med / dc:.2f} | {first[key]} of {len(t[key])} |")
PY
