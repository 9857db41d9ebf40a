#!/bin/bash
# 'vm export' as libvirt reads it: the exported domain is defined and
# started by a real libvirtd in L1, which binds the e1000e itself (a
# managed hostdev), starts QEMU with it, and gives it back on destroy.
# 'vm export' itself binds nothing.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt no_timer_check
# e2e-timeout: 150
# e2e-requires: libvirtd virsh qemu-system-x86_64
. "$E2E_LIB/scenario.sh"

kernel="$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)"
[ -n "$kernel" ] || skip "no /boot/vmlinuz-*"

step "facts: the e1000e on its driver"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
load_vfio
expect_driver "$nic" e1000e

step "vm export: the domain, nothing bound"
mkdir -p /etc/vfioctl/vms
cat >/etc/vfioctl/vms/lv.toml <<TOML
memory = "256M"
cpus = 1
accel = "tcg"
gpus = ["$nic"]
[boot]
kernel = "$kernel"
append = "console=ttyS0 panic=-1"
TOML
run export "$VFIOCTL" vm export lv --output "$RESULTS/lv.xml"
expect_rc "vm export" 0
expect_driver "$nic" e1000e
cat "$RESULTS/lv.xml"

step "libvirtd in L1"
# The QEMU driver resolves its compiled-in user and group before it reads
# qemu.conf; the package's postinst creates them on a real install.
grep -q '^libvirt-qemu:' /etc/passwd || echo 'libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin' >>/etc/passwd
grep -q '^libvirt-qemu:' /etc/group || echo 'libvirt-qemu:x:64055:' >>/etc/group
grep -q '^kvm:' /etc/group || echo 'kvm:x:64056:' >>/etc/group
mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt/qemu /var/log/libvirt /var/cache/libvirt
cat >/etc/libvirt/qemu.conf <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
LIBVIRT_LOG_OUTPUTS="2:stderr" libvirtd --verbose >"$RESULTS/libvirtd.log" 2>&1 &
lvpid=$!
up=0
for _ in $(seq "$(limit 60)"); do
    if virsh -c qemu:///system version >"$RESULTS/virsh-version.out" 2>&1; then up=1; break; fi
    kill -0 $lvpid 2>/dev/null || { wait $lvpid; echo "libvirtd exited with status $?"; break; }
    sleep 1
done
grep ' error : ' "$RESULTS/libvirtd.log" | tail -20
cat "$RESULTS/virsh-version.out"
[ $up = 1 ] || fail "libvirtd did not answer: $(cat "$RESULTS/libvirtd.log")"
ok "libvirtd answers"

step "virsh define and start: libvirt binds the e1000e and starts QEMU with it"
run define virsh -c qemu:///system define "$RESULTS/lv.xml"
expect_rc "virsh define" 0
run start virsh -c qemu:///system start lv
expect_rc "virsh start" 0
run state virsh -c qemu:///system domstate lv
expect_text state running
expect_driver "$nic" vfio-pci
pgrep -a qemu-system | grep -q -- "host=$nic\|\"host\":\"$nic\"" || fail "QEMU has no vfio-pci host=$nic: $(pgrep -a qemu-system)"
ok "QEMU runs with $nic"
# The guest address vm export gave it: slot 0 behind its root port at
# 00:10.0, the only bridge (libvirt added no USB controller and no port).
run pci virsh -c qemu:///system qemu-monitor-command lv --hmp "info pci"
expect_rc "info pci" 0
[ "$(grep -c "PCI bridge: PCI device 1b36:000c" "$RESULTS/pci.out")" = 1 ] ||
    fail "L2 has other than one pcie-root-port"
grep -A1 "Bus  0, device  16, function 0:" "$RESULTS/pci.out" | grep -q "1b36:000c" ||
    fail "the root port is not at 00:10.0"
grep -A1 "Bus  1, device   0, function 0:" "$RESULTS/pci.out" | grep -q "8086:10d3" ||
    fail "8086:10d3 is not at 01:00.0 on L2's bus"
ok "8086:10d3 is at 01:00.0 on L2's bus, behind the root port at 00:10.0"

step "virsh destroy gives the e1000e back"
run destroy virsh -c qemu:///system destroy lv
expect_rc "virsh destroy" 0
run undefine virsh -c qemu:///system undefine lv
expect_rc "virsh undefine" 0
expect_driver "$nic" e1000e
kill $lvpid
