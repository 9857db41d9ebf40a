# Helpers for e2e scenario scripts; source it first:
#   . "$E2E_LIB/scenario.sh"
# A scenario runs with "guest" (inside L1) or "host" (after the guest passed,
# for scenarios with "# e2e-host-check: yes") as $1; see run-scenario.sh.
# shellcheck shell=bash
set -uo pipefail

E2E_PHASE="${1:-${E2E_PHASE:-guest}}"
: "${VFIOCTL:?VFIOCTL is not set: run scenarios through run-scenario.sh}"
: "${RESULTS:?RESULTS is not set: run scenarios through run-scenario.sh}"
export PYTHONDONTWRITEBYTECODE=1

# The guest phase binds and loads drivers: it must only ever run inside the
# e2e guest, which init marks with e2e.results= on the kernel command line.
if [ "$E2E_PHASE" = guest ] && ! grep -q 'e2e\.results=' /proc/cmdline; then
    echo "FAIL: not inside the e2e guest; refusing to run the guest phase here"
    exit 1
fi

# Prints a heading for the next group of checks.
step() { echo "== [$(cut -d' ' -f1 /proc/uptime)s] $*"; }

# Ends the scenario as failed with a reason.
fail() {
    echo "FAIL: $*"
    exit 1
}

# Ends the scenario as skipped: only for something this machine lacks.
skip() {
    echo "SKIP: $*"
    exit 77
}

# Reports a check that held.
ok() { echo "ok: $*"; }

# Calibration: how much slower than the reference machine this run is.
# Under TCG the guest's clock follows wall time, so /proc/uptime when the
# scenario starts is how long L1 took to boot (kernel, init, 9p mounts, the
# chroot): E2E_L1_BOOT_S. E2E_SLOWDOWN = L1 boot / E2E_L1_REFERENCE_S, at
# least 1, at most E2E_SLOWDOWN_MAX (default 4; the harness passes the value
# it uses, and CTest's TIMEOUT assumes 4). Measured once, at boot 0; later
# boots of a scenario with e2e-disk, and the host phase, read it back from
# $RESULTS/calibration, which the harness also reads to stretch its own limit
# by the same factor.
#
# The reference, 3.0 s: iommu_on on an idle-ish 2-core Intel Xeon VM (QEMU
# 7.2 TCG, kernel 6.1.0-57-amd64), one scenario at a time: uptime 2.89, 3.09
# and 3.00 s at its first step; 2.7 to 3.2 s in this calibration line over
# five more runs (iommu_off 2.86, no_iommu 3.12, amd_iommu 3.28, snapshot
# 3.33 and 3.0, grub_reboot 3.0 and 3.1). Two scenarios at once on the same
# 2 cores (ctest -j2): 3.81 and 4.32 s, and those guests ran 1.4 times longer.
#
# E2E_SLOWDOWN set in the environment (run-scenario.sh --env, or exported
# where run-scenario.sh runs) forces the factor instead, for testing: any
# positive number up to E2E_SLOWDOWN_MAX, below 1 too (limits shrink; at
# least 0.01).
E2E_L1_REFERENCE_S="${E2E_L1_REFERENCE_S:-3.0}"
E2E_SLOWDOWN_MAX="${E2E_SLOWDOWN_MAX:-4}"

# is_number TEXT: true for a non-negative decimal number (3, 0.5, 12.25).
is_number() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$|^[.][0-9]+$ ]]; }

# number_where TEXT CONDITION: true when TEXT is a number x for which the awk
# expression CONDITION holds, e.g. number_where "$f" 'x > 0'.
number_where() { is_number "$1" && awk -v x="$1" "BEGIN { exit !($2) }"; }

# calibration_value KEY: the value of KEY= in $RESULTS/calibration.
calibration_value() {
    sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" "$RESULTS/calibration" 2>/dev/null | head -n1
}

calibrate() {
    local up how
    number_where "$E2E_SLOWDOWN_MAX" 'x >= 1' ||
        fail "E2E_SLOWDOWN_MAX='$E2E_SLOWDOWN_MAX' is not a number of at least 1"
    number_where "$E2E_L1_REFERENCE_S" 'x > 0' ||
        fail "E2E_L1_REFERENCE_S='$E2E_L1_REFERENCE_S' is not a positive number"
    if [ "$E2E_PHASE" != guest ] || { [ "${E2E_BOOT:-0}" != 0 ] && [ -s "$RESULTS/calibration" ]; }; then
        # The guest's measurement from boot 0; 1 when there is none.
        E2E_L1_BOOT_S="$(calibration_value l1_boot_s)"
        E2E_SLOWDOWN="$(calibration_value slowdown)"
        is_number "$E2E_SLOWDOWN" || E2E_SLOWDOWN=1
        return 0
    fi
    up="$(cut -d' ' -f1 /proc/uptime)"
    E2E_L1_BOOT_S="$(awk -v u="$up" 'BEGIN { printf "%.1f", u }')"
    if [ -n "${E2E_SLOWDOWN:-}" ]; then
        number_where "$E2E_SLOWDOWN" 'x > 0' ||
            fail "E2E_SLOWDOWN='$E2E_SLOWDOWN' is not a positive number"
        how=forced
        E2E_SLOWDOWN="$(awk -v f="$E2E_SLOWDOWN" -v m="$E2E_SLOWDOWN_MAX" \
            'BEGIN { if (f > m) f = m; if (f < 0.01) f = 0.01; printf "%.2f", f }')"
    else
        how=measured
        E2E_SLOWDOWN="$(awk -v b="$E2E_L1_BOOT_S" -v r="$E2E_L1_REFERENCE_S" -v m="$E2E_SLOWDOWN_MAX" \
            'BEGIN { f = b / r; if (f < 1) f = 1; if (f > m) f = m; printf "%.2f", f }')"
    fi
    # Written whole, then renamed: the harness polls for this file.
    echo "l1_boot_s=$E2E_L1_BOOT_S reference_s=$E2E_L1_REFERENCE_S slowdown=$E2E_SLOWDOWN max=$E2E_SLOWDOWN_MAX source=$how" \
        >"$RESULTS/calibration.tmp" || fail "cannot write $RESULTS/calibration.tmp"
    mv -f "$RESULTS/calibration.tmp" "$RESULTS/calibration" || fail "cannot write $RESULTS/calibration"
    if [ "$how" = forced ]; then
        echo "== [${up}s] calibration: L1 booted in ${E2E_L1_BOOT_S} s; slowdown ${E2E_SLOWDOWN}, forced by E2E_SLOWDOWN (max $E2E_SLOWDOWN_MAX)"
    else
        echo "== [${up}s] calibration: L1 booted in ${E2E_L1_BOOT_S} s, reference ${E2E_L1_REFERENCE_S} s: slowdown ${E2E_SLOWDOWN} (max $E2E_SLOWDOWN_MAX)"
    fi
}

# Once per scenario: a script that sources this file again keeps the values.
if [ -z "${E2E_CALIBRATED:-}" ]; then
    calibrate
    E2E_CALIBRATED=1
    export E2E_L1_BOOT_S E2E_SLOWDOWN E2E_SLOWDOWN_MAX E2E_L1_REFERENCE_S E2E_CALIBRATED
fi

# limit SECONDS: prints SECONDS stretched by the slowdown (ceil(SECONDS x
# E2E_SLOWDOWN), at least 1), for every fixed wait that depends on the
# guest's speed; write SECONDS as what the reference machine needs with margin:
#   run v "$VFIOCTL" vm run ... --boot-timeout "$(limit 300)" -- true
limit() {
    if ! is_number "${1:-}"; then
        echo "FAIL: limit: '${1:-}' is not a number of seconds" >&2
        return 1
    fi
    awk -v s="$1" -v f="$E2E_SLOWDOWN" 'BEGIN { x = s * f; c = int(x); if (x - c > 1e-6) c++; if (c < 1) c = 1; print c }'
}

# run NAME CMD...: runs CMD with stdout in $RESULTS/NAME.out and stderr in
# $RESULTS/NAME.err, echoes both and leaves the exit status in $RC.
run() {
    local name="$1"
    shift
    echo "\$ $*"
    "$@" >"$RESULTS/$name.out" 2>"$RESULTS/$name.err"
    RC=$?
    cat "$RESULTS/$name.out"
    [ -s "$RESULTS/$name.err" ] && sed 's/^/stderr: /' "$RESULTS/$name.err"
    echo "(exit status $RC)"
    return 0
}

# run_quiet NAME CMD...: as run, but shows stdout only in $RESULTS/NAME.out.
run_quiet() {
    local name="$1"
    shift
    echo "\$ $* >$name.out"
    "$@" >"$RESULTS/$name.out" 2>"$RESULTS/$name.err"
    RC=$?
    [ -s "$RESULTS/$name.err" ] && sed 's/^/stderr: /' "$RESULTS/$name.err"
    echo "(exit status $RC)"
    return 0
}

# expect_rc WHAT CODE...: fails unless the last run's exit status is one of CODE.
expect_rc() {
    local what="$1" code
    shift
    for code in "$@"; do
        [ "$RC" = "$code" ] && { ok "$what exits $RC"; return 0; }
    done
    fail "$what exited $RC, expected $*"
}

# expect_text NAME TEXT: fails unless run NAME printed TEXT (stdout or stderr,
# case-sensitive, fixed string).
expect_text() {
    # No pipe: grep -q stops at the first match, and a writer into the pipe
    # would then die of SIGPIPE and fail the pipeline under pipefail.
    if grep -aqF -- "$2" "$RESULTS/$1.out" "$RESULTS/$1.err"; then
        ok "$1 mentions '$2'"
    else
        fail "$1 does not mention '$2'"
    fi
}

# json_check FILE EXPR [WHAT]: fails unless the Python expression EXPR is true,
# with d bound to the JSON in FILE and the helpers of jsoncheck.py.
json_check() {
    python3 "$E2E_LIB/jsoncheck.py" check "$@" || fail "${3:-$2}"
    ok "${3:-$2}"
}

# json_eval FILE EXPR: prints the value of EXPR (strings bare, others as JSON).
json_eval() {
    python3 "$E2E_LIB/jsoncheck.py" eval "$@"
}

# schema_check FILE NAME: FILE (a saved --json output) matches
# docs/schema/v1/NAME.schema.json; needs python3-jsonschema (scripts/setup).
schema_check() {
    /usr/bin/python3 "$E2E_SRC/tests/schema/check-schemas.py" --validate "$2" "$1" ||
        fail "$(basename "$1") does not match the $2 schema"
    ok "$(basename "$1") matches the $2 schema"
}

# tag_device TAG: the PCI address of the virtio-9p device with mount tag TAG.
tag_device() {
    local v
    for v in /sys/bus/virtio/devices/*; do
        # The kernel ends the attribute with a NUL byte.
        if [ "$(tr -d '\0' <"$v/mount_tag" 2>/dev/null)" = "$1" ]; then
            basename "$(dirname "$(readlink -f "$v")")"
            return 0
        fi
    done
}

# pci_find VENDOR DEVICE: prints the addresses of the PCI devices with that
# ID, e.g. pci_find 8086 10d3.
pci_find() {
    local d
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor")" = "0x$1" ] && [ "$(cat "$d/device")" = "0x$2" ] && basename "$d"
    done
    return 0
}

# pci_find_class PREFIX: prints the addresses whose class starts with PREFIX
# (hex, e.g. 03 for display controllers).
pci_find_class() {
    local d
    for d in /sys/bus/pci/devices/*; do
        case "$(cat "$d/class")" in 0x$1*) basename "$d" ;; esac
    done
    return 0
}

# iommu_group_of ADDRESS: prints the device's IOMMU group number, or nothing.
iommu_group_of() {
    local link
    link="$(readlink "/sys/bus/pci/devices/$1/iommu_group" 2>/dev/null)" || return 0
    basename "$link"
}

# group_count: prints how many IOMMU groups the kernel has.
group_count() {
    find /sys/kernel/iommu_groups -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# load_vfio: loads vfio-pci and its dependencies like modprobe does.
load_vfio() {
    modprobe vfio-pci || fail "modprobe vfio-pci failed"
    [ -c /dev/vfio/vfio ] || fail "/dev/vfio/vfio is missing after loading vfio-pci"
    ok "vfio-pci loaded, /dev/vfio/vfio exists"
}

# l2_qemu NAME ARGS...: starts the host's QEMU inside L1, stopped (-S), with
# QMP on stdin: it answers query-pci and quits. Output as for run.
l2_qemu() {
    local name="$1"
    shift
    run "$name" timeout "$(limit 180)" qemu-system-x86_64 -accel tcg -machine q35 -nodefaults \
        -no-user-config -display none -S -qmp stdio "$@" <<'QMP'
{"execute":"qmp_capabilities"}
{"execute":"query-pci"}
{"execute":"quit"}
QMP
}

# qmp_lists_pci FILE VENDOR DEVICE: true when the query-pci answer in the QMP
# transcript FILE (from l2_qemu) lists a device with that ID (hex).
qmp_lists_pci() {
    python3 - "$@" <<'PY'
import json, sys
path, vendor, device = sys.argv[1], int(sys.argv[2], 16), int(sys.argv[3], 16)
def devices(buses):
    for bus in buses:
        for dev in bus.get("devices", []):
            yield dev
            yield from devices([dev.get("pci_bridge", {}).get("bus", {})])
for line in open(path, encoding="utf-8"):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if isinstance(msg.get("return"), list):
        if any(d["id"]["vendor"] == vendor and d["id"]["device"] == device for d in devices(msg["return"])):
            sys.exit(0)
sys.exit(1)
PY
}

# driver_of ADDRESS: prints the name of the device's driver, or "none".
driver_of() {
    local link
    link="$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" || { echo none; return 0; }
    basename "$link"
}

# net_of ADDRESS: prints the device's network interfaces, space-separated.
net_of() {
    local n out=
    for n in "/sys/bus/pci/devices/$1/net"/*; do
        [ -e "$n" ] && out="$out ${n##*/}"
    done
    echo "${out# }"
}

# device_state ADDRESS...: what a driver change touches, one line per device
# (driver, driver_override, interfaces), then the group nodes in /dev/vfio
# and the journal's content; compare two outputs to prove that nothing
# changed.
device_state() {
    local a n nodes=''
    for a in "$@"; do
        echo "$a driver=$(driver_of "$a") override=$(cat "/sys/bus/pci/devices/$a/driver_override" 2>/dev/null) net=$(net_of "$a")"
    done
    for n in /dev/vfio/*; do
        case "${n##*/}" in '*' | vfio) ;; *) nodes="$nodes${n##*/} " ;; esac
    done
    echo "/dev/vfio: $nodes"
    if [ -e /var/lib/vfioctl/journal.json ]; then
        echo "journal: $(sha256sum </var/lib/vfioctl/journal.json | cut -c1-16)"
    else
        echo "journal: none"
    fi
}

# expect_unchanged WHAT BEFORE ADDRESS...: fails unless device_state of the
# addresses equals BEFORE (an earlier device_state of them).
expect_unchanged() {
    local what="$1" before="$2" now
    shift 2
    now="$(device_state "$@")"
    if [ "$now" != "$before" ]; then
        echo "before:"
        printf '  %s\n' "${before//$'\n'/$'\n'  }"
        echo "now:"
        printf '  %s\n' "${now//$'\n'/$'\n'  }"
        fail "$what changed something"
    fi
    ok "$what changed nothing"
}

# expect_driver ADDRESS DRIVER: fails unless the device is bound to DRIVER.
expect_driver() {
    local now
    now="$(driver_of "$1")"
    [ "$now" = "$2" ] || fail "$1 is on $now, expected $2"
    ok "$1 is on $2"
}

# journal_file: the journal vfioctl keeps under its default state directory.
journal_file() { echo /var/lib/vfioctl/journal.json; }

# iface_up IFACE ADDRESS/PREFIX: brings IFACE up with an IPv4 address and
# waits up to 5 s (stretched by the slowdown) for its carrier, so that it
# counts as in use.
iface_up() {
    ip link set "$1" up || fail "ip link set $1 up failed"
    ip addr add "$2" dev "$1" || fail "ip addr add $2 dev $1 failed"
    for _ in $(seq "$(limit 50)"); do
        [ "$(cat "/sys/class/net/$1/operstate")" = up ] && break
        sleep 0.1
    done
    ok "$1 is up with $2 (operstate $(cat "/sys/class/net/$1/operstate"))"
}

# request_reboot: ends this boot of the scenario with success; the harness
# boots the guest again from its disk (scenarios with "# e2e-disk:"), with
# E2E_BOOT one higher.
request_reboot() {
    sync
    : >"$RESULTS/reboot" || fail "cannot write $RESULTS/reboot"
    echo "== [$(cut -d' ' -f1 /proc/uptime)s] boot ${E2E_BOOT:-0} done, reboot requested"
    exit 0
}

# grub_disk CMDLINE_DEFAULT: boot 0's work for a scenario that reboots into
# GRUB: makes /dev/vda a GRUB disk (lib/mkgrubdisk.sh) whose
# /etc/default/grub has GRUB_CMDLINE_LINUX_DEFAULT="CMDLINE_DEFAULT" and no
# menu (the file is also $RESULTS/default-grub).
grub_disk() {
    grep -q ' root=' /proc/cmdline && fail "boot 0 was not started by the harness (root= on its command line)"
    [ -d /usr/lib/grub/i386-pc ] || skip "no /usr/lib/grub/i386-pc (install grub-pc-bin)"
    cat >"$RESULTS/default-grub" <<GRUB
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT="$1"
GRUB_CMDLINE_LINUX=""
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY="true"
GRUB
    run mkgrubdisk "$E2E_LIB/mkgrubdisk.sh" /dev/vda "$RESULTS/default-grub"
    expect_rc "mkgrubdisk.sh /dev/vda" 0
}

# deb_onto_disk MNT: the package the 'package' test built (build/pkg) put on
# the GRUB disk mounted at MNT as dpkg would put it: /usr and /lib (usr/lib
# on the disk, as on Debian 12) into the disk's /usr overlay
# (/e2e/usr.upper), /etc onto the disk. Sets PKG to the unpacked package.
# Enables nothing.
deb_onto_disk() {
    local deb
    deb="$(ls "$E2E_BUILD"/pkg/vfioctl_*.deb 2>/dev/null | head -n1)"
    [ -n "$deb" ] || fail "no $E2E_BUILD/pkg/vfioctl_*.deb (the 'package' test builds it)"
    PKG="$(mktemp -d)"
    dpkg-deb -x "$deb" "$PKG" || fail "dpkg-deb -x $deb failed"
    mkdir -p "$1/e2e/usr.upper/lib" "$1/etc/systemd/system/sysinit.target.wants"
    cp -a "$PKG/usr/." "$1/e2e/usr.upper/" || fail "cannot put the package's /usr on the disk"
    cp -a "$PKG/lib/." "$1/e2e/usr.upper/lib/" || fail "cannot put the package's /lib on the disk"
    cp -a "$PKG/etc/." "$1/etc/" || fail "cannot put the package's /etc on the disk"
}

# expect_no_result_next_boot: the next boot is expected to end by itself
# without a scenario result (its kernel panics and reboots, which ends
# QEMU: -no-reboot); the harness then boots once more. Call it before
# request_reboot.
expect_no_result_next_boot() {
    echo "$((${E2E_BOOT:-0} + 1))" >"$RESULTS/no-result-expected" ||
        fail "cannot write $RESULTS/no-result-expected"
}

# lone_e1000e: finds the e1000e (8086:10d3), checks that it is alone in its
# IOMMU group and on its e1000e driver; sets NIC and GROUP.
lone_e1000e() {
    NIC="$(pci_find 8086 10d3)"
    [ -n "$NIC" ] || fail "no e1000e (8086:10d3)"
    GROUP="$(iommu_group_of "$NIC")"
    [ -n "$GROUP" ] || fail "$NIC has no IOMMU group"
    [ "$(ls "/sys/kernel/iommu_groups/$GROUP/devices")" = "$NIC" ] || fail "$NIC is not alone in group $GROUP"
    modprobe e1000e || fail "modprobe e1000e failed"
    expect_driver "$NIC" e1000e
}
