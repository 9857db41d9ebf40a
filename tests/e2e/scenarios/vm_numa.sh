#!/bin/bash
# NUMA placement on a real kernel: L1 has two NUMA nodes (CPU 0 and 1 GiB
# on node 0, CPU 1 and 1 GiB on node 1) and the e1000e behind a pxb-pcie
# expander bridge on node 1, so the kernel gives it numa_node 1 (ACPI _PXM).
# "vm start --gpu" with the default numa = "auto" binds L2's RAM to node 1
# (no huge pages reserved: 4 KiB pages, and says why) and pins L2's vCPU
# threads to node 1's CPU; /proc/PID/numa_maps and each thread's
# Cpus_allowed_list show it. An explicit hugepages = "2M" that L1 cannot
# meet refuses and gives the device back. L2 is stopped while it boots.
# e2e-qemu: -smp 2
# e2e-qemu: -object memory-backend-ram,id=m0,size=1G -object memory-backend-ram,id=m1,size=1G
# e2e-qemu: -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu-late: -device pxb-pcie,id=pxb1,bus_nr=128,numa_node=1,bus=pcie.0
# e2e-qemu-late: -device pcie-root-port,id=rp1,bus=pxb1,chassis=9,slot=0
# e2e-qemu-late: -device e1000e,romfile=,bus=rp1
# e2e-append: intel_iommu=on iommu=pt no_timer_check
# e2e-timeout: 300
# e2e-requires: python3
. "$E2E_LIB/scenario.sh"

kernel="$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)"
[ -n "$kernel" ] || skip "no /boot/vmlinuz-*"

step "facts: two nodes, the e1000e on node 1"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e
[ "$(cat "/sys/bus/pci/devices/$nic/numa_node")" = 1 ] ||
    fail "$nic has numa_node $(cat "/sys/bus/pci/devices/$nic/numa_node"), not 1"
node1_cpus="$(cat /sys/devices/system/node/node1/cpulist)"
ok "$nic on node 1, node 1's CPUs: $node1_cpus"
run status "$VFIOCTL" --json status
json_check "$RESULTS/status.out" 'len(d["numa"]["nodes"]) == 2' "status sees two NUMA nodes"
json_check "$RESULTS/status.out" 'd["numa"]["nodes"][1]["cpus"] == "'"$node1_cpus"'"' \
    "status has node 1's cpulist"

step "an unmet explicit wish refuses before QEMU starts"
printf 'memory = 256\naccel = "tcg"\nhugepages = "2M"\ngpus = ["%s"]\n[boot]\nkernel = "%s"\n' \
    "$nic" "$kernel" >/tmp/huge.toml
run huge "$VFIOCTL" vm start /tmp/huge.toml
expect_rc "vm start with hugepages = 2M" 1
expect_text huge 'hugepages = "2M" cannot be met'
expect_driver "$nic" e1000e

step "vm start --gpu: RAM bound to node 1, vCPUs pinned"
run start "$VFIOCTL" --json vm start l2 --kernel "$kernel" --memory 256 --cpus 1 --accel tcg --gpu "$nic"
expect_rc "vm start --gpu" 0
json_check "$RESULTS/start.out" 'd["placement"]["node"] == 1' "placement chose node 1"
json_check "$RESULTS/start.out" 'd["placement"]["backend"] == "memory-backend-ram"' \
    "4 KiB pages (no huge pages reserved)"
json_check "$RESULTS/start.out" 'd["placement"]["pin_cpus"] == "'"$node1_cpus"'"' "pinned to node 1's CPUs"
json_check "$RESULTS/start.out" 'len(d["placement"]["pinned_threads"]) == 1' "one vCPU thread pinned"
pid="$(json_eval "$RESULTS/start.out" 'd["pid"]')"
echo "QEMU pid $pid"
grep -E 'bind:1 ' "/proc/$pid/numa_maps" | tee "$RESULTS/numa_maps"
python3 - "/proc/$pid/numa_maps" <<'PY' || fail "L2's RAM is not bound to node 1"
import re, sys
# The guest RAM: a bind:1 mapping of at least 256 MiB of 4 KiB pages, all on N1.
for line in open(sys.argv[1]):
    if " bind:1 " not in line:
        continue
    m = re.search(r" N1=(\d+)", line)
    other = re.search(r" N0=(\d+)", line)
    if m and int(m.group(1)) * 4 >= 256 * 1024 and not other:
        sys.exit(0)
sys.exit(1)
PY
ok "L2's RAM is bound to node 1 and resident there"
for tid in $(json_eval "$RESULTS/start.out" '" ".join(str(t) for t in d["placement"]["pinned_threads"])'); do
    allowed="$(awk '/^Cpus_allowed_list/ {print $2}' "/proc/$pid/task/$tid/status")"
    [ "$allowed" = "$node1_cpus" ] || fail "vCPU thread $tid may run on $allowed, not $node1_cpus"
    ok "vCPU thread $tid pinned to $allowed"
done

step "vm stop gives the device back"
run stop "$VFIOCTL" vm stop l2 --timeout 2
expect_rc "vm stop" 0
expect_driver "$nic" e1000e
