#!/bin/bash
# The guest half of bench/hugepages.sh: how long "vfioctl vm start --gpu"
# takes until QEMU runs (QMP "running"), which includes preallocating the
# guest RAM and VFIO pinning all of it for the passed-through e1000e, with
# the RAM on 4 KiB pages (hugepages = "off") against 2 MiB huge pages
# (hugepages = "2M"), the two alternating in one L1 boot. L1 has two NUMA
# nodes, the e1000e on node 1 (pxb-pcie), and 256 2 MiB huge pages (512 MiB)
# reserved on node 1 from its command line; node 1 has 1.5 GiB, so that a
# 512 MiB L2 on 4 KiB pages fits there beside the reserved pool: both kinds
# of runs are bound to node 1 and preallocated, and differ only in the page
# size. One warm-up start of each kind is not counted.
# e2e-qemu: -smp 2
# e2e-qemu: -object memory-backend-ram,id=m0,size=512M -object memory-backend-ram,id=m1,size=1536M
# e2e-qemu: -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu-late: -device pxb-pcie,id=pxb1,bus_nr=128,numa_node=1,bus=pcie.0
# e2e-qemu-late: -device pcie-root-port,id=rp1,bus=pxb1,chassis=9,slot=0
# e2e-qemu-late: -device e1000e,romfile=,bus=rp1
# e2e-append: intel_iommu=on iommu=pt no_timer_check hugepagesz=2M hugepages=1:256
# e2e-timeout: 1800
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

rounds="${BENCH_ROUNDS:-5}"
memory="${BENCH_MEMORY:-512}"
timings="$RESULTS/timings.tsv"
kernel="$(printf '%s\n' /boot/vmlinuz-* | sort -V | tail -1)"
[ -e "$kernel" ] || fail "no /boot/vmlinuz-*"
pool=/sys/devices/system/node/node1/hugepages/hugepages-2048kB

step "facts"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
[ "$(cat "/sys/bus/pci/devices/$nic/numa_node")" = 1 ] || fail "$nic is not on node 1"
free_pages="$(cat "$pool/free_hugepages")"
[ "$free_pages" -ge $((memory / 2)) ] || fail "node 1 has $free_pages free huge pages, $((memory / 2)) needed"
mkdir -p /dev/hugepages || fail "cannot make /dev/hugepages"
mount -t hugetlbfs none /dev/hugepages || fail "cannot mount a hugetlbfs"
grep -E 'MemTotal|MemFree' /sys/devices/system/node/node1/meminfo
echo "node 1: $free_pages free 2 MiB huge pages; L2: $memory MiB, $rounds rounds"
for pages in off 2M; do
    mkdir -p "/tmp/$pages"
    printf 'memory = %s\ncpus = 1\naccel = "tcg"\nnuma = 1\nhugepages = "%s"\ngpus = ["%s"]\n[boot]\nkernel = "%s"\n' \
        "$memory" "$pages" "$nic" "$kernel" >"/tmp/$pages/l2.toml"
done
printf 'round\tpages\tstart_s\tbackend\tpage_kib\n' >"$timings"

# start_stop ROUND PAGES: one start, timed, checked and recorded, then a stop.
start_stop() {
    local tag="r$1_$2" t0 t1 s backend kib
    t0="$(date +%s.%N)"
    run_quiet "$tag" "$VFIOCTL" --json vm start "/tmp/$2/l2.toml" --wait "$(limit 600)"
    t1="$(date +%s.%N)"
    expect_rc "vm start ($tag)" 0
    backend="$(json_eval "$RESULTS/$tag.out" 'd["placement"]["backend"]')"
    kib="$(json_eval "$RESULTS/$tag.out" 'd["placement"]["page_kib"]')"
    case "$2" in
    off) [ "$backend" = memory-backend-ram ] || fail "$tag: backend $backend" ;;
    2M) [ "$backend/$kib" = memory-backend-file/2048 ] || fail "$tag: backend $backend, $kib KiB" ;;
    esac
    [ "$(json_eval "$RESULTS/$tag.out" 'd["placement"]["node"]')" = 1 ] || fail "$tag: not on node 1"
    s="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
    echo "$tag: ${s}s ($backend, $kib KiB pages, $(cat "$pool/free_hugepages") huge pages free)"
    [ "$1" = 0 ] || printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$s" "$backend" "$kib" >>"$timings"
    run_quiet "stop_$tag" "$VFIOCTL" vm stop l2 --timeout 2
    expect_rc "vm stop ($tag)" 0
}

for r in $(seq 0 "$rounds"); do
    if [ "$r" = 0 ]; then step "round 0 (warm-up, not counted)"; else step "round $r"; fi
    if [ $((r % 2)) = 0 ]; then
        start_stop "$r" off
        start_stop "$r" 2M
    else
        start_stop "$r" 2M
        start_stop "$r" off
    fi
done
[ "$(cat "$pool/free_hugepages")" = "$free_pages" ] || fail "huge pages were not given back"
expect_driver "$nic" e1000e
ok "$rounds rounds"
