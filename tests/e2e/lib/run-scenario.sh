#!/bin/bash
# Runs one e2e scenario inside a freshly booted L1 guest and returns its exit
# status.
#
# Usage: run-scenario.sh --vfioctl PATH --build-dir DIR [options] SCENARIO
#   --vfioctl PATH      the vfioctl binary under test (absolute path)
#   --build-dir DIR     the build tree; the initramfs cache and results go here
#   --cache-dir DIR     initramfs cache (default DIR/e2e-cache)
#   --results-dir DIR   per-scenario directory, emptied first
#                       (default DIR/e2e-results/NAME)
#   --timeout SECONDS   guest wall-clock limit on the reference machine
#                       (default: the scenario's e2e-timeout, else 240),
#                       stretched by the guest's slowdown (below)
#   --kernel PATH       kernel image (default: the newest /boot/vmlinuz-* whose
#                       modules are installed)
#   --env NAME=VALUE    also export NAME to the scenario (repeatable)
# Environment: E2E_QEMU (QEMU binary), E2E_KERNEL (kernel image),
# E2E_ACCEL (kvm|tcg, overrides the detection), E2E_SMP (guest CPUs,
# default 1), E2E_BUSYBOX; E2E_SLOWDOWN, E2E_SLOWDOWN_MAX (default 4) and
# E2E_L1_REFERENCE_S go to the scenario as with --env (which wins).
#
# A scenario is a bash script whose header comment lines configure the guest:
#   # e2e-qemu: ARGS        extra QEMU arguments (repeatable): IOMMU, devices
#   # e2e-qemu-late: ARGS   the same, after the harness's own devices: for a
#                           pxb-pcie, whose bus would otherwise take them
#   # e2e-append: ARGS      extra kernel command line (repeatable)
#   # e2e-timeout: SECONDS  guest wall-clock limit on the reference machine
#   # e2e-requires: PROGS   host programs the scenario needs (else skip)
#   # e2e-host-check: yes   after the guest passes, run "SCENARIO host" here
#   # e2e-disk: SIZE_MB     attach a blank SIZE_MB disk (/dev/vda) and allow
#                           reboots from it (below)
# Inside the guest the host root is "/" (writes go to a tmpfs overlay), so
# every host path, the vfioctl binary's included, is the same. The scenario
# runs as "bash SCENARIO guest" with VFIOCTL, RESULTS (a directory shared
# read-write with the host, same path on both sides), E2E_LIB, E2E_SRC,
# E2E_BUILD, E2E_PHASE, E2E_BOOT (0, or the reboot's number), E2E_SHOW
# (the host directories the scenario needs: source, build, binary, scenario),
# E2E_KERNEL and E2E_INITRD (the guest's kernel image and initramfs) set.
#
# With e2e-disk the sparse image WORK/disk.img is attached (virtio) on every
# boot. Boot 0 is the usual one (-kernel, the harness initramfs, the host root
# over 9p). When a boot's scenario exits 0 after creating $RESULTS/reboot
# (request_reboot in scenario.sh), the file is removed and the guest boots
# again from the disk with no -kernel, -initrd or -append (SeaBIOS, then the
# boot loader the scenario installed there), E2E_BOOT one higher; at most
# 5 boots ("# e2e-max-boots: N" allows up to 16, for a benchmark). A boot
# the scenario announced with expect_no_result_next_boot (it writes the
# boot's number to $RESULTS/no-result-expected) may end without a result, as
# a kernel that panics and reboots does; the next boot follows. Each boot keeps console-N.log, qemu-N.log and share/output-N.log;
# the limit (e2e-timeout) is for all boots together, and the result is the
# last boot's.
#
# Slowdown: lib/scenario.sh measures at boot 0 how much slower than the
# reference machine L1 booted and writes it to $RESULTS/calibration
# ("l1_boot_s=... slowdown=..."). The limit is then e2e-timeout x slowdown
# from the start of boot 0 (at most x E2E_SLOWDOWN_MAX). Until the file
# appears the limit is e2e-timeout x E2E_SLOWDOWN_MAX: the slowdown cannot be
# larger, so a slow L1 boot is never cut off before it could report, and a
# guest that never reaches its scenario is still stopped, at the bound that
# CTest's TIMEOUT is sized for. (A kernel that panics ends QEMU at once:
# panic=-1 and -no-reboot.) At the limit QEMU gets SIGTERM, then SIGKILL
# 10 s later.
#
# Exit status: the scenario's; 77 (skip) only when this machine lacks QEMU,
# a kernel image with its modules, busybox or a required program; 1 when the
# guest hangs past the limit or ends without a result.
set -uo pipefail

lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$lib/../../.." && pwd)"

vfioctl='' build='' cache='' work='' timeout='' kernel="${E2E_KERNEL:-}" scenario=
extra_env=()
while [ $# -gt 0 ]; do
    case "$1" in
    --vfioctl) vfioctl="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    --cache-dir) cache="$2"; shift 2 ;;
    --results-dir) work="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --kernel) kernel="$2"; shift 2 ;;
    --env)
        case "$2" in
        [A-Za-z_]*=*) extra_env+=("$2") ;;
        *) echo "run-scenario: --env needs NAME=VALUE, not '$2'" >&2; exit 2 ;;
        esac
        shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "run-scenario: unknown option $1" >&2; exit 2 ;;
    *) scenario="$1"; shift ;;
    esac
done
if [ -z "$vfioctl" ] || [ -z "$build" ] || [ -z "$scenario" ]; then
    echo "usage: run-scenario.sh --vfioctl PATH --build-dir DIR [options] SCENARIO" >&2
    exit 2
fi

skip() {
    echo "e2e: SKIP: $*"
    exit 77
}
fail() {
    echo "e2e: FAIL: $*"
    exit 1
}

[ -f "$scenario" ] || fail "no scenario file $scenario"
scenario="$(cd "$(dirname "$scenario")" && pwd)/$(basename "$scenario")"
name="$(basename "$scenario" .sh)"
build="$(mkdir -p "$build" && cd "$build" && pwd)"
cache="${cache:-$build/e2e-cache}"
work="${work:-$build/e2e-results/$name}"
case "$vfioctl" in /*) ;; *) vfioctl="$(pwd)/$vfioctl" ;; esac
[ -x "$vfioctl" ] || fail "vfioctl binary $vfioctl does not exist (build the vfioctl target first)"

# Header values of key $1, one line each.
header() {
    sed -n "s/^#[[:space:]]*$1:[[:space:]]*//p" "$scenario"
}

# What this machine must have.
qemu="${E2E_QEMU:-$(command -v qemu-system-x86_64 || true)}"
if [ -z "$qemu" ] || [ ! -x "$qemu" ]; then
    skip "qemu-system-x86_64 not found (install qemu-system-x86)"
fi
command -v timeout >/dev/null || skip "timeout(1) not found (coreutils)"
for prog in $(header e2e-requires); do
    # sbin is often not on a user's PATH; the guest runs as root.
    command -v "$prog" >/dev/null || [ -x "/usr/sbin/$prog" ] || [ -x "/sbin/$prog" ] ||
        skip "scenario $name needs $prog, which is not installed"
done

if [ -z "$kernel" ]; then
    for k in $(printf '%s\n' /boot/vmlinuz-* | sort -rV); do
        if [ -f "/lib/modules/${k#/boot/vmlinuz-}/modules.dep" ]; then
            kernel="$k"
            break
        fi
    done
    [ -n "$kernel" ] || skip "no /boot/vmlinuz-* with modules in /lib/modules (install linux-image-amd64)"
fi
[ -r "$kernel" ] || skip "kernel image $kernel is missing or not readable"
case "$kernel" in /*) ;; *) kernel="$(pwd)/$kernel" ;; esac
kver="${E2E_KERNEL_VERSION:-$(basename "$kernel")}"
kver="${kver#vmlinuz-}"

initrd="$("$lib/mkinitramfs.sh" "$kver" "$cache")"
rc=$?
[ $rc -eq 0 ] || exit $rc
case "$initrd" in /*) ;; *) initrd="$(pwd)/$initrd" ;; esac

# KVM only where it runs ordinary guests: a PVM-backed /dev/kvm hangs them.
accel="${E2E_ACCEL:-}"
if [ -z "$accel" ]; then
    accel=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ] &&
        { [ -e /sys/module/kvm_intel ] || [ -e /sys/module/kvm_amd ]; }; then
        accel=kvm
    fi
fi

timeout="${timeout:-$(header e2e-timeout | tail -n1)}"
timeout="${timeout:-240}"
case "$timeout" in
'' | *[!0-9]* | 0) fail "the time limit '$timeout' is not a whole number of seconds" ;;
esac

# The slowdown settings go to the scenario; --env wins over the environment.
for v in E2E_SLOWDOWN E2E_SLOWDOWN_MAX E2E_L1_REFERENCE_S; do
    given=
    for kv in "${extra_env[@]}"; do
        case "$kv" in "$v="*) given=1 ;; esac
    done
    [ -z "$given" ] && [ -n "${!v:-}" ] && extra_env+=("$v=${!v}")
done
slowdown_max=4
for kv in "${extra_env[@]}"; do
    case "$kv" in E2E_SLOWDOWN_MAX=*) slowdown_max="${kv#*=}" ;; esac
done
if ! [[ "$slowdown_max" =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v m="$slowdown_max" 'BEGIN { exit !(m >= 1) }'; then
    echo "run-scenario: E2E_SLOWDOWN_MAX='$slowdown_max' is not a number of at least 1" >&2
    exit 2
fi
# The guest caps its slowdown with the same value.
extra_env+=("E2E_SLOWDOWN_MAX=$slowdown_max")

# stretch SECONDS FACTOR: ceil(SECONDS x FACTOR).
stretch() {
    awk -v s="$1" -v f="$2" 'BEGIN { x = s * f; c = int(x); if (x - c > 1e-6) c++; if (c < 1) c = 1; print c }'
}
disk_mb="$(header e2e-disk | tail -n1)"
case "$disk_mb" in
'' | [1-9] | [1-9][0-9] | [1-9][0-9][0-9] | [1-9][0-9][0-9][0-9]) ;;
*) fail "e2e-disk: '$disk_mb' is not a size in MiB (1-9999)" ;;
esac
max_boots=$(header e2e-max-boots | tail -n1)
case "$max_boots" in '' | *[!0-9]*) max_boots=5 ;; esac
[ "$max_boots" -le 16 ] || max_boots=16

rm -rf "$work"
share="$work/share"
mkdir -p "$share" || fail "cannot create $share"
case "$share$vfioctl$src$build$kernel$initrd" in
*[[:space:]\'\"\\]*) fail "paths with spaces or quotes are not supported: $share $vfioctl $src" ;;
esac

show_dirs="$src $build $(dirname "$vfioctl") $(dirname "$scenario")"

# write_run_sh BOOT: the script the guest's init runs.
write_run_sh() {
    cat >"$share/run.sh" <<RUN
export VFIOCTL='$vfioctl'
export RESULTS='$share'
export E2E_LIB='$lib'
export E2E_SRC='$src'
export E2E_BUILD='$build'
export E2E_PHASE=guest
export E2E_BOOT=$1
export E2E_SHOW='$show_dirs'
export E2E_KERNEL='$kernel'
export E2E_INITRD='$initrd'
RUN
    for kv in "${extra_env[@]}"; do
        printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$share/run.sh"
    done
    cat >>"$share/run.sh" <<RUN
cd "\$RESULTS" || exit 125
exec /bin/bash '$scenario' guest
RUN
}

# The guest covers /tmp and /run with tmpfs; the trees it needs from there
# are shown at their host paths.
binds=
for p in "$src" "$build" "$(dirname "$vfioctl")" "$(dirname "$scenario")" "$share" \
    "$(dirname "$kernel")" "$(dirname "$initrd")"; do
    case "$p" in
    /tmp/* | /run/*)
        top="$(echo "$p" | cut -d/ -f1-3)"
        case ",$binds," in *",$top,"*) ;; *) binds="${binds:+$binds,}$top" ;; esac
        ;;
    esac
done

read -r -a scenario_qemu <<<"$(header e2e-qemu | tr '\n' ' ')"
read -r -a scenario_qemu_late <<<"$(header e2e-qemu-late | tr '\n' ' ')"
append="console=ttyS0 panic=-1 e2e.results=$share${binds:+ e2e.bind=$binds} $(header e2e-append | tr '\n' ' ')"
if [ -n "$disk_mb" ]; then
    truncate -s "${disk_mb}M" "$work/disk.img" || fail "cannot create $work/disk.img"
fi

# boot_cmd BOOT: the QEMU command of boot BOOT in the array cmd, its console
# log in $console and QEMU's own output in $qemu_log.
boot_cmd() {
    local suffix=
    [ -n "$disk_mb" ] && suffix="-$1"
    console="$work/console$suffix.log"
    qemu_log="$work/qemu$suffix.log"
    # One vCPU: under TCG on a small, busy host a second vCPU makes the guest
    # slower, not faster (measured 9.5 s against 13.5 s with one busy host core).
    # shellcheck disable=SC2054 # commas separate QEMU suboptions
    cmd=(
        "$qemu" -accel "$accel" -cpu max -m 2048 -smp "${E2E_SMP:-1}"
        -machine q35,kernel-irqchip=split -nodefaults -no-user-config -display none -no-reboot
        "${scenario_qemu[@]}"
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
        -virtfs "local,path=$share,mount_tag=results,security_model=none"
        -chardev "file,id=console,path=$console" -serial chardev:console
        "${scenario_qemu_late[@]}"
    )
    [ -n "$disk_mb" ] && cmd+=(-drive "file=$work/disk.img,format=raw,if=virtio")
    # Later boots start from the disk: firmware, boot loader, kernel.
    [ "$1" = 0 ] && cmd+=(-kernel "$kernel" -initrd "$initrd" -append "${append% }")
    return 0
}

show_output() {
    local f
    for f in "$share"/output-*.log "$share/output.log"; do
        if [ -s "$f" ]; then
            echo "---- scenario output${disk_mb:+ ($(basename "$f" .log))} ----"
            cat "$f"
            echo "---- end of scenario output ----"
        fi
    done
}
show_console() {
    if [ -s "$qemu_log" ]; then
        echo "---- qemu ----"
        tail -n 20 "$qemu_log"
    fi
    echo "---- last 40 console lines ($console) ----"
    tail -n 40 "$console" 2>/dev/null
    echo "----"
}

# The guest's limit: e2e-timeout x the slowdown the guest reported, and
# until it has, x the largest slowdown it can report (see the top).
slowdown=
limit_s="$(stretch "$timeout" "$slowdown_max")"
limit_why="e2e-timeout ${timeout}s x E2E_SLOWDOWN_MAX ${slowdown_max}, no calibration from the guest"

# read_calibration: once the guest wrote $share/calibration, prints it and
# sets slowdown, limit_s and limit_why from it.
read_calibration() {
    local line f
    [ -z "$slowdown" ] && [ -s "$share/calibration" ] || return 0
    line="$(head -n1 "$share/calibration")"
    f="$(echo "$line" | sed -n 's/.*\bslowdown=\([0-9.]*\).*/\1/p')"
    if ! [[ "$f" =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v f="$f" 'BEGIN { exit !(f > 0) }'; then
        echo "e2e: calibration: '$line' has no slowdown; keeping the limit of ${limit_s}s"
        slowdown=unknown
        return 0
    fi
    slowdown="$(awk -v f="$f" -v m="$slowdown_max" 'BEGIN { if (f > m) f = m; printf "%.2f", f }')"
    limit_s="$(stretch "$timeout" "$slowdown")"
    limit_why="e2e-timeout ${timeout}s x slowdown ${slowdown}"
    echo "e2e: calibration: $line; limit ${limit_s}s ($limit_why)"
}

# stop_qemu: SIGTERM to QEMU, SIGKILL 10 s later if it is still there.
stop_qemu() {
    [ -n "$qpid" ] || return 0
    kill -TERM "$qpid" 2>/dev/null
    for _ in $(seq 10); do
        kill -0 "$qpid" 2>/dev/null || return 0
        sleep 1
    done
    kill -KILL "$qpid" 2>/dev/null
    return 0
}
# on_signal NAME STATUS: QEMU runs in the background, where it ignores
# SIGINT: stop it with the harness.
# shellcheck disable=SC2317 # called from the traps below
on_signal() {
    echo "e2e: SIG$1: stopping the guest"
    stop_qemu
    exit "$2"
}
qpid=
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

echo "e2e: scenario $name: kernel $kver, accel $accel, timeout ${timeout}s x the guest's slowdown (at most ${slowdown_max}: ${limit_s}s)${disk_mb:+, disk ${disk_mb} MiB}"
echo "e2e: results in $work"
start=$(date +%s)
boot=0
: >"$work/qemu-command"
while :; do
    boot_cmd "$boot"
    write_run_sh "$boot"
    rm -f "$share/exit-code" "$share/reboot"
    printf '%q ' "${cmd[@]}" >>"$work/qemu-command"
    echo >>"$work/qemu-command"
    if [ -n "$disk_mb" ]; then
        if [ "$boot" = 0 ]; then
            echo "e2e: boot 0: the harness's kernel and initramfs"
        else
            echo "e2e: boot $boot: from the disk"
        fi
    fi
    boot_start=$(date +%s)
    # In the background, so that the limit can follow the calibration.
    "${cmd[@]}" </dev/null >"$qemu_log" 2>&1 &
    qpid=$!
    expired=
    while kill -0 "$qpid" 2>/dev/null; do
        read_calibration
        if [ "$(date +%s)" -ge $((start + limit_s)) ]; then
            expired=1
            stop_qemu
            break
        fi
        sleep 1
    done
    wait "$qpid"
    qrc=$?
    qpid=
    read_calibration
    now=$(date +%s)
    secs=$((now - start))
    boot_secs=$((now - boot_start))
    if [ -n "$disk_mb" ] && [ -f "$share/output.log" ]; then
        mv -f "$share/output.log" "$share/output-$boot.log"
    fi
    if [ -n "$expired" ]; then
        show_output
        show_console
        fail "guest did not finish within ${limit_s}s ($limit_why)${disk_mb:+ (boot $boot)}"
    fi
    if [ ! -f "$share/exit-code" ] && [ -n "$disk_mb" ] &&
        [ "$(cat "$share/no-result-expected" 2>/dev/null)" = "$boot" ]; then
        # The scenario said that this boot ends by itself (a kernel that
        # panics and reboots: expect_no_result_next_boot in scenario.sh).
        rm -f "$share/no-result-expected"
        echo "e2e: boot $boot ended after ${boot_secs}s without a scenario result, as the scenario expected (qemu exit status $qrc)"
        boot=$((boot + 1))
        if [ "$boot" -ge "$max_boots" ]; then
            fail "the scenario asked for more than $max_boots boots"
        fi
        continue
    fi
    if [ ! -f "$share/exit-code" ]; then
        show_output
        show_console
        fail "guest ended after ${secs}s without a scenario result${disk_mb:+ (boot $boot)} (qemu exit status $qrc)"
    fi
    rc="$(cat "$share/exit-code")"
    [ -n "$disk_mb" ] && echo "e2e: boot $boot took ${boot_secs}s, scenario exit status $rc"
    if [ "$rc" = 0 ] && [ -f "$share/reboot" ]; then
        rm -f "$share/reboot"
        if [ -z "$disk_mb" ]; then
            show_output
            fail "the scenario asked for a reboot, which needs '# e2e-disk: SIZE_MB'"
        fi
        boot=$((boot + 1))
        if [ "$boot" -ge "$max_boots" ]; then
            show_output
            fail "the scenario asked for more than $max_boots boots"
        fi
        continue
    fi
    break
done
show_output
echo "e2e: guest finished in ${secs}s of its ${limit_s}s ($limit_why)${disk_mb:+ after $((boot + 1)) boots}, scenario exit status $rc"

if [ "$rc" = 0 ] && [ "$(header e2e-host-check | tail -n1)" = yes ]; then
    echo "---- host check ----"
    (
        export VFIOCTL="$vfioctl" RESULTS="$share" E2E_LIB="$lib" E2E_SRC="$src" \
            E2E_BUILD="$build" E2E_PHASE=host
        for kv in "${extra_env[@]}"; do export "${kv?}"; done
        cd "$share" && exec bash "$scenario" host
    )
    rc=$?
    echo "e2e: host check exit status $rc"
fi

case "$rc" in
0) echo "e2e: PASS: $name" ;;
77) echo "e2e: SKIP: $name (see the scenario output)" ;;
*) show_console
   echo "e2e: FAIL: $name (exit status $rc)" ;;
esac
exit "$rc"
