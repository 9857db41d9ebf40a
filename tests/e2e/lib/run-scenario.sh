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
#   --timeout SECONDS   guest wall-clock limit (default: the scenario's
#                       e2e-timeout, else 240)
#   --kernel PATH       kernel image (default: the newest /boot/vmlinuz-* whose
#                       modules are installed)
#   --env NAME=VALUE    also export NAME to the scenario (repeatable)
# Environment: E2E_QEMU (QEMU binary), E2E_KERNEL (kernel image),
# E2E_ACCEL (kvm|tcg, overrides the detection), E2E_SMP (guest CPUs,
# default 1), E2E_BUSYBOX.
#
# A scenario is a bash script whose header comment lines configure the guest:
#   # e2e-qemu: ARGS        extra QEMU arguments (repeatable): IOMMU, devices
#   # e2e-append: ARGS      extra kernel command line (repeatable)
#   # e2e-timeout: SECONDS  guest wall-clock limit
#   # e2e-requires: PROGS   host programs the scenario needs (else skip)
#   # e2e-host-check: yes   after the guest passes, run "SCENARIO host" here
# Inside the guest the host root is "/" (writes go to a tmpfs overlay), so
# every host path, the vfioctl binary's included, is the same. The scenario
# runs as "bash SCENARIO guest" with VFIOCTL, RESULTS (a directory shared
# read-write with the host, same path on both sides), E2E_LIB, E2E_SRC,
# E2E_BUILD and E2E_PHASE set.
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
    command -v "$prog" >/dev/null || skip "scenario $name needs $prog, which is not installed"
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
kver="${E2E_KERNEL_VERSION:-$(basename "$kernel")}"
kver="${kver#vmlinuz-}"

initrd="$("$lib/mkinitramfs.sh" "$kver" "$cache")"
rc=$?
[ $rc -eq 0 ] || exit $rc

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

rm -rf "$work"
share="$work/share"
mkdir -p "$share" || fail "cannot create $share"
case "$share$vfioctl$src$build" in
*[[:space:]\'\"\\]*) fail "paths with spaces or quotes are not supported: $share $vfioctl $src" ;;
esac

cat >"$share/run.sh" <<RUN
export VFIOCTL='$vfioctl'
export RESULTS='$share'
export E2E_LIB='$lib'
export E2E_SRC='$src'
export E2E_BUILD='$build'
export E2E_PHASE=guest
RUN
for kv in "${extra_env[@]}"; do
    printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$share/run.sh"
done
cat >>"$share/run.sh" <<RUN
cd "\$RESULTS" || exit 125
exec /bin/bash '$scenario' guest
RUN

# The guest covers /tmp and /run with tmpfs; the trees it needs from there
# are shown at their host paths.
binds=
for p in "$src" "$build" "$(dirname "$vfioctl")" "$(dirname "$scenario")" "$share"; do
    case "$p" in
    /tmp/* | /run/*)
        top="$(echo "$p" | cut -d/ -f1-3)"
        case ",$binds," in *",$top,"*) ;; *) binds="${binds:+$binds,}$top" ;; esac
        ;;
    esac
done

read -r -a scenario_qemu <<<"$(header e2e-qemu | tr '\n' ' ')"
append="console=ttyS0 panic=-1 e2e.results=$share${binds:+ e2e.bind=$binds} $(header e2e-append | tr '\n' ' ')"
# One vCPU: under TCG on a small, busy host a second vCPU makes the guest
# slower, not faster (measured 9.5 s against 13.5 s with one busy host core).
# shellcheck disable=SC2054 # commas separate QEMU suboptions
cmd=(
    "$qemu" -accel "$accel" -cpu max -m 2048 -smp "${E2E_SMP:-1}"
    -machine q35,kernel-irqchip=split -nodefaults -no-user-config -display none -no-reboot
    "${scenario_qemu[@]}"
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
    -virtfs "local,path=$share,mount_tag=results,security_model=none"
    -chardev "file,id=console,path=$work/console.log" -serial chardev:console
    -kernel "$kernel" -initrd "$initrd" -append "${append% }"
)
printf '%q ' "${cmd[@]}" >"$work/qemu-command"
echo >>"$work/qemu-command"

echo "e2e: scenario $name: kernel $kver, accel $accel, timeout ${timeout}s"
echo "e2e: results in $work"
start=$(date +%s)
timeout -k 10 "$timeout" "${cmd[@]}" </dev/null >"$work/qemu.log" 2>&1
qrc=$?
secs=$(($(date +%s) - start))

show_output() {
    if [ -s "$share/output.log" ]; then
        echo "---- scenario output ----"
        cat "$share/output.log"
        echo "---- end of scenario output ----"
    fi
}
show_console() {
    if [ -s "$work/qemu.log" ]; then
        echo "---- qemu ----"
        tail -n 20 "$work/qemu.log"
    fi
    echo "---- last 40 console lines ($work/console.log) ----"
    tail -n 40 "$work/console.log" 2>/dev/null
    echo "----"
}

if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
    show_output
    show_console
    fail "guest did not finish within ${timeout}s"
fi
if [ ! -f "$share/exit-code" ]; then
    show_output
    show_console
    fail "guest ended after ${secs}s without a scenario result (qemu exit status $qrc)"
fi
rc="$(cat "$share/exit-code")"
show_output
echo "e2e: guest finished in ${secs}s, scenario exit status $rc"

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
