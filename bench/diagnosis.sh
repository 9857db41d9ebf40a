#!/usr/bin/env bash
# Benchmark: 'vfioctl groups' and 'vfioctl status' against 'lspci -nnk' on
# the same fixture trees (a DGX-class host and synthetic hosts of 1,000 to
# 10,000 functions), measured by hyperfine in one run. Prints a Markdown
# table of mean times and ratios; docs/bench.md records the results.
#   bench/diagnosis.sh [BUILD_DIR]
#   HOSTS='dgx synthetic-10000' bench/diagnosis.sh   some hosts only
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
vfioctl=$build/vfioctl
mkhost=$build/bench/vfioctl-mkhost
for tool in hyperfine lspci python3 "$vfioctl" "$mkhost"; do
  command -v "$tool" >/dev/null || { echo "bench: missing $tool (run scripts/setup)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
read -r -a hosts <<<"${HOSTS:-dgx synthetic-1000 synthetic-2500 synthetic-5000 synthetic-10000}"
for h in "${hosts[@]}"; do
  "$mkhost" "$h" "$work/$h"
done

printf '| host | functions | lspci -nnk | vfioctl groups | ratio | vfioctl status | ratio |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for h in "${hosts[@]}"; do
  root=$work/$h
  n=$(ls "$root/sys/bus/pci/devices" | wc -l)
  hyperfine -N --warmup 2 --runs 10 --export-json "$work/$h.json" \
    "lspci -nnk -A linux-sysfs -O sysfs.path=$root/sys/bus/pci" \
    "$vfioctl --root $root groups" \
    "$vfioctl --root $root status" >/dev/null 2>&1 || true
  python3 - "$work/$h.json" "$h" "$n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
lspci, groups, status = (x["mean"] for x in r)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {lspci*1000:.1f} ms | {groups*1000:.1f} ms | "
      f"{groups/lspci:.2f} | {status*1000:.1f} ms | {status/lspci:.2f} |")
PY
done
