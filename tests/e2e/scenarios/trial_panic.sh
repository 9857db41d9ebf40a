#!/bin/bash
# A trial boot that fails, through the real GRUB. Boot 0 builds a GRUB disk
# whose /etc/default/grub says intel_iommu=off iommu=pt. Boot 1: 'vfioctl
# iommu enable' leaves /etc/default/grub and the default entry alone, writes
# the trial entry (/etc/grub.d/42_vfioctl_trial, update-grub) with
# intel_iommu=on panic=10 vfioctl.trial=ID and schedules it once with the
# real grub-reboot. The test (not vfioctl) then breaks the trial entry in
# grub.cfg (rdinit=/nonexistent: the kernel cannot mount its root and
# panics). Boot 2 is the trial: it panics and, after panic=10's 10 s,
# reboots by itself (QEMU ends: -no-reboot; the harness was told to expect
# it). Boot 3: GRUB chose the default entry again (the one-shot was used),
# the IOMMU is still off, nothing was made permanent, and 'status' and
# 'iommu show' say the trial did not come back; 'iommu confirm' refuses;
# 'iommu revert' removes the trial entry. The host check reads boot 2's
# console: the panic and the reboot after 10 s.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-disk: 256
# e2e-timeout: 420
# e2e-host-check: yes
# e2e-requires: python3 grub-install update-grub grub-reboot grub-editenv sfdisk mkfs.ext4
. "$E2E_LIB/scenario.sh"

boot="${E2E_BOOT:-0}"
[ "${1:-guest}" = host ] && boot=host
original=/e2e/default-grub
journal=/var/lib/vfioctl/boot-journal.json

# The linux lines of grub.cfg: the trial entry's, and every other one.
trial_linux() {
    awk '/^menuentry .*--id vfioctl-trial/ { t = 1 } t && $1 == "linux" { print; exit }' /boot/grub/grub.cfg
}
other_linux() {
    awk '/^menuentry .*--id vfioctl-trial/ { t = 1 } /^}/ { if (t) { t = 0; next } } !t && $1 == "linux"' /boot/grub/grub.cfg
}

case "$boot" in
0)
    step "boot 0: a GRUB disk whose /etc/default/grub turns the IOMMU off"
    grub_disk "intel_iommu=off iommu=pt"
    request_reboot
    ;;

1)
    step "boot 1: through GRUB, intel_iommu=off; vfioctl iommu enable schedules a trial"
    case " $(cat /proc/cmdline) " in *" intel_iommu=off "*) ;; *) fail "intel_iommu=off is not on the command line" ;; esac
    [ "$(group_count)" = 0 ] || fail "IOMMU groups with intel_iommu=off"
    ok "booted by GRUB with intel_iommu=off, no IOMMU groups"
    cfg_before="$(sha256sum </boot/grub/grub.cfg)"
    run b1_enable "$VFIOCTL" iommu enable --yes
    expect_rc "vfioctl iommu enable --yes" 0
    expect_text b1_enable "Trial boot (the next boot only"
    expect_text b1_enable "created: /etc/grub.d/42_vfioctl_trial"
    expect_text b1_enable "ran:    /usr/sbin/update-grub (exit code 0)"
    expect_text b1_enable "grub-reboot vfioctl-trial (exit code 0)"
    cmp "$original" /etc/default/grub || fail "enable changed /etc/default/grub"
    ok "/etc/default/grub is as it was"
    [ -x /etc/grub.d/42_vfioctl_trial ] || fail "/etc/grub.d/42_vfioctl_trial is not an executable script"
    [ "$(sha256sum </boot/grub/grub.cfg)" != "$cfg_before" ] || fail "update-grub did not rewrite grub.cfg"
    t="$(trial_linux)"
    [ -n "$t" ] || fail "grub.cfg has no menuentry --id vfioctl-trial with a linux line"
    for p in intel_iommu=on iommu=pt panic=10 "vfioctl.trial="; do
        case " $t " in *" $p"*) ;; *) fail "the trial entry's linux line lacks $p: $t" ;; esac
    done
    case " $t " in *" intel_iommu=off "* | *" panic=-1 "*) fail "the trial entry keeps intel_iommu=off or panic=-1: $t" ;; esac
    ok "the trial entry: $t"
    others="$(other_linux)"
    [ -n "$others" ] || fail "grub.cfg has no other linux line"
    if grep -q -e intel_iommu=on -e vfioctl.trial <<<"$others"; then fail "another entry has intel_iommu=on: $others"; fi
    ok "every other entry keeps intel_iommu=off"
    run envlist grub-editenv /boot/grub/grubenv list
    expect_text envlist "next_entry=vfioctl-trial"
    run_quiet b1_status "$VFIOCTL" status --json
    expect_rc "vfioctl status --json" 3
    json_check "$RESULTS/b1_status.out" 'd["boot"]["trial"]["state"] == "pending"' "status: the trial is pending"
    json_check "$journal" '[(o["action"], o["state"]) for o in d["operations"]] == [("trial", "done")]' \
        "the journal holds the trial, nothing else"
    cat /proc/sys/kernel/random/boot_id >/e2e/boot1-id

    step "the test breaks the trial entry: rdinit=/nonexistent (the kernel panics)"
    sed -i '/vfioctl\.trial=/ s/$/ rdinit=\/nonexistent/' /boot/grub/grub.cfg
    case " $(trial_linux) " in *" rdinit=/nonexistent "*) ;; *) fail "could not break the trial entry" ;; esac
    ok "trial entry: $(trial_linux)"
    expect_no_result_next_boot
    request_reboot
    ;;

2)
    fail "boot 2 ran a scenario: the trial entry should have panicked"
    ;;

3)
    step "boot 3: the trial did not come back; GRUB booted the default entry"
    c=" $(cat /proc/cmdline) "
    echo "/proc/cmdline: $c"
    case "$c" in *" intel_iommu=off "*) ;; *) fail "intel_iommu=off is not on the command line" ;; esac
    case "$c" in *" vfioctl.trial="* | *" intel_iommu=on "*) fail "this boot has the trial's parameters" ;; esac
    [ "$(group_count)" = 0 ] || fail "IOMMU groups: the IOMMU is on"
    ok "the default entry's command line, IOMMU off"
    [ "$(cat /proc/sys/kernel/random/boot_id)" != "$(cat /e2e/boot1-id)" ] || fail "same boot id as boot 1"
    run envlist grub-editenv /boot/grub/grubenv list
    if grep -q "next_entry=vfioctl-trial" "$RESULTS/envlist.out"; then fail "the one-shot is still set"; fi
    ok "GRUB used the one-shot (next_entry is cleared)"
    cmp "$original" /etc/default/grub || fail "/etc/default/grub changed"
    ok "/etc/default/grub is as it was: nothing was made permanent"

    step "status and iommu show: the trial did not come back"
    run b3_status "$VFIOCTL" status
    expect_rc "vfioctl status" 3
    expect_text b3_status "trial boot:     not_back"
    expect_text b3_status "did not come back"
    run_quiet b3_status_json "$VFIOCTL" status --json
    expect_rc "vfioctl status --json" 3
    j="$RESULTS/b3_status_json.out"
    json_check "$j" 'd["boot"]["trial"]["state"] == "not_back"' "status --json: trial not_back"
    json_check "$j" 'd["iommu"]["enabled"] is False' "status --json: the IOMMU is off"
    json_check "$j" 'any("journalctl -k -b -1" in x for x in d["boot"]["trial"]["look_at"])' "it says where to look"
    run_quiet b3_show "$VFIOCTL" iommu show --json
    json_check "$RESULTS/b3_show.out" 'd["trial"]["state"] == "not_back"' "iommu show: trial not_back"
    json_check "$journal" '[(o["action"], o["state"]) for o in d["operations"]] == [("trial", "done")]' \
        "the journal holds no enable"

    step "iommu confirm refuses; iommu revert removes the trial entry"
    run b3_confirm "$VFIOCTL" iommu confirm --yes
    expect_rc "vfioctl iommu confirm --yes" 1
    expect_text b3_confirm "this boot is not the trial"
    cmp "$original" /etc/default/grub || fail "confirm changed /etc/default/grub"
    run b3_revert "$VFIOCTL" iommu revert --yes
    expect_rc "vfioctl iommu revert --yes" 0
    expect_text b3_revert "/etc/grub.d/42_vfioctl_trial: removed"
    [ ! -e /etc/grub.d/42_vfioctl_trial ] || fail "the trial script is still there"
    if grep -q vfioctl-trial /boot/grub/grub.cfg; then fail "grub.cfg still has the trial entry"; fi
    ok "the trial entry is gone from /etc/grub.d and grub.cfg"
    for b in /etc/grub.d/*.vfioctl-backup-*; do
        [ -e "$b" ] || continue
        [ ! -x "$b" ] || fail "backup $b is executable: update-grub would run it"
    done
    ok "backups in /etc/grub.d are not executable"
    cmp "$original" /etc/default/grub || fail "/etc/default/grub changed"
    json_check "$journal" '[(o["action"], o["state"]) for o in d["operations"]] == [("trial", "reverted"), ("revert", "done")]' \
        "the journal: trial reverted"
    run_quiet b3_status_after "$VFIOCTL" status --json
    json_check "$RESULTS/b3_status_after.out" 'd["boot"]["trial"]["state"] == "none"' "status: no trial"
    ;;

host)
    console="$RESULTS/../console-2.log"
    [ -f "$console" ] || fail "no $console"
    grep -q "vfioctl.trial=" "$console" || fail "boot 2's console shows no trial command line"
    grep -q "Kernel panic" "$console" || fail "boot 2's console shows no kernel panic"
    grep -q "Rebooting in 10 seconds" "$console" || fail "boot 2 did not reboot after panic=10"
    ok "boot 2 (the trial) panicked and rebooted after 10 s by itself"
    ;;

*) fail "unexpected boot $boot" ;;
esac
