#!/usr/bin/env bash
# Benchmark: L2 start time with its RAM on 4 KiB pages against 2 MiB huge
# pages. In one L1 boot (two NUMA nodes, the e1000e on node 1, 2 MiB huge
# pages reserved on node 1 from the kernel command line), "vfioctl vm start
# --gpu" of a 512 MiB L2 with hugepages = "off" and with hugepages = "2M",
# alternating, timed until vm start returns (QEMU "running": the RAM
# preallocated on node 1 and pinned by VFIO for the e1000e). Prints a
# Markdown table; docs/bench.md records the results. The guest half is
# bench/hugepages-guest.sh.
#   bench/hugepages.sh [BUILD_DIR] [ROUNDS]   (default: build, 5)
# Needs what tests/e2e needs. It never touches this machine's drivers:
# every write happens inside L1.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
rounds=${2:-5}
vfioctl=$build/vfioctl
[ -x "$vfioctl" ] || { echo "bench: $vfioctl is missing (build the vfioctl target)" >&2; exit 1; }
for tool in python3 qemu-system-x86_64; do
  command -v "$tool" >/dev/null || { echo "bench: missing $tool" >&2; exit 1; }
done
results=$build/bench-results/hugepages
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tests/e2e/lib/run-scenario.sh --vfioctl "$vfioctl" --build-dir "$build" --results-dir "$results" \
  --env "BENCH_ROUNDS=$rounds" bench/hugepages-guest.sh >&2
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$results/share/timings.tsv" "$load_before" "$load_after" <<'PY'
import csv, statistics, sys

path, load_before, load_after = sys.argv[1:4]
rows = list(csv.DictReader(open(path), delimiter="\t"))
t = {p: [float(r["start_s"]) for r in rows if r["pages"] == p] for p in ("off", "2M")}
if not t["off"] or not t["2M"]:
    sys.exit("bench: a page size has no measurement")
m4, m2 = statistics.median(t["off"]), statistics.median(t["2M"])
print(f"One L1 boot under the e2e harness, a 512 MiB L2 with the e1000e (8086:10d3) passed "
      f"through, bound to node 1; {len(t['off'])} starts each after one warm-up each, "
      f"alternating. Host load average {load_before} before, {load_after} after.")
print()
print("| guest RAM | each start (s) | median | min–max | against 4 KiB |")
print("|---|---|---:|---:|---:|")
for label, key, med in (("4 KiB pages (hugepages = \"off\")", "off", m4),
                        ("2 MiB huge pages (hugepages = \"2M\")", "2M", m2)):
    each = ", ".join(f"{x:.2f}" for x in t[key])
    print(f"| {label} | {each} | {med:.2f} s | {min(t[key]):.2f}–{max(t[key]):.2f} | {med / m4:.2f} |")
PY
