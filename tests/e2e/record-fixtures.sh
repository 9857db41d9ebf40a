#!/bin/bash
# Re-records the snapshot fixtures in tests/fixtures/recorded/ from real
# kernels: boots the guests described by tests/e2e/record/*.sh, runs
# "vfioctl snapshot" in each and replaces tests/fixtures/recorded/<name>/
# with the result; the guest's "vfioctl status --json" goes next to it as
# <name>.status.json. Not part of the test suite.
#
# Usage: tests/e2e/record-fixtures.sh BUILD_DIR [NAME...]
#   BUILD_DIR  a build tree with the vfioctl binary (BUILD_DIR/vfioctl)
#   NAME       fixtures to record (default: all of tests/e2e/record/)
# Environment: VFIOCTL (another binary), FIXTURES_DIR (record elsewhere than
# tests/fixtures/recorded).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/../.." && pwd)"
build="$(cd "${1:?usage: record-fixtures.sh BUILD_DIR [NAME...]}" && pwd)"
shift
vfioctl="${VFIOCTL:-$build/vfioctl}"
[ -x "$vfioctl" ] || { echo "record-fixtures: no vfioctl binary at $vfioctl" >&2; exit 1; }

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in "$here"/record/*.sh; do names+=("$(basename "$f" .sh)"); done
fi

for name in "${names[@]}"; do
    scenario="$here/record/$name.sh"
    [ -f "$scenario" ] || { echo "record-fixtures: no $scenario" >&2; exit 1; }
    work="$build/e2e-record/$name"
    echo "== recording $name"
    "$here/lib/run-scenario.sh" --vfioctl "$vfioctl" --build-dir "$build" \
        --results-dir "$work" "$scenario"
    dest="${FIXTURES_DIR:-$src/tests/fixtures/recorded}/$name"
    rm -rf "$dest"
    mkdir -p "$(dirname "$dest")"
    cp -a "$work/share/snap" "$dest"
    cp "$work/share/status.json" "$dest.status.json"
    echo "== $name recorded in $dest"
done
