#!/usr/bin/env bash
# Benchmark: moving one device to vfio-pci and back inside the nested L1
# guest (the e2e harness's), with raw sysfs writes, 'vfioctl bind'/'unbind'
# and driverctl's 'set-override'/'unset-override', interleaved in one run.
# Prints a Markdown table of medians and ratios; docs/bench.md records the
# results. The guest half is bench/bind-guest.sh.
#   bench/bind.sh [BUILD_DIR] [ROUNDS] [ALT_VFIOCTL]   (default: build, 10)
# ALT_VFIOCTL, another vfioctl build (a candidate change), is measured the
# same way in the same run, with $BENCH_ALT_ENV (NAME=VALUE) set for it.
# Needs what tests/e2e needs (qemu-system-x86, a kernel with modules,
# busybox-static, python3) plus driverctl. It never touches this machine's
# drivers: every write happens inside L1.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
rounds=${2:-10}
alt=${3:-}
vfioctl=$build/vfioctl
alt_args=()
if [ -n "$alt" ]; then
  case "$alt" in /*) ;; *) alt=$(pwd)/$alt ;; esac
  [ -x "$alt" ] || { echo "bench: $alt is not executable" >&2; exit 1; }
  alt_args=(--env "BENCH_ALT=$alt")
  [ -z "${BENCH_ALT_ENV:-}" ] || alt_args+=(--env "BENCH_ALT_ENV=$BENCH_ALT_ENV")
fi
[ -x "$vfioctl" ] || { echo "bench: $vfioctl is missing (build the vfioctl target)" >&2; exit 1; }
for tool in python3 driverctl qemu-system-x86_64; do
  command -v "$tool" >/dev/null || { echo "bench: missing $tool" >&2; exit 1; }
done
results=$build/bench-results/bind
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tests/e2e/lib/run-scenario.sh --vfioctl "$vfioctl" --build-dir "$build" --results-dir "$results" \
  --env "BENCH_ROUNDS=$rounds" "${alt_args[@]}" bench/bind-guest.sh >&2
accel=$(grep -o -- '-accel [a-z]*' "$results/qemu-command" | cut -d' ' -f2)
smp=$(grep -o -- '-smp [0-9]*' "$results/qemu-command" | cut -d' ' -f2)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$results/share/timings.tsv" "$accel" "$smp" "$load_before" "$load_after" <<'PY'
import csv, os, statistics, subprocess, sys

path, accel, smp, load_before, load_after = sys.argv[1:6]
rows = list(csv.DictReader(open(path), delimiter="\t"))

def med(method, op, key="wall_ms"):
    v = [float(r[key]) for r in rows if r["method"] == method and r["op"] == op and r[key] != "-"]
    return statistics.median(v) if v else float("nan")

def both(method, key="wall_ms"):
    # Median over rounds of bind + give-back in the same round.
    per = {}
    for r in rows:
        if r["method"] == method and r["op"] in ("bind", "unbind") and r[key] != "-":
            per.setdefault(r["round"], []).append(float(r[key]))
    v = [sum(x) for x in per.values() if len(x) == 2]
    return statistics.median(v) if v else float("nan")

n = len({r["round"] for r in rows})
cpu = "unknown CPU"
for l in open("/proc/cpuinfo"):
    if l.startswith("model name"):
        cpu = l.split(":", 1)[1].strip()
        break
qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
print(f"Inside L1: QEMU {accel.upper()}, {smp} vCPU, q35 + intel-iommu, the e1000e (8086:10d3) alone in its "
      f"group; host {cpu}, {os.cpu_count()} cores; {qemu.replace('QEMU emulator version ', 'QEMU ')}. "
      f"Median of {n} rounds, the methods interleaved in a rotating order in one boot; wall time "
      f"from exec to exit, measured by the guest's bash ($EPOCHREALTIME). Host load average "
      f"{load_before} before, {load_after} after.")
print()
print("| operation | raw sysfs writes | vfioctl | overhead (vfioctl − raw) | vfioctl's change phase | change phase − raw | driverctl | vfioctl / driverctl |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
def line(label, raw, vf, inner, dc):
    print(f"| {label} | {raw:.1f} ms | {vf:.1f} ms | +{vf - raw:.1f} ms | {inner:.1f} ms | {inner - raw:+.1f} ms | "
          f"{dc:.1f} ms | {vf / dc:.2f} |")
for op, label in (("bind", "to vfio-pci"), ("unbind", "back to e1000e")):
    line(label, med("raw", op), med("vfioctl", op), med("vfioctl", op, "inner_ms"), med("driverctl", op))
line("**both**", both("raw"), both("vfioctl"), both("vfioctl", "inner_ms"), both("driverctl"))
if any(r["method"] == "vfioctl-alt" for r in rows):
    print()
    print("| operation | vfioctl | vfioctl-alt | alt / vfioctl | alt / driverctl |")
    print("|---|---:|---:|---:|---:|")
    for op, label in (("bind", "to vfio-pci"), ("unbind", "back to e1000e")):
        vf, alt, dc = med("vfioctl", op), med("vfioctl-alt", op), med("driverctl", op)
        print(f"| {label} | {vf:.1f} ms | {alt:.1f} ms | {alt / vf:.2f} | {alt / dc:.2f} |")
    vf, alt, dc = both("vfioctl"), both("vfioctl-alt"), both("driverctl")
    print(f"| **both** | {vf:.1f} ms | {alt:.1f} ms | {alt / vf:.2f} | {alt / dc:.2f} |")
    print()
    print(f"`vfioctl-alt bind --dry-run` {med('vfioctl-alt', 'dry-run'):.1f} ms.")
print()
print("Floors in the same run (medians): "
      f"`/bin/true` {med('true', 'exec'):.1f} ms, `vfioctl --version` {med('vfioctl', 'version'):.1f} ms, "
      f"`vfioctl bind --dry-run` {med('vfioctl', 'dry-run'):.1f} ms.")
PY
