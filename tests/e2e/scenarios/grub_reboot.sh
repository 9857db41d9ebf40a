#!/bin/bash
# The seed's whole path through a real boot loader. Boot 0 builds a GRUB disk
# whose /etc/default/grub says intel_iommu=off iommu=pt (lib/mkgrubdisk.sh).
# Boot 1, through SeaBIOS and GRUB: passthrough WILL NOT WORK; "vfioctl iommu
# enable" edits /etc/default/grub and runs the real update-grub. Boot 2:
# GRUB gave the kernel intel_iommu=on iommu=pt, status exits 0, vfioctl
# binds the e1000e to vfio-pci and gives it back; "vfioctl iommu revert",
# from the journal the disk kept, restores /etc/default/grub byte for byte
# and runs update-grub again. Boot 3: the original command line is back.
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
# The command line of boot 1, kept on the disk for boot 3.
first_cmdline=/e2e/cmdline-boot1
journal=/var/lib/vfioctl/boot-journal.json

# The kernel's arguments without GRUB's BOOT_IMAGE=, one line.
args_without_boot_image() {
    tr ' ' '\n' <"$1" | grep -v -e '^BOOT_IMAGE=' -e '^$' | tr '\n' ' '
}

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
    cp /proc/cmdline "$first_cmdline" || fail "cannot keep the command line on the disk"
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

    step "vfioctl iommu enable runs the real update-grub"
    cfg_before="$(sha256sum </boot/grub/grub.cfg)"
    run b1_enable "$VFIOCTL" iommu enable --yes
    expect_rc "vfioctl iommu enable --yes" 0
    expect_text b1_enable "intel_iommu=off -> intel_iommu=on"
    expect_text b1_enable "ran:    /usr/sbin/update-grub (exit code 0)"
    expect_text b1_enable "Reboot pending: yes"
    grep -qx 'GRUB_CMDLINE_LINUX_DEFAULT="intel_iommu=on iommu=pt"' /etc/default/grub ||
        fail "/etc/default/grub does not say GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on iommu=pt\""
    ! grep -q intel_iommu=off /etc/default/grub || fail "/etc/default/grub still has intel_iommu=off"
    [ "$(diff "$original" /etc/default/grub | grep -c '^[<>]')" = 2 ] ||
        fail "enable changed more than the one line: $(diff "$original" /etc/default/grub)"
    ok "/etc/default/grub: GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on iommu=pt\", nothing else changed"
    backups=(/etc/default/grub.vfioctl-backup-*)
    if [ "${#backups[@]}" != 1 ] || [ ! -f "${backups[0]}" ]; then
        fail "expected one backup next to /etc/default/grub: ${backups[*]}"
    fi
    cmp "$original" "${backups[0]}" || fail "the backup ${backups[0]} is not the original file"
    ok "backup ${backups[0]} holds the original"
    [ "$(sha256sum </boot/grub/grub.cfg)" != "$cfg_before" ] || fail "update-grub did not rewrite /boot/grub/grub.cfg"
    grep -q 'automatically generated by grub-mkconfig' /boot/grub/grub.cfg ||
        fail "/boot/grub/grub.cfg was not written by grub-mkconfig"
    ok "grub-mkconfig rewrote /boot/grub/grub.cfg"
    expect_grub_cfg intel_iommu=on intel_iommu=off
    json_check "$journal" \
        '[(o["action"], o["state"], o["loader"], [f["path"] for f in o["files"]]) for o in d["operations"]] == [("enable", "done", "grub", ["/etc/default/grub"])]' \
        "the journal on the disk records the enable of /etc/default/grub, done"
    enabled="$(sha256sum /etc/default/grub /boot/grub/grub.cfg "$journal")"
    run b1_enable_again "$VFIOCTL" iommu enable --yes
    expect_rc "a second vfioctl iommu enable --yes" 0
    expect_text b1_enable_again "Nothing to change"
    [ "$(sha256sum /etc/default/grub /boot/grub/grub.cfg "$journal")" = "$enabled" ] ||
        fail "the second enable changed /etc/default/grub, grub.cfg or the journal"
    ok "the second enable changed nothing"
    run_quiet b1_show_after "$VFIOCTL" iommu show --json
    expect_rc "vfioctl iommu show --json" 0
    j="$RESULTS/b1_show_after.out"
    json_check "$j" 'd["reboot_pending"] is True and d["regenerate_pending"] is False' \
        "iommu show: reboot pending, grub.cfg up to date"
    json_check "$j" 'd["next_iommu"] == ["intel_iommu=on", "iommu=pt"]' "the next boot gets intel_iommu=on iommu=pt"
    json_check "$j" 'd["last_change"]["action"] == "enable"' "iommu show names the enable as the last change"
    run b1_status_after "$VFIOCTL" status
    expect_rc "vfioctl status before the reboot" 3
    expect_text b1_status_after "reboot pending: yes"
    request_reboot
    ;;

2)
    step "boot 2: through GRUB, with intel_iommu=on iommu=pt"
    expect_cmdline intel_iommu=on intel_iommu=off
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
    json_check "$j" 'd["boot"]["reboot_pending"] is False' "no reboot pending"
    run_quiet b2_show "$VFIOCTL" iommu show --json
    expect_rc "vfioctl iommu show --json" 0
    json_check "$RESULTS/b2_show.out" 'd["reboot_pending"] is False and d["last_change"]["action"] == "enable"' \
        "iommu show: nothing pending, the enable (journal kept across the reboot) can be reverted"

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
        '[(o["action"], o["state"]) for o in d["operations"]] == [("enable", "reverted"), ("revert", "done")]' \
        "the journal records the enable as reverted"
    run_quiet b2_show_after "$VFIOCTL" iommu show --json
    json_check "$RESULTS/b2_show_after.out" \
        'd["reboot_pending"] is True and d["next_iommu"] == ["intel_iommu=off", "iommu=pt"] and d["last_change"] is None' \
        "iommu show: reboot pending to intel_iommu=off iommu=pt, nothing left to revert"
    request_reboot
    ;;

3)
    step "boot 3: the original command line is back"
    expect_cmdline intel_iommu=off intel_iommu=on
    [ "$(args_without_boot_image /proc/cmdline)" = "$(args_without_boot_image "$first_cmdline")" ] ||
        fail "the command line differs from boot 1's: '$(cat /proc/cmdline)' against '$(cat "$first_cmdline")'"
    ok "the kernel's arguments are boot 1's"
    [ "$(group_count)" = 0 ] || fail "the kernel has $(group_count) IOMMU groups"
    run b3_status "$VFIOCTL" status
    expect_rc "vfioctl status" 3
    expect_text b3_status "WILL NOT WORK"
    run_quiet b3_show "$VFIOCTL" iommu show --json
    json_check "$RESULTS/b3_show.out" 'd["reboot_pending"] is False and d["last_change"] is None' \
        "iommu show: nothing pending, nothing to revert"
    ;;

*) fail "unexpected boot $boot" ;;
esac
