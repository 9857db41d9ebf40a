#!/usr/bin/env bash
# Runs the Ansible module dist/ansible/library/vfioctl.py with ansible-playbook
# (ansible-core) against localhost and fixture host trees: module.yml asserts
# status, check mode, changes and idempotence; a negative control proves that
# its assertions can fail; facts.yml checks facts.d with the fact script
# 'vfioctl export --format ansible --write' installs.
#   tests/ansible/test-ansible.sh VFIOCTL MKHOST SOURCE_DIR
# Nothing here writes outside a temporary directory; every vfioctl run that
# changes state has --root.
set -uo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 VFIOCTL MKHOST SOURCE_DIR" >&2
  exit 2
fi
vfioctl=$(realpath "$1")
mkhost=$(realpath "$2")
src=$(realpath "$3")
here="$src/tests/ansible"

if ! command -v ansible-playbook >/dev/null; then
  echo "test-ansible: ansible-playbook not found (scripts/setup installs ansible-core)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export LC_ALL=C.UTF-8
export ANSIBLE_CONFIG="$here/ansible.cfg"
export ANSIBLE_LIBRARY="$src/dist/ansible/library"
export ANSIBLE_HOME="$tmp/ansible-home"
export ANSIBLE_LOCAL_TEMP="$tmp/ansible-local"
export ANSIBLE_REMOTE_TEMP="$tmp/ansible-remote"
export ANSIBLE_NOCOLOR=1
export ANSIBLE_FORCE_COLOR=0

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# The fixture hosts, under $1.
make_hosts() {
  local d=$1
  mkdir -p "$d"
  "$mkhost" seed-before "$d/before" || return 1
  "$mkhost" seed-after "$d/after" || return 1
  "$mkhost" seed-after "$d/onvfio" || return 1
  put_on_vfio_pci "$d/onvfio" || return 1
  put_boot_hooks "$d/onvfio" || return 1
  make_trial_host "$d/trial" || return 1
}

# Moves the fixture's GPU 8a:00.0 to vfio-pci inside the tree, as the kernel
# shows a bound device: its driver link, the driver's device link, the vfio
# modules loaded and the group's node.
put_on_vfio_pci() {
  local r=$1
  local dev=devices/pci0000:88/0000:88:02.0/0000:8a:00.0
  local drv=$r/sys/bus/pci/drivers/vfio-pci
  [ -L "$r/sys/$dev/driver" ] || { echo "test-ansible: no $dev in $r" >&2; return 1; }
  mkdir -p "$drv" || return 1
  local f m
  for f in bind unbind new_id remove_id uevent; do : >"$drv/$f"; done
  rm -f "$r/sys/bus/pci/drivers/nvidia/0000:8a:00.0" "$r/sys/$dev/driver"
  ln -s "../../../../$dev" "$drv/0000:8a:00.0" || return 1
  ln -s ../../../../bus/pci/drivers/vfio-pci "$r/sys/$dev/driver" || return 1
  for m in vfio vfio_iommu_type1 vfio_pci_core vfio_pci; do
    mkdir -p "$r/sys/module/$m" && echo live >"$r/sys/module/$m/initstate" || return 1
  done
  mkdir -p "$r/dev/vfio" && : >"$r/dev/vfio/vfio" && : >"$r/dev/vfio/165"
}

# vfioctl's udev rule and vfioctl-bind.service, enabled, in the tree, as
# the package installs them: 'bind --persistent' refuses without them.
put_boot_hooks() {
  local r=$1
  mkdir -p "$r/lib/udev/rules.d" "$r/lib/systemd/system" \
    "$r/etc/systemd/system/sysinit.target.wants" || return 1
  cp "$src/dist/udev/61-vfioctl.rules" "$r/lib/udev/rules.d/" || return 1
  cp "$src/dist/systemd/vfioctl-bind.service" "$r/lib/systemd/system/" || return 1
  ln -s /lib/systemd/system/vfioctl-bind.service \
    "$r/etc/systemd/system/sysinit.target.wants/vfioctl-bind.service"
}

# A Debian GRUB host with a generated grub.cfg (tests/corpus/boot/debian12),
# an Intel DMAR table and a boot id: 'iommu enable' schedules a trial boot.
make_trial_host() {
  local r=$1
  cp -a "$src/tests/corpus/boot/debian12" "$r" || return 1
  mkdir -p "$r/proc/sys/kernel/random" "$r/sys/firmware/acpi/tables" "$r/sys/bus/pci/devices"
  echo "BOOT_IMAGE=/boot/vmlinuz root=UUID=1 ro quiet" >"$r/proc/cmdline"
  echo "11111111-2222-3333-4444-555555555555" >"$r/proc/sys/kernel/random/boot_id"
  : >"$r/sys/firmware/acpi/tables/DMAR"
}

# Runs ansible-playbook PLAYBOOK EXTRA_VARS_FILE LOG; prints the recap line's
# counters as "ok=N changed=N unreachable=N failed=N skipped=N rescued=N
# ignored=N" on stdout; returns ansible-playbook's exit code.
play() {
  local book=$1 vars=$2 log=$3 rc
  ansible-playbook -i "$here/inventory.ini" -e "@$vars" "$here/$book" >"$log" 2>&1
  rc=$?
  grep -E '^localhost +:' "$log" | sed -E 's/^localhost +: +//; s/ +/ /g'
  return $rc
}

# The value of counter $2 in recap line $1 ("" when absent).
count() {
  sed -nE "s/.*(^| )$2=([0-9]+).*/\\2/p" <<<"$1"
}

# Writes the extra vars for module.yml with hosts under $1 to $2.
write_vars() {
  local d=$1 out=$2 negative=$3
  cat >"$out" <<EOF
{"vfioctl_bin": "$vfioctl",
 "fx_before": "$d/before", "fx_after": "$d/after",
 "fx_onvfio": "$d/onvfio", "fx_trial": "$d/trial",
 "negative_control": $negative}
EOF
}

# --- the module's documentation and the example playbook --------------------
# ansible-doc parses DOCUMENTATION, EXAMPLES and RETURN as YAML.
if ! ansible-doc -M "$ANSIBLE_LIBRARY" vfioctl >"$tmp/doc.txt" 2>&1 ||
  ! grep -q 'iommu_enable' "$tmp/doc.txt"; then
  fail "ansible-doc cannot read the module's documentation"
  cat "$tmp/doc.txt" >&2
fi
if ! ansible-playbook -i "$here/inventory.ini" --syntax-check \
  "$src/dist/ansible/examples/passthrough.yml" >"$tmp/syntax.txt" 2>&1; then
  fail "dist/ansible/examples/passthrough.yml does not parse"
  cat "$tmp/syntax.txt" >&2
fi

# --- module.yml --------------------------------------------------------------
make_hosts "$tmp/hosts" || { echo "test-ansible: cannot make the fixture hosts" >&2; exit 1; }
write_vars "$tmp/hosts" "$tmp/vars.json" false
recap=$(play module.yml "$tmp/vars.json" "$tmp/module.log")
rc=$?
echo "module.yml: exit $rc, recap: ${recap:-none}"
if [ "$rc" -ne 0 ]; then
  fail "module.yml: ansible-playbook exited $rc"
  cat "$tmp/module.log" >&2
fi
# Four tasks fail on purpose (ignore_errors) and their assertions follow.
if [ -z "$recap" ] || [ "$(count "$recap" failed)" != 0 ] ||
  [ "$(count "$recap" unreachable)" != 0 ] || [ "$(count "$recap" ignored)" != 4 ]; then
  fail "module.yml: recap '$recap' (want failed=0 unreachable=0 ignored=4)"
fi
asserts=$(grep -c '^TASK \[' "$tmp/module.log")
if [ "$(count "$recap" ok)" -lt 40 ]; then
  fail "module.yml: only $(count "$recap" ok) tasks ok ($asserts tasks ran)"
fi
# The play stops at the first failure: the last task must have run.
grep -q 'TASK \[bind without a device fails before running vfioctl\]' "$tmp/module.log" ||
  fail "module.yml: the last task did not run"

# --- negative control: the idempotence assertion can fail --------------------
make_hosts "$tmp/neg" || { echo "test-ansible: cannot make the fixture hosts" >&2; exit 1; }
write_vars "$tmp/neg" "$tmp/neg.json" true
recap=$(play module.yml "$tmp/neg.json" "$tmp/neg.log")
rc=$?
echo "negative control: exit $rc, recap: ${recap:-none}"
if [ "$rc" -eq 0 ] || [ "$(count "$recap" failed)" != 1 ]; then
  fail "negative control: the play passed with a wrong expectation (exit $rc, '$recap')"
  cat "$tmp/neg.log" >&2
elif ! grep -A3 'TASK \[iommu enable is idempotent\]' "$tmp/neg.log" | grep -q '^fatal: \[localhost\]'; then
  fail "negative control: the play failed, but not at 'iommu enable is idempotent'"
  cat "$tmp/neg.log" >&2
fi

# --- facts.d -----------------------------------------------------------------
# The fact script as 'vfioctl export --format ansible --write' installs it
# under the fixture root: it runs vfioctl against that root at each gather.
facts_root="$tmp/hosts/facts"
cp -a "$tmp/hosts/after" "$facts_root"
if ! "$vfioctl" --root "$facts_root" export --format ansible --write >"$tmp/export.log" 2>&1; then
  fail "export --format ansible --write: $(cat "$tmp/export.log")"
fi
factdir="$facts_root/etc/ansible/facts.d"
[ -x "$factdir/vfioctl.fact" ] || fail "no executable $factdir/vfioctl.fact"
printf '{"fact_dir": "%s"}\n' "$factdir" >"$tmp/facts.json"
recap=$(play facts.yml "$tmp/facts.json" "$tmp/facts.log")
rc=$?
echo "facts.yml: exit $rc, recap: ${recap:-none}"
if [ "$rc" -ne 0 ] || [ "$(count "$recap" failed)" != 0 ] || [ "$(count "$recap" ok)" -lt 2 ]; then
  fail "facts.yml: exit $rc, recap '$recap'"
  cat "$tmp/facts.log" >&2
fi

if [ "$failures" -ne 0 ]; then
  echo "test-ansible: $failures failure(s)" >&2
  exit 1
fi
echo "test-ansible: ok"
