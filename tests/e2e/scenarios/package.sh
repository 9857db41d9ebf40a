#!/bin/bash
# The Debian package as a user meets it, in L1 (its root is the host's under
# a tmpfs overlay, so dpkg writes only there): 'dpkg -i' of the .deb that
# the 'package' test built on the host (build/pkg), 'man -w vfioctl-bind'
# finds the page, bash's own completion loader completes 'vfioctl bi' to
# bind and 'vfioctl bind ' to L1's PCI addresses, the seed's path runs from
# /usr/bin/vfioctl (status, iommu show, groups, bind, unbind, a VM with
# the device, vm stop), then what vfioctl-recover.service runs at boot settles
# a journal entry of an earlier boot without touching the device, and
# 'status' reports it. 'dpkg -r' leaves only the conffile; --purge removes
# it. This boot has no systemd as PID 1, so the unit's ExecStart is run
# from the installed unit file, with a journal entry made as an earlier
# boot leaves one (a real bind's entry, the device given back since, its
# boot id another boot's); recover_reboot proves the unit under systemd
# across a real reboot.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-append: intel_iommu=on iommu=pt
# e2e-timeout: 300
# e2e-requires: python3 dpkg
. "$E2E_LIB/scenario.sh"

installed=/usr/bin/vfioctl
unit=/lib/systemd/system/vfioctl-recover.service

step "dpkg -i the package built on the host"
deb="$(ls "$E2E_BUILD"/pkg/vfioctl_*.deb 2>/dev/null | head -n1)"
[ -n "$deb" ] || fail "no $E2E_BUILD/pkg/vfioctl_*.deb (the 'package' test builds it)"
if dpkg-query -W -f='${Status}' vfioctl 2>/dev/null | grep -q installed; then
    # Installed on the machine that runs the suite: L1 sees it; purge it here
    # (only L1's overlay changes) so that the install below starts clean.
    dpkg --purge vfioctl >/dev/null || fail "cannot purge the vfioctl L1 inherited"
fi
# man-db's trigger would rebuild the index of every man page on the host,
# over 9p under TCG (100 s here); 'man -w' and 'man PAGE' search the
# directories themselves and need no index. Only L1's overlay changes.
rm -f /var/lib/man-db/auto-update
run install dpkg -i "$deb"
expect_rc "dpkg -i $(basename "$deb")" 0
files="$(dpkg -L vfioctl)" || fail "dpkg -L vfioctl failed"
for f in "$installed" "$unit" /etc/vfioctl/vms/example.toml /usr/share/man/man1/vfioctl-bind.1.gz \
    /usr/share/bash-completion/completions/vfioctl /usr/share/zsh/vendor-completions/_vfioctl \
    /usr/share/fish/vendor_completions.d/vfioctl.fish /usr/share/doc/vfioctl/copyright; do
    grep -qxF "$f" <<<"$files" || fail "the package does not list $f"
    [ -e "$f" ] || fail "$f is not there after dpkg -i"
done
ok "dpkg -L lists the binary, the unit, the conffile, man pages, completions, copyright"
run version "$installed" --version
expect_rc "vfioctl --version" 0
expect_text version "vfioctl $(dpkg-query -W -f='${Version}' vfioctl) (commit "
[ "$(dpkg-query -W -f='${Conffiles}' vfioctl | awk 'NF { print $1 }')" = /etc/vfioctl/vms/example.toml ] ||
    fail "conffiles: $(dpkg-query -W -f='${Conffiles}' vfioctl)"
ok "/etc/vfioctl/vms/example.toml is a conffile"
wants=/etc/systemd/system/sysinit.target.wants/vfioctl-recover.service
[ "$(readlink "$wants")" = "$unit" ] || fail "the postinst did not enable vfioctl-recover.service ($wants)"
ok "the postinst enabled vfioctl-recover.service ($wants -> $unit)"
confirm_unit=/lib/systemd/system/vfioctl-trial-confirm.service
[ -f "$confirm_unit" ] || fail "no $confirm_unit"
[ ! -e /etc/systemd/system/multi-user.target.wants/vfioctl-trial-confirm.service ] ||
    fail "the postinst enabled vfioctl-trial-confirm.service, which is off by default"
ok "vfioctl-trial-confirm.service is installed and not enabled"
command -v systemd-analyze >/dev/null && {
    run verify_confirm_unit systemd-analyze verify "$confirm_unit"
    expect_rc "systemd-analyze verify $confirm_unit" 0
}

step "man finds and renders the pages"
run manw man -w vfioctl-bind
expect_rc "man -w vfioctl-bind" 0
expect_text manw /usr/share/man/man1/vfioctl-bind.1.gz
run manpage env MANWIDTH=80 man --warnings vfioctl-bind
expect_rc "man vfioctl-bind" 0
expect_text manpage "SYNOPSIS"
[ ! -s "$RESULTS/manpage.err" ] || fail "man --warnings vfioctl-bind warned"

step "bash completes through its own loader"
# complete WORDS...: what bash-completion (loading vfioctl's file on demand,
# as an interactive shell does) offers for the last word, one a line.
complete_words() {
    bash -c '
        . /usr/share/bash-completion/bash_completion || exit 1
        __load_completion vfioctl || { echo "bash-completion did not load vfioctl" >&2; exit 1; }
        fn=$(complete -p vfioctl | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
        [ -n "$fn" ] || { echo "no completion function for vfioctl" >&2; exit 1; }
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        "$fn" vfioctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"' complete "$@"
}
got="$(complete_words vfioctl bi)" || fail "completing 'vfioctl bi' failed"
[ "$got" = bind ] || fail "'vfioctl bi<TAB>' offers '$got', not bind"
ok "'vfioctl bi<TAB>' completes to bind"
got="$(complete_words vfioctl bind '' | sort)" || fail "completing 'vfioctl bind ' failed"
want="$(ls /sys/bus/pci/devices | sort)"
short="$(sed 's/^0000://' <<<"$want" | sort)"
[ "$got" = "$want" ] || [ "$got" = "$short" ] ||
    fail "'vfioctl bind <TAB>' offers: $(echo $got); L1's PCI addresses: $(echo $want)"
ok "'vfioctl bind <TAB>' offers L1's $(wc -l <<<"$want") PCI addresses"

step "the seed's path from $installed"
nic="$(pci_find 8086 10d3)"
[ -n "$nic" ] || fail "no e1000e (8086:10d3)"
modprobe e1000e || fail "modprobe e1000e failed"
expect_driver "$nic" e1000e
run status "$installed" status
expect_rc "status" 0 3
expect_text status "IOMMU"
run iommu_show "$installed" iommu show
expect_rc "iommu show" 0
run groups "$installed" --json groups
expect_rc "groups" 0
json_check "$RESULTS/groups.out" "group_of('$nic') is not None" \
    "groups lists $nic"
run bind "$installed" --json bind "$nic"
expect_rc "bind $nic" 0
expect_driver "$nic" vfio-pci
journal="$(journal_file)"
[ -s "$journal" ] || fail "no journal after bind"
cp "$journal" "$RESULTS/journal-of-this-boot.json"
json_check "$journal" "all(e.get('boot') == open('/proc/sys/kernel/random/boot_id').read().strip() for e in d['devices'])" \
    "the journal records this boot's id"
run unbind "$installed" unbind "$nic"
expect_rc "unbind" 0
expect_driver "$nic" e1000e
[ ! -e "$journal" ] || fail "the journal is still there after unbind"
kernel="$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)"
run vm "$installed" vm start l2 --kernel "$kernel" --memory 256 --accel tcg --gpu "$nic"
expect_rc "vm start --gpu" 0
expect_driver "$nic" vfio-pci
run vm_status "$installed" --json vm status l2
expect_rc "vm status" 0
json_check "$RESULTS/vm_status.out" 'd["missing_on_guest_bus"] == []' "8086:10d3 is on L2's bus"
run vm_stop "$installed" vm stop l2 --timeout 2
expect_rc "vm stop" 0
expect_driver "$nic" e1000e
[ ! -e "$journal" ] || fail "the journal is still there after vm stop"

step "vfioctl-recover.service settles an earlier boot's entry"
command -v systemd-analyze >/dev/null && {
    run verify_unit systemd-analyze verify "$unit"
    expect_rc "systemd-analyze verify $unit" 0
}
# What an earlier boot leaves: its bind's entry, the device since back on
# its driver (a reboot forgets driver_override), another boot's id.
python3 - "$RESULTS/journal-of-this-boot.json" "$journal" <<'PY' || fail "cannot write the earlier boot's journal"
import json, sys, uuid
j = json.load(open(sys.argv[1]))
for e in j["devices"]:
    e["boot"] = str(uuid.uuid4())
json.dump(j, open(sys.argv[2], "w"))
PY
before="$(device_state "$nic")"
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
[ -n "$exec_start" ] || fail "$unit has no ExecStart"
read -r -a cmd <<<"$exec_start"
[ "${cmd[0]}" = "$installed" ] || fail "the unit runs ${cmd[0]}, not $installed"
run at_boot "${cmd[@]}"
expect_rc "the unit's ExecStart (${cmd[*]})" 0
# The state line (journal) changes: the settled entry leaves it.
[ ! -e "$journal" ] || fail "the journal still holds the earlier boot's entry"
[ "$(device_state "$nic" | head -n1)" = "$(head -n1 <<<"$before")" ] || fail "settling touched $nic"
ok "the entry is settled, $nic untouched ($(head -n1 <<<"$before"))"
run status_after "$installed" --json status
expect_rc "status" 0 3
json_check "$RESULTS/status_after.out" "'$nic' in text(d['settled'])" "status --json reports $nic settled"
run status_text "$installed" status
expect_text status_text "settled"

step "dpkg -r leaves only the conffile, --purge removes it"
run remove dpkg -r vfioctl
expect_rc "dpkg -r vfioctl" 0
left=()
while read -r f; do
    # Files only: dpkg -L lists directories too, and /lib is a link to usr/lib.
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    left+=("$f")
done <<<"$files"
[ "${left[*]}" = /etc/vfioctl/vms/example.toml ] || fail "after dpkg -r these remain: ${left[*]}"
ok "after dpkg -r only /etc/vfioctl/vms/example.toml remains"
run purge dpkg --purge vfioctl
expect_rc "dpkg --purge vfioctl" 0
[ ! -e /etc/vfioctl/vms/example.toml ] || fail "the conffile is still there after --purge"
ok "dpkg --purge removed the conffile"
[ ! -e "$wants" ] && [ ! -L "$wants" ] || fail "$wants is still there after --purge"
[ ! -L /etc/systemd/system/vfioctl-recover.service ] || fail "the unit is still masked after --purge"
ok "dpkg --purge disabled and unmasked the unit"
