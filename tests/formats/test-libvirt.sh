#!/usr/bin/env bash
# 'vfioctl vm export' against libvirt's own schema: exports several
# profiles on the seed-after and DGX fixture roots with the real binary and
# runs virt-xml-validate (libvirt-clients, with xmllint from libxml2-utils;
# both are setup dependencies, so a missing one fails) on each domain. A
# negative control first proves the validator rejects a broken domain.
#   tests/formats/test-libvirt.sh VFIOCTL MKHOST
set -uo pipefail
bin=${1:?usage: test-libvirt.sh VFIOCTL MKHOST}
mkhost=${2:?usage: test-libvirt.sh VFIOCTL MKHOST}

for tool in virt-xml-validate xmllint; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL $tool is not installed (scripts/setup installs libvirt-clients and libxml2-utils)"
        exit 1
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Profiles come from the fixture roots only, never the user's own.
export XDG_CONFIG_HOME=$tmp/xdg VFIOCTL_RUN_DIR=$tmp/run
failed=0
checks=0
pass() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); echo "FAIL $*"; failed=1; }

# host ROOT: a fixture root with a kernel, a disk image and OVMF in place.
host() {
    "$mkhost" "$1" "$2" >/dev/null || { echo "FAIL vfioctl-mkhost $1"; exit 1; }
    mkdir -p "$2/boot" "$2/etc/vfioctl/vms" "$2/usr/share/OVMF" "$2/var/lib/images"
    echo kernel >"$2/boot/vmlinuz-test"
    echo initrd >"$2/boot/initrd-test"
    echo disk >"$2/var/lib/images/dev.qcow2"
    echo code >"$2/usr/share/OVMF/OVMF_CODE_4M.fd"
    echo vars >"$2/usr/share/OVMF/OVMF_VARS_4M.fd"
}
kernel_boot='[boot]
kernel = "/boot/vmlinuz-test"
initrd = "/boot/initrd-test"
append = "console=ttyS0 quiet x=\"a&b<c>\""'

seed=$tmp/seed
dgx=$tmp/dgx
host seed-after "$seed"
host dgx "$dgx"

cat >"$seed/etc/vfioctl/vms/gpu-uefi.toml" <<TOML
memory = "16G"
cpus = 8
accel = "kvm"
firmware = "uefi"
gpus = ["8a:00.0"]
extra_args = ["-device", "pvpanic", "-msg", "timestamp=on"]
$kernel_boot
TOML
cat >"$seed/etc/vfioctl/vms/disk.toml" <<TOML
memory = "2G"
accel = "tcg"
share_host_root = true
ssh_port = 2222
console_log = "/var/log/vfioctl-disk.log"
[boot]
disk = "/var/lib/images/dev.qcow2"
TOML
cat >"$dgx/etc/vfioctl/vms/fabric.toml" <<TOML
memory = "64G"
cpus = 32
gpus = ["all-gpus", "nvswitches"]
firmware = "uefi"
$kernel_boot
TOML
cat >"$dgx/etc/vfioctl/vms/node1.toml" <<TOML
memory = "4G"
gpus = ["9b:00.0", "ba:00.0"]
$kernel_boot
TOML
cat >"$dgx/etc/vfioctl/vms/twomeg.toml" <<TOML
memory = "8G"
cpus = 4
numa = "1"
hugepages = "2M"
pin_vcpus = true
gpus = ["9b:00.0"]
$kernel_boot
TOML

# export ROOT NAME NEEDLE...: exports NAME, validates it, and checks that
# each NEEDLE is in it (what the profile asked for did come out).
export_one() {
    local root=$1 name=$2 out=$tmp/$2.xml
    shift 2
    if ! "$bin" --root "$root" vm export "$name" --output "$out" >"$tmp/$name.out" 2>"$tmp/$name.err"; then
        fail "vm export $name: exit $?: $(cat "$tmp/$name.err")"
        return
    fi
    if virt-xml-validate "$out" domain >"$tmp/$name.val" 2>&1; then
        pass "virt-xml-validate $name.xml domain"
    else
        fail "virt-xml-validate $name.xml domain: $(cat "$tmp/$name.val")"
    fi
    local n
    for n in "$@"; do
        if grep -qF -- "$n" "$out"; then pass "$name.xml has $n"; else fail "$name.xml lacks $n"; fi
    done
}

# The negative control: the validator must reject a domain it should.
export_one "$seed" gpu-uefi "<hostdev mode='subsystem' type='pci' managed='yes'>" \
    "<pcihole64 unit='KiB'>" "<loader readonly='yes' type='pflash'>" "<qemu:commandline>"
sed "s/<hostdev mode='subsystem'/<hostdev mode='bogus'/" "$tmp/gpu-uefi.xml" >"$tmp/broken-mode.xml"
sed "s/<memory unit='KiB'>[0-9]*</<memory unit='KiB'>lots</" "$tmp/gpu-uefi.xml" >"$tmp/broken-memory.xml"
head -n -1 "$tmp/gpu-uefi.xml" >"$tmp/broken-unclosed.xml"
for b in broken-mode broken-memory broken-unclosed; do
    if cmp -s "$tmp/gpu-uefi.xml" "$tmp/$b.xml"; then
        fail "negative control $b: the edit changed nothing"
    elif virt-xml-validate "$tmp/$b.xml" domain >/dev/null 2>&1; then
        fail "negative control $b: virt-xml-validate accepted a broken domain"
    else
        pass "negative control $b: rejected"
    fi
done

export_one "$seed" disk "<boot dev='hd'/>" "<source file='/var/lib/images/dev.qcow2'/>" \
    "<target dir='hostroot'/>" "<domain type='qemu'>"
export_one "$dgx" fabric "bus='0xdd' slot='0x00'" "index='12' model='pcie-root-port'" \
    "<pcihole64 unit='KiB'>4294967296</pcihole64>"
export_one "$dgx" node1 "<memory mode='strict' nodeset='1'/>" "<page size='1048576' unit='KiB'/>"
export_one "$dgx" twomeg "<page size='2048' unit='KiB'/>" "cpuset='56-111,168-223'"

echo "$checks checks, $([ $failed = 0 ] && echo all passed || echo some FAILED)"
exit $failed
