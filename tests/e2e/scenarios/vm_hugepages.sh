#!/bin/bash
# Huge pages on a real kernel: L1 has two NUMA nodes (as in vm_numa) with
# the e1000e behind a pxb-pcie on node 1, and 160 2 MiB huge pages reserved
# on node 1 from its kernel command line (the node-specific hugepages=N:COUNT
# form). Without a hugetlbfs an explicit hugepages = "2M" refuses before QEMU
# starts and gives the device back; with one mounted, "vm start --gpu" with
# the default hugepages = "auto" backs L2's 256 MiB with 128 of node 1's huge
# pages, preallocated: free_hugepages on node 1 drops by 128, the guest RAM
# mapping in /proc/PID/numa_maps is "huge" and on N1 only, and the pages
# come back when L2 stops.
# e2e-qemu: -smp 2
# e2e-qemu: -object memory-backend-ram,id=m0,size=1G -object memory-backend-ram,id=m1,size=1G
# e2e-qemu: -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu-late: -device pxb-pcie,id=pxb1,bus_nr=128,numa_node=1,bus=pcie.0
# e2e-qemu-late: -device pcie-root-port,id=rp1,bus=pxb1,chassis=9,slot=0
# e2e-qemu-late: -device e1000e,romfile=,bus=rp1
# e2e-append: intel_iommu=on iommu=pt no_timer_check hugepagesz=2M hugepages=1:160
# e2e-timeout: 300
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

kernel="$(printf '%s\n' /boot/vmlinuz-* | sort -V | tail -1)"
[ -e "$kernel" ] || kernel=
[ -n "$kernel" ] || skip "no /boot/vmlinuz-*"
pool=/sys/devices/system/node/node1/hugepages/hugepages-2048kB

step "facts: the e1000e on node 1, 160 huge pages reserved there at boot"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e
[ "$(cat "/sys/bus/pci/devices/$nic/numa_node")" = 1 ] ||
    fail "$nic has numa_node $(cat "/sys/bus/pci/devices/$nic/numa_node"), not 1"
grep -i huge /proc/meminfo
echo "node 0: $(cat /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages) node 1: $(cat "$pool/nr_hugepages")"
[ "$(cat "$pool/nr_hugepages")" = 160 ] ||
    fail "node 1 has $(cat "$pool/nr_hugepages") 2 MiB huge pages, not the 160 of hugepages=1:160"
[ "$(cat /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages)" = 0 ] ||
    fail "node 0 has huge pages too"
free_before="$(cat "$pool/free_hugepages")"
[ "$free_before" = 160 ] || fail "node 1 has $free_before free huge pages, not 160"
ok "$nic on node 1; node 1 has 160 free 2 MiB huge pages from the command line"

step "no hugetlbfs: an explicit hugepages = 2M refuses before QEMU starts"
grep -q ' hugetlbfs ' /proc/mounts && fail "a hugetlbfs is mounted already"
printf 'memory = 256\naccel = "tcg"\nhugepages = "2M"\ngpus = ["%s"]\n[boot]\nkernel = "%s"\n' \
    "$nic" "$kernel" >/tmp/huge.toml
run nomount "$VFIOCTL" vm start /tmp/huge.toml
expect_rc "vm start with hugepages = 2M and no hugetlbfs" 1
expect_text nomount 'no hugetlbfs is mounted with pagesize=2M'
expect_driver "$nic" e1000e
[ "$(cat "$pool/free_hugepages")" = 160 ] || fail "the refusal took huge pages"

step "vm start --gpu, hugepages = auto: RAM on node 1's huge pages"
mkdir -p /dev/hugepages || fail "cannot make /dev/hugepages"
mount -t hugetlbfs none /dev/hugepages || fail "cannot mount a hugetlbfs on /dev/hugepages"
grep ' hugetlbfs ' /proc/self/mountinfo
run start "$VFIOCTL" --json vm start l2 --kernel "$kernel" --memory 256 --cpus 1 --accel tcg --gpu "$nic" \
    --wait "$(limit 60)"
expect_rc "vm start --gpu" 0
json_check "$RESULTS/start.out" 'd["placement"]["node"] == 1' "placement chose node 1"
json_check "$RESULTS/start.out" 'd["placement"]["backend"] == "memory-backend-file"' \
    "a file backend (huge pages)"
json_check "$RESULTS/start.out" 'd["placement"]["page_kib"] == 2048' "2 MiB pages"
json_check "$RESULTS/start.out" 'd["placement"]["mem_path"] == "/dev/hugepages"' \
    "from the hugetlbfs on /dev/hugepages"
json_check "$RESULTS/start.out" '"RAM bound to NUMA node 1 (2 MiB huge pages from /dev/hugepages)" in d["placement"]["summary"]' \
    "the summary says so"
json_check "$RESULTS/start.out" 'd["placement"]["fallbacks"] == []' "no fallbacks"
pid="$(json_eval "$RESULTS/start.out" 'd["pid"]')"
echo "QEMU pid $pid"
free_during="$(cat "$pool/free_hugepages")"
echo "node 1 free 2 MiB huge pages: $free_before before, $free_during with L2 running"
[ $((free_before - free_during)) = 128 ] ||
    fail "node 1's free huge pages dropped by $((free_before - free_during)), not 128 (256 MiB)"
ok "L2 took 128 huge pages on node 1 (256 MiB, preallocated)"
grep -E ' huge ' "/proc/$pid/numa_maps" | tee "$RESULTS/numa_maps"
python3 - "/proc/$pid/numa_maps" <<'PY' || fail "L2's RAM is not on node 1's huge pages"
import re, sys
# The guest RAM: a bind:1 hugetlb mapping of 128 pages of 2 MiB, all on N1.
for line in open(sys.argv[1]):
    w = line.split()
    if "bind:1" not in w or "huge" not in w or "kernelpagesize_kB=2048" not in w:
        continue
    m = re.search(r" N1=(\d+)", line)
    if m and int(m.group(1)) == 128 and not re.search(r" N0=", line):
        sys.exit(0)
sys.exit(1)
PY
ok "numa_maps: the guest RAM is a huge-page mapping bound to node 1, N1=128"

step "vm stop gives the device and the huge pages back"
run stop "$VFIOCTL" vm stop l2 --timeout 2
expect_rc "vm stop" 0
expect_driver "$nic" e1000e
free_after="$(cat "$pool/free_hugepages")"
[ "$free_after" = "$free_before" ] ||
    fail "node 1 has $free_after free huge pages after the stop, not $free_before"
ok "node 1 has its $free_after free huge pages back"
