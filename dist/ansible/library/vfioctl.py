#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Ansible module: runs vfioctl for status, bind and iommu enable and reports
# 'changed' from the typed fields of vfioctl's --json output.
# SPDX-License-Identifier: MIT

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vfioctl
short_description: Diagnose IOMMU/VFIO, bind devices to vfio-pci, turn the IOMMU on, with vfioctl
description:
  - Runs C(vfioctl --json) on the managed host and returns its JSON as C(vfioctl).
  - C(command=status) diagnoses the host (IOMMU, VFIO, KVM, QEMU, a verdict per GPU). It never
    changes anything and returns the diagnosis as the fact C(vfioctl_status) too.
  - C(command=bind) moves devices and their whole IOMMU groups to vfio-pci (C(vfioctl bind)).
    C(changed) is true when a device was (or, in check mode, would be) moved, or a persistent
    binding was (would be) recorded; devices already on vfio-pci are not a change.
  - C(command=iommu_enable) turns the IOMMU on in the boot configuration (C(vfioctl iommu enable
    --yes)). C(changed) is vfioctl's own C(changed) field; a configuration that already turns the
    IOMMU on is not a change, and neither is a trial boot that vfioctl already scheduled for the
    same parameters (the result then has C(trial_open=true)).
  - Check mode passes C(--dry-run), and vfioctl shows its plan and changes nothing.
  - C(changed) is taken from typed JSON fields only, never from vfioctl's messages.
  - On a failure (exit code 1 or 2) the task fails with vfioctl's error and hint.
version_added: "0.1"
options:
  command:
    description: What to run.
    type: str
    required: true
    choices: [status, bind, iommu_enable]
  targets:
    description:
      - For C(bind), the devices, each a PCI address (8a:00.0) or vendor:device (10de:2336).
    type: list
    elements: str
    default: []
    aliases: [devices, target]
  gpu:
    description: For C(bind), the Nth GPU that C(vfioctl status) lists, from 0.
    type: int
  all_gpus:
    description: For C(bind), every NVIDIA GPU that can go to a VM now (C(--all-gpus)).
    type: bool
    default: false
  with_nvswitches:
    description: For C(bind), every NVSwitch too (C(--with-nvswitches)).
    type: bool
    default: false
  persistent:
    description: For C(bind), also at every boot (C(--persistent)).
    type: bool
    default: false
  force:
    description: For C(bind), take devices that are in use (C(--force)).
    type: bool
    default: false
  owner:
    description:
      - For C(bind), give each group's /dev/vfio/N to this user (C(--owner)). Handing the node
        over again is not counted as a change.
    type: str
  timeout:
    description: For C(bind), seconds to wait for the kernel to unbind a device (C(--timeout)).
    type: float
  iommu:
    description:
      - For C(iommu_enable), C(intel) or C(amd), when the firmware tables do not say (C(--iommu)).
    type: str
    choices: [intel, amd]
  no_pt:
    description: For C(iommu_enable), leave iommu=pt out (C(--no-pt)).
    type: bool
    default: false
  permanent:
    description:
      - For C(iommu_enable), change the default boot entry at once, without a trial boot
        (C(--permanent)). Without it vfioctl schedules a one-shot trial boot where the boot loader
        has one; see vfioctl-iommu-enable(1).
    type: bool
    default: false
  fail_on_verdict:
    description:
      - For C(status), fail when vfioctl exits 3 (passthrough will not work, or is not known to
        work). By default exit 3 is a result, returned as C(exit_code) and C(vfioctl.verdict).
    type: bool
    default: false
  root:
    description:
      - Run against a recorded or fixture host tree instead of / (C(--root)).
    type: path
  state_dir:
    description: Where vfioctl's journals live, under the root (C(--state-dir), absolute).
    type: str
  binary:
    description: The vfioctl program (a name looked up in PATH, or a path).
    type: str
    default: vfioctl
notes:
  - Supports check mode (C(--dry-run)).
  - Against C(root), vfioctl runs no commands (no update-grub, no modprobe); the JSON says what it
    would run.
  - Needs root privileges on a live host for C(bind) and C(iommu_enable) (C(become=true)).
requirements:
  - vfioctl on the managed host
author:
  - vfioctl authors
"""

EXAMPLES = r"""
- name: Diagnose the host
  vfioctl:
    command: status
  register: diag

- name: Show the verdict of the first GPU
  debug:
    msg: "{{ diag.vfioctl.gpus[0].verdict }}"

- name: Turn the IOMMU on (a trial boot first where the boot loader has one)
  vfioctl:
    command: iommu_enable
  become: true

- name: Turn the IOMMU on at once, no trial boot
  vfioctl:
    command: iommu_enable
    permanent: true
  become: true

- name: Give the GPU and its IOMMU group to vfio-pci, also at every boot
  vfioctl:
    command: bind
    targets: ["8a:00.0"]
    persistent: true
  become: true

- name: Against a recorded host tree, in check mode
  vfioctl:
    command: bind
    targets: ["10de:2336"]
    root: /srv/hosts/gpu01
  check_mode: true
"""

RETURN = r"""
vfioctl:
  description: vfioctl's JSON output, as it printed it.
  returned: when vfioctl printed JSON
  type: dict
exit_code:
  description: vfioctl's exit code (0 ok, 1 failure, 2 usage, 3 passthrough will not work).
  returned: always
  type: int
cmd:
  description: The command line that ran.
  returned: always
  type: list
  elements: str
trial_open:
  description:
    - For C(iommu_enable), true when vfioctl refused because a trial boot for the same parameters
      is scheduled already (nothing to change until the reboot and 'vfioctl iommu confirm').
  returned: for iommu_enable
  type: bool
hint:
  description: vfioctl's hint, on a failure.
  returned: on failure, when vfioctl gave one
  type: str
ansible_facts:
  description: For C(status), the diagnosis as C(vfioctl_status).
  returned: for status
  type: dict
"""

import json

from ansible.module_utils.basic import AnsibleModule

EXIT_OK = 0
EXIT_VERDICT = 3
# Trial states in which a trial boot is scheduled or being tried: enabling
# again has nothing to add (vfioctl-iommu-show(1)).
TRIAL_OPEN_STATES = ("pending", "running")


def build_argv(module, binary):
    p = module.params
    argv = [binary, "--json"]
    if p["root"]:
        argv += ["--root", p["root"]]
    command = p["command"]
    if command == "status":
        argv.append("status")
    elif command == "bind":
        argv.append("bind")
        if p["gpu"] is not None:
            argv += ["--gpu", str(p["gpu"])]
        if p["all_gpus"]:
            argv.append("--all-gpus")
        if p["with_nvswitches"]:
            argv.append("--with-nvswitches")
        if p["persistent"]:
            argv.append("--persistent")
        if p["force"]:
            argv.append("--force")
        if p["owner"]:
            argv += ["--owner", p["owner"]]
        if p["timeout"] is not None:
            argv += ["--timeout", repr(float(p["timeout"]))]
    elif command == "iommu_enable":
        argv += ["iommu", "enable", "--yes"]
        if p["iommu"]:
            argv += ["--iommu", p["iommu"]]
        if p["no_pt"]:
            argv.append("--no-pt")
        if p["permanent"]:
            argv.append("--permanent")
    if p["state_dir"]:
        argv += ["--state-dir", p["state_dir"]]
    if module.check_mode and command != "status":
        argv.append("--dry-run")
    if command == "bind" and p["targets"]:
        # After "--": an address never reads as an option.
        argv.append("--")
        argv += p["targets"]
    return argv


def bind_changed(out, dry_run):
    """Whether bind moved (or would move) a device or records a persistent binding."""
    if dry_run:
        moved = any(not item.get("already", False) for item in out.get("plan", []))
        written = (out.get("persistent_plan") or {}).get("write") or []
    else:
        moved = any(c.get("changed") is True for c in out.get("changes", []))
        written = (out.get("persistent") or {}).get("written") or []
    return bool(moved or written)


def trial_already_open(out):
    """vfioctl refused 'iommu enable' because a trial boot with every wanted
    parameter is scheduled already (the 'trial' and 'wanted' fields)."""
    trial = out.get("trial")
    if not isinstance(trial, dict) or trial.get("state") not in TRIAL_OPEN_STATES:
        return False
    op = trial.get("operation") or {}
    cmdline = ((op.get("trial") or {}).get("cmdline") or "").split()
    wanted = out.get("wanted") or []
    return bool(wanted) and all(w in cmdline for w in wanted)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="str", required=True, choices=["status", "bind", "iommu_enable"]),
            targets=dict(type="list", elements="str", default=[], aliases=["devices", "target"]),
            gpu=dict(type="int"),
            all_gpus=dict(type="bool", default=False),
            with_nvswitches=dict(type="bool", default=False),
            persistent=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            owner=dict(type="str"),
            timeout=dict(type="float"),
            iommu=dict(type="str", choices=["intel", "amd"]),
            no_pt=dict(type="bool", default=False),
            permanent=dict(type="bool", default=False),
            fail_on_verdict=dict(type="bool", default=False),
            root=dict(type="path"),
            state_dir=dict(type="str"),
            binary=dict(type="str", default="vfioctl"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    command = p["command"]
    if command == "bind" and not (p["targets"] or p["gpu"] is not None or p["all_gpus"]
                                  or p["with_nvswitches"]):
        module.fail_json(msg="bind needs targets, gpu, all_gpus or with_nvswitches")

    binary = p["binary"]
    if "/" not in binary:
        binary = module.get_bin_path(binary, required=True)
    argv = build_argv(module, binary)
    rc, stdout, stderr = module.run_command(argv, environ_update={"LC_ALL": "C.UTF-8"})
    # exit_code, not rc: Ansible takes a non-zero rc for a failure, and exit
    # 3 of status is a verdict.
    result = dict(changed=False, exit_code=rc, cmd=argv)

    try:
        out = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        out = None
    if not isinstance(out, dict):
        module.fail_json(msg="vfioctl printed no JSON object (exit code %d)" % rc,
                         stdout=stdout, stderr=stderr, **result)
    result["vfioctl"] = out
    dry_run = module.check_mode and command != "status"

    if command == "status":
        result["ansible_facts"] = dict(vfioctl_status=out)
        if rc == EXIT_OK or (rc == EXIT_VERDICT and not p["fail_on_verdict"]):
            module.exit_json(**result)
    elif command == "iommu_enable":
        result["trial_open"] = False
        if rc == EXIT_OK:
            result["changed"] = out.get("changed") is True
            module.exit_json(**result)
        if trial_already_open(out):
            result["trial_open"] = True
            module.exit_json(**result)
    elif command == "bind":
        if rc == EXIT_OK:
            result["changed"] = bind_changed(out, dry_run)
            module.exit_json(**result)

    if command == "status" and rc == EXIT_VERDICT:
        error = "passthrough will not work here (verdict %s)" % out.get("verdict")
    else:
        error = out.get("error") or "vfioctl failed with exit code %d" % rc
    if out.get("hint"):
        result["hint"] = out["hint"]
    msg = "vfioctl: " + error + ("; hint: " + out["hint"] if out.get("hint") else "")
    module.fail_json(msg=msg, rc=rc, stderr=stderr, **result)


if __name__ == "__main__":
    main()
