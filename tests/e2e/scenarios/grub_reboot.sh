#!/bin/bash
# The seed's whole path through a real boot loader, with a trial boot. Boot
# 0 builds a GRUB disk whose /etc/default/grub says intel_iommu=off iommu=pt
# (lib/mkgrubdisk.sh). Boot 1, through SeaBIOS and GRUB: passthrough WILL
# NOT WORK; "vfioctl iommu enable" leaves /etc/default/grub alone and
# schedules a trial entry (the real update-grub and grub-reboot). Boot 2 is
# the trial: GRUB gave the kernel intel_iommu=on iommu=pt, status exits 0,
# vfioctl binds the e1000e to vfio-pci and gives it back, and "vfioctl iommu
# confirm" makes the command line the default (/etc/default/grub edited,
# the trial entry removed, update-grub). Boots 3 and 4 keep the IOMMU on;
# at boot 4 "vfioctl iommu revert", from the journal the disk kept, restores
# /etc/default/grub byte for byte and runs update-grub again.
# e2e-qemu: -device intel-iommu,intremap=on,caching-mode=on
# e2e-qemu: -device e1000e,romfile=,addr=03.0
# e2e-qemu: -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=04.0
# e2e-qemu: -device secondary-vga,bus=rp1
# e2e-disk: 256
# e2e-timeout: 420
# e2e-requires: python3 grub-install update-grub sfdisk mkfs.ext4
. "$E2E_LIB/scenario.sh"

boot="${E2E_BOOT:-0}"
# Written at boot 0 by mkgrubdisk.sh: the scenario's /etc/default/grub as it
# was installed, and what the disk's init shows from the host.
original=/e2e/default-grub
journal=/var/lib/vfioctl/boot-journal.json

# expect_grub_cfg HAS LACKS: every linux line of grub.cfg has the parameter
# HAS and iommu=pt, none has LACKS.
expect_grub_cfg() {
    local lines line
    lines="$(grep -E '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg)"
    [ -n "$lines" ] || fail "/boot/grub/grub.cfg has no linux line"
    while read -r line; do
        case " $line " in *" $1 "*) ;; *) fail "grub.cfg line '$line' lacks $1" ;; esac
        case " $line " in *" iommu=pt "*) ;; *) fail "grub.cfg line '$line' lacks iommu=pt" ;; esac
        case " $line " in *" $2 "*) fail "grub.cfg line '$line' still has $2" ;; esac
    done <<<"$lines"
    ok "every linux line of /boot/grub/grub.cfg ($(wc -l <<<"$lines")) has $1 iommu=pt and no $2"
}

# expect_cmdline HAS LACKS: the running kernel was booted by GRUB from the
# disk with HAS and iommu=pt, without LACKS.
expect_cmdline() {
    local c
    c=" $(cat /proc/cmdline) "
    echo "/proc/cmdline: $c"
    case "$c" in *" BOOT_IMAGE=/boot/vmlinuz-"*) ;; *) fail "no BOOT_IMAGE=/boot/vmlinuz-*: GRUB did not boot this kernel" ;; esac
    case "$c" in *" root="*) ;; *) fail "no root= on the command line" ;; esac
    case "$c" in *" $1 "*) ;; *) fail "$1 is not on the command line" ;; esac
    case "$c" in *" iommu=pt "*) ;; *) fail "iommu=pt is not on the command line" ;; esac
    case "$c" in *" $2 "*) fail "$2 is on the command line" ;; esac
    ok "GRUB booted the kernel with $1 iommu=pt, without $2"
    [ "$(awk '$2 == "/" { print $1 " " $3 }' /proc/mounts | tail -n1)" = "/dev/vda1 ext4" ] ||
        fail "/ is not /dev/vda1 (ext4): $(awk '$2 == "/"' /proc/mounts)"
    ok "/ is the disk's /dev/vda1 (ext4)"
}

case "$boot" in
0)
    step "boot 0: a GRUB disk whose /etc/default/grub turns the IOMMU off"
    grep -q ' root=' /proc/cmdline && fail "boot 0 was not started by the harness (root= on its command line)"
    [ -d /usr/lib/grub/i386-pc ] || skip "no /usr/lib/grub/i386-pc (install grub-pc-bin)"
    # Debian's /etc/default/grub, as the user's host has it.
    cat >"$RESULTS/default-grub" <<'GRUB'
# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
# For full documentation of the options in this file, see:
#   info -f grub -n 'Simple configuration'

GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="intel_iommu=off iommu=pt"
GRUB_CMDLINE_LINUX=""

GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY="true"
GRUB
    run mkgrubdisk "$E2E_LIB/mkgrubdisk.sh" /dev/vda "$RESULTS/default-grub"
    expect_rc "mkgrubdisk.sh /dev/vda" 0
    request_reboot
    ;;

1)
    step "boot 1: through GRUB, with intel_iommu=off iommu=pt"
    expect_cmdline intel_iommu=off intel_iommu=on
    [ "$(group_count)" = 0 ] || fail "the kernel has $(group_count) IOMMU groups with intel_iommu=off"
    [ -e /sys/firmware/acpi/tables/DMAR ] || fail "no ACPI DMAR table"
    ok "DMAR present, no IOMMU groups"
    cmp "$original" /etc/default/grub || fail "/etc/default/grub is not the one installed at boot 0"
    ok "/etc/default/grub is the scenario's"
    expect_grub_cfg intel_iommu=off intel_iommu=on
    gpu="$(pci_find_class 03)"
    [ -n "$gpu" ] || fail "no display-class device"

    step "vfioctl status: passthrough WILL NOT WORK"
    run b1_status "$VFIOCTL" status
    expect_rc "vfioctl status" 3
    expect_text b1_status "WILL NOT WORK"
    expect_text b1_status intel_iommu=off
    expect_text b1_status "vfioctl iommu enable"
    run_quiet b1_status_json "$VFIOCTL" status --json
    expect_rc "vfioctl status --json" 3
    j="$RESULTS/b1_status_json.out"
    json_check "$j" 'd["iommu"]["enabled"] is False' "IOMMU is not enabled"
    json_check "$j" 'd["verdict"] != "will_work"' "overall verdict is not will_work"
    json_check "$j" "gpu('$gpu')['verdict'] != 'will_work'" "the stand-in GPU's verdict is not will_work"
    json_check "$j" 'd["boot"]["loader"] == "grub"' "status names the GRUB boot setup"
    json_check "$j" 'd["boot"]["reboot_pending"] is False' "no reboot pending"

    step "vfioctl iommu show: GRUB, update-grub, /boot/grub/grub.cfg"
    run b1_show "$VFIOCTL" iommu show
    expect_rc "vfioctl iommu show" 0
    expect_text b1_show "Boot loader:     GRUB"
    expect_text b1_show "update-grub"
    run_quiet b1_show_json "$VFIOCTL" iommu show --json
    expect_rc "vfioctl iommu show --json" 0
    j="$RESULTS/b1_show_json.out"
    json_check "$j" 'd["loader"] == "grub" and d["editable"] is True' "the loader is grub, editable"
    json_check "$j" 'd["regenerate"] == ["/usr/sbin/update-grub"]' "the regenerate command is /usr/sbin/update-grub"
    json_check "$j" 'd["generated_path"] == "/boot/grub/grub.cfg"' "the boot loader's file is /boot/grub/grub.cfg"
    json_check "$j" '"intel_iommu=off" in d["generated_cmdline"].split()' "grub.cfg's command line has intel_iommu=off"
    json_check "$j" '"/etc/default/grub:9 (GRUB_CMDLINE_LINUX_DEFAULT)" in d["places"]' \
        "the IOMMU parameters are configured in /etc/default/grub line 9"
    json_check "$j" 'd["reboot_pending"] is False and d["regenerate_pending"] is False' "nothing pending"
    json_check "$j" 'd["last_change"] is None' "the journal records no change"

    step "vfioctl iommu enable schedules a trial boot (update-grub, grub-reboot)"
    run b1_enable "$VFIOCTL" iommu enable --yes
    expect_rc "vfioctl iommu enable --yes" 0
    expect_text b1_enable "intel_iommu=off -> intel_iommu=on"
    expect_text b1_enable "created: /etc/grub.d/42_vfioctl_trial"
    expect_text b1_enable "ran:    /usr/sbin/update-grub (exit code 0)"
    expect_text b1_enable "grub-reboot vfioctl-trial (exit code 0)"
    cmp "$original" /etc/default/grub || fail "the trial changed /etc/default/grub"
    ok "/etc/default/grub is as it was until the trial is confirmed"
    grep -q -- "--id vfioctl-trial" /boot/grub/grub.cfg || fail "grub.cfg has no trial entry"
    run envlist grub-editenv /boot/grub/grubenv list
    expect_text envlist "next_entry=vfioctl-trial"
    run b1_enable_again "$VFIOCTL" iommu enable --yes
    expect_rc "a second vfioctl iommu enable --yes" 1
    expect_text b1_enable_again "a trial boot is open already"
    run_quiet b1_show_after "$VFIOCTL" iommu show --json
    expect_rc "vfioctl iommu show --json" 0
    j="$RESULTS/b1_show_after.out"
    json_check "$j" 'd["trial"]["state"] == "pending"' "iommu show: the trial is the next boot"
    json_check "$j" 'd["last_change"]["action"] == "trial"' "iommu show names the trial as the last change"
    run b1_status_after "$VFIOCTL" status
    expect_rc "vfioctl status before the reboot" 3
    expect_text b1_status_after "trial boot:     pending"
    request_reboot
    ;;

2)
    step "boot 2: the trial entry, through GRUB, with intel_iommu=on iommu=pt"
    expect_cmdline intel_iommu=on intel_iommu=off
    case " $(cat /proc/cmdline) " in *" vfioctl.trial="*" "*) ;; *) fail "this boot is not the trial entry" ;; esac
    case " $(cat /proc/cmdline) " in *" panic=10 "*) ;; *) fail "the trial has no panic=10" ;; esac
    ok "the trial entry booted (vfioctl.trial=, panic=10)"
    groups="$(group_count)"
    [ "$groups" -gt 0 ] || fail "no IOMMU groups with intel_iommu=on"
    ok "$groups IOMMU groups"

    step "vfioctl status: passthrough WILL WORK"
    run b2_status "$VFIOCTL" status
    expect_rc "vfioctl status" 0
    expect_text b2_status "Verdict: GPU passthrough WILL WORK"
    run_quiet b2_status_json "$VFIOCTL" status --json
    expect_rc "vfioctl status --json" 0
    j="$RESULTS/b2_status_json.out"
    json_check "$j" 'd["iommu"]["enabled"] is True' "IOMMU is enabled"
    json_check "$j" 'd["verdict"] == "will_work"' "overall verdict is will_work"
    json_check "$j" 'd["boot"]["trial"]["state"] == "running"' "status: this boot is the trial"

    step "vfioctl binds the e1000e to vfio-pci and gives it back"
    lone_e1000e
    nic="$NIC" group="$GROUP"
    run b2_bind "$VFIOCTL" bind "$nic"
    expect_rc "vfioctl bind $nic" 0
    expect_driver "$nic" vfio-pci
    [ -c "/dev/vfio/$group" ] || fail "/dev/vfio/$group is not a character device"
    ok "/dev/vfio/$group exists"
    run b2_unbind "$VFIOCTL" unbind "$nic"
    expect_rc "vfioctl unbind $nic" 0
    expect_driver "$nic" e1000e
    [ ! -e "$(journal_file)" ] || fail "the bind journal is still there after unbind"
    ok "the bind journal is gone"

    step "vfioctl iommu confirm: the trial's command line becomes the default"
    run b2_confirm "$VFIOCTL" iommu confirm --yes
    expect_rc "vfioctl iommu confirm --yes" 0
    expect_text b2_confirm "removed: /etc/grub.d/42_vfioctl_trial"
    expect_text b2_confirm "ran:    /usr/sbin/update-grub (exit code 0)"
    grep -qx 'GRUB_CMDLINE_LINUX_DEFAULT="intel_iommu=on iommu=pt"' /etc/default/grub ||
        fail "/etc/default/grub does not say GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on iommu=pt\""
    [ "$(diff "$original" /etc/default/grub | grep -c '^[<>]')" = 2 ] ||
        fail "confirm changed more than the one line: $(diff "$original" /etc/default/grub)"
    ok "/etc/default/grub: GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on iommu=pt\", nothing else changed"
    backups=(/etc/default/grub.vfioctl-backup-*)
    if [ "${#backups[@]}" != 1 ] || [ ! -f "${backups[0]}" ]; then
        fail "expected one backup next to /etc/default/grub: ${backups[*]}"
    fi
    cmp "$original" "${backups[0]}" || fail "the backup ${backups[0]} is not the original file"
    ok "backup ${backups[0]} holds the original"
    [ ! -e /etc/grub.d/42_vfioctl_trial ] || fail "the trial script is still there"
    if grep -q vfioctl-trial /boot/grub/grub.cfg; then fail "grub.cfg still has the trial entry"; fi
    expect_grub_cfg intel_iommu=on intel_iommu=off
    json_check "$journal" \
        '[(o["action"], o["state"]) for o in d["operations"]] == [("trial", "confirmed"), ("enable", "done"), ("confirm", "done")]' \
        "the journal: the trial confirmed by an enable"
    run b2_confirm_again "$VFIOCTL" iommu confirm --yes
    expect_rc "a second confirm" 1
    expect_text b2_confirm_again "no trial boot to confirm"
    request_reboot
    ;;

3)
    step "boot 3: the default entry, intel_iommu=on iommu=pt"
    expect_cmdline intel_iommu=on intel_iommu=off
    case " $(cat /proc/cmdline) " in *" vfioctl.trial="*) fail "boot 3 is a trial boot" ;; esac
    [ "$(group_count)" -gt 0 ] || fail "no IOMMU groups"
    run_quiet b3_status "$VFIOCTL" status --json
    expect_rc "vfioctl status" 0
    json_check "$RESULTS/b3_status.out" 'd["boot"]["trial"]["state"] == "none" and d["boot"]["reboot_pending"] is False' \
        "no trial, nothing pending"
    request_reboot
    ;;

4)
    step "boot 4: still intel_iommu=on iommu=pt"
    expect_cmdline intel_iommu=on intel_iommu=off
    case " $(cat /proc/cmdline) " in *" vfioctl.trial="*) fail "boot 4 is a trial boot" ;; esac
    [ "$(group_count)" -gt 0 ] || fail "no IOMMU groups"
    ok "two boots after the confirmation keep the IOMMU on"
    run_quiet b4_show "$VFIOCTL" iommu show --json
    json_check "$RESULTS/b4_show.out" 'd["reboot_pending"] is False and d["last_change"]["action"] == "enable"' \
        "iommu show: nothing pending, the enable (journal kept across the reboots) can be reverted"

    step "vfioctl iommu revert restores /etc/default/grub and runs update-grub"
    run b2_revert "$VFIOCTL" iommu revert --yes
    expect_rc "vfioctl iommu revert --yes" 0
    expect_text b2_revert "/etc/default/grub: restored from /etc/default/grub.vfioctl-backup-"
    expect_text b2_revert "ran:    /usr/sbin/update-grub (exit code 0)"
    expect_text b2_revert "Reboot pending: yes"
    cmp "$original" /etc/default/grub || fail "/etc/default/grub is not byte for byte the original"
    ok "/etc/default/grub is byte for byte the original"
    expect_grub_cfg intel_iommu=off intel_iommu=on
    json_check "$journal" \
        '[(o["action"], o["state"]) for o in d["operations"]] == [("trial", "confirmed"), ("enable", "reverted"), ("confirm", "done"), ("revert", "done")]' \
        "the journal records the enable as reverted"
    run_quiet b2_show_after "$VFIOCTL" iommu show --json
    json_check "$RESULTS/b2_show_after.out" \
        'd["reboot_pending"] is True and d["next_iommu"] == ["intel_iommu=off", "iommu=pt"] and d["last_change"] is None' \
        "iommu show: reboot pending to intel_iommu=off iommu=pt, nothing left to revert"
    ;;

*) fail "unexpected boot $boot" ;;
esac
