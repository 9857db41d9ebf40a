#!/usr/bin/python3
"""Checks the --json outputs of the real vfioctl against docs/schema/v1.

Usage: check-schemas.py VFIOCTL MKHOST SOURCE_DIR
       check-schemas.py --validate NAME FILE   FILE against NAME.schema.json
                                               (status, groups, bind, ...)

Each schema must itself be a valid draft 2020-12 schema. On every fixture
host that bench/mkhost.cpp names (and synthetic-8), and on every recording
in tests/fixtures/recorded, it runs 'status', 'groups', 'bind --dry-run' on
each GPU and each host-critical device (refusals), and where there is an
NVLink fabric (dgx) 'bind --all-gpus --with-nvswitches --dry-run'. A copy
of seed-after given a bind journal, a settlement, persistent bindings and a
driver_override shows those fields ('bind --persistent --dry-run', 'bind
--at-boot' of an absent device's entry too); one whose group member has no
sysfs directory shows an unreadable member. 'vm status' and 'vm list' on a
run directory holding a running VM (a fake QMP that answers with a q35 query-pci
recorded from QEMU), a VM whose QEMU is gone and a stale one; and a few
errors. Every output must validate against its schema, and each output kind
must have been seen at least once. Negative controls: real outputs with a
field removed, a type changed, an unknown word, or an extra field must FAIL
validation. Exit 1 on any failure, printing the JSON path and the message.
Only fixture trees are touched: every command runs with --root.
"""

import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import warnings

try:
    import jsonschema
except ImportError:
    sys.exit("check-schemas: python3-jsonschema is missing (scripts/setup installs it)")

warnings.filterwarnings("ignore", category=DeprecationWarning)

SCHEMAS = ["common", "error", "status", "groups", "bind", "vm-status"]
VERSION = 1

failures = []
seen = {}  # what kind of output validated, and how often


def fail(label, message):
    failures.append(f"{label}: {message}")
    print(f"FAIL {label}: {message}", flush=True)


def json_path(error):
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


class Schemas:
    """The schemas of one version, each found by its "$id" (its file name),
    so that "common.schema.json#/$defs/..." resolves: through a referencing
    Registry where jsonschema has one (4.18 on), else a RefResolver store
    keyed by file URI (Debian's 4.10)."""

    def __init__(self, directory):
        self.docs = {}
        for name in SCHEMAS:
            path = os.path.join(directory, f"{name}.schema.json")
            with open(path, encoding="utf-8") as f:
                self.docs[name] = json.load(f)
            if self.docs[name].get("$id") != f"{name}.schema.json":
                fail(f"{name}.schema.json", f'its "$id" is not "{name}.schema.json"')
        try:
            import referencing

            registry = referencing.Registry().with_resources(
                (doc["$id"], referencing.Resource.from_contents(doc)) for doc in self.docs.values()
            )

            def make(schema, name):
                del name
                return jsonschema.Draft202012Validator(schema, registry=registry)

        except ImportError:
            base = "file://" + os.path.abspath(directory) + "/"
            store = {base + d["$id"]: d for d in self.docs.values()}

            def make(schema, name):
                resolver = jsonschema.RefResolver(base + name, schema, store=store)
                return jsonschema.Draft202012Validator(schema, resolver=resolver)

        self.validators = {}
        for name, doc in self.docs.items():
            try:
                jsonschema.Draft202012Validator.check_schema(doc)
            except jsonschema.exceptions.SchemaError as e:
                fail(f"{name}.schema.json", f"not a valid schema: {json_path(e)}: {e.message}")
                continue
            self.validators[name] = make(doc, f"{name}.schema.json")
        # error.schema.json's $defs/plain: an error with no field of its own.
        plain = {"$ref": "error.schema.json#/$defs/plain"}
        self.validators["error-plain"] = make(plain, "error-plain.json")

    def errors(self, name, doc):
        """Every validation error, deepest first, as (path, message)."""
        found = []

        def walk(errs):
            for e in errs:
                if e.context:
                    walk(e.context)
                found.append((json_path(e), e.message))

        walk(self.validators[name].iter_errors(doc))
        return found


def validate(schemas, name, doc, label, kind=None):
    errs = schemas.errors(name, doc)
    for path, message in errs[:12]:
        fail(f"{label} ({name})", f"{path}: {message}")
    if not errs:
        seen[kind or name] = seen.get(kind or name, 0) + 1
    return not errs


def run(vfioctl, root, args, label, codes):
    cmd = [vfioctl, "--root", root, "--json"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if p.returncode not in codes:
        fail(label, f"exit {p.returncode}, expected one of {sorted(codes)}: {p.stderr.strip()}")
        return None
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        fail(label, f"stdout is not JSON ({e}): {p.stdout[:400]!r}")
        return None
    if isinstance(doc, dict) and doc.get("exit_code", p.returncode) != p.returncode:
        fail(label, f"exit_code {doc.get('exit_code')} but the exit status is {p.returncode}")
    return doc


def bind_kind(doc):
    if "error" in doc:
        return "bind: refused" if "refused" in doc else "bind: error"
    if doc.get("dry_run"):
        return "bind: dry run with --all-gpus" if "selection" in doc else "bind: dry run"
    return "bind: other"


def check_host(schemas, vfioctl, root, name, samples):
    status = run(vfioctl, root, ["status"], f"{name}: status", {0, 3})
    if status is not None and validate(schemas, "status", status, f"{name}: status"):
        samples.setdefault("status", (name, status))
    for args in (["groups"], ["groups", "--gpu"]):
        groups = run(vfioctl, root, args, f"{name}: {' '.join(args)}", {0})
        if groups is not None and validate(schemas, "groups", groups, f"{name}: {' '.join(args)}"):
            if groups["groups"] or "off_cause" in groups:
                samples.setdefault("groups", (name, groups))
    if status is None:
        return
    # Each GPU, and each device the host cannot lose (a refusal), alone.
    targets = [g["address"] for g in status["gpus"]]
    targets += [c["address"] for c in status["host_critical"] if c["address"] not in targets]
    for address in targets:
        label = f"{name}: bind --dry-run {address}"
        doc = run(vfioctl, root, ["bind", "--dry-run", address], label, {0, 1, 3})
        if doc is not None:
            kind = bind_kind(doc)
            if validate(schemas, "bind", doc, label, kind):
                samples.setdefault(kind, (label, doc))
    label = f"{name}: bind --dry-run --gpu 4096"
    doc = run(vfioctl, root, ["bind", "--dry-run", "--gpu", "4096"], label, {1})
    if doc is not None:
        validate(schemas, "bind", doc, label, bind_kind(doc))
    if status["fabric"] is not None:
        label = f"{name}: bind --all-gpus --with-nvswitches --dry-run"
        args = ["bind", "--all-gpus", "--with-nvswitches", "--dry-run"]
        doc = run(vfioctl, root, args, label, {0, 1, 3})
        if doc is not None:
            kind = bind_kind(doc)
            if kind != "bind: dry run with --all-gpus":
                fail(label, f"expected a dry run with a selection, got {kind}")
            if validate(schemas, "bind", doc, label, kind):
                samples.setdefault(kind, (label, doc))


BOOT_NOW = "6f1c2b1e-3d4a-4f5b-9c8d-7e6f5a4b3c2d"
BOOT_BEFORE = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
ABSENT = "0000:3f:00.0"


def write_in(root, path, text):
    """Writes root/path, refusing any path that leaves the fixture tree."""
    real_root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root, path.lstrip("/")))
    if os.path.commonpath([real_root, full]) != real_root:
        raise RuntimeError(f"{path} leaves the fixture {root}")
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as f:
        f.write(text)


def add_state(root, gpu, gpu_id, other):
    """What a host that has been used holds: a boot id, a bind journal of
    this, an earlier and an unknown boot, a settlement, persistent bindings
    from vfioctl, driverctl and modprobe.d (with a conflict, an entry of a
    device this host lacks and a misnamed one), and a driver_override."""
    write_in(root, "/proc/sys/kernel/random/boot_id", BOOT_NOW + "\n")

    def entry(address, boot):
        return {
            "address": address,
            "group": 3,
            "original_driver": "nvidia",
            "original_override": None,
            "phase": "bound",
            "since": "2026-11-30T10:00:00Z",
            "boot": boot,
        }

    entries = [entry(gpu, BOOT_NOW), entry(other, BOOT_BEFORE), entry(ABSENT, None)]
    journal = {"format": 1, "devices": entries}
    write_in(root, "/var/lib/vfioctl/journal.json", json.dumps(journal))
    settlement = {
        "at": "2026-11-30T09:00:00Z",
        "boot": BOOT_NOW,
        "count": 1,
        "devices": [entry(other, BOOT_BEFORE)],
    }
    settled = {"format": 1, "settlements": [settlement]}
    write_in(root, "/var/lib/vfioctl/settled.json", json.dumps(settled))
    write_in(root, f"/etc/vfioctl/bind.d/pci-{gpu}", "vfio-pci\n")
    write_in(root, f"/etc/vfioctl/bind.d/pci-{ABSENT}", "vfio-pci\n")
    write_in(root, "/etc/vfioctl/bind.d/not-an-entry", "vfio-pci\n")
    write_in(root, f"/etc/driverctl.d/pci-{gpu}", "nvidia\n")
    modprobe = f"options vfio-pci ids={gpu_id}\nsoftdep nvidia pre: vfio-pci\n"
    write_in(root, "/etc/modprobe.d/vfio.conf", modprobe)
    write_in(root, f"/sys/bus/pci/devices/{other}/driver_override", "vfio-pci\n")


def check_used_host(schemas, vfioctl, mkhost, tmp, samples):
    """seed-after with add_state: the journal, settlement, persistent
    bindings and driver_override fields, 'bind --persistent --dry-run' and
    'bind --at-boot' of an entry whose device is absent (nothing to write)."""
    root = os.path.join(tmp, "hosts", "used")
    p = subprocess.run([mkhost, "seed-after", root], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        fail("mkhost seed-after (used)", p.stderr.strip())
        return
    before = run(vfioctl, root, ["status"], "used: status before", {0, 3})
    if before is None or not before["gpus"]:
        fail("used", "seed-after has no GPU to use")
        return
    gpu, gpu_id = before["gpus"][0]["address"], before["gpus"][0]["id"]
    # driver_override shows on a device without a driver.
    groups = run(vfioctl, root, ["groups"], "used: groups before", {0})
    devices = [d for g in (groups or {}).get("groups", []) for d in g["devices"]]
    loose = [d["address"] for d in devices if d.get("driver") is None and d["address"] != gpu]
    other = loose[0] if loose else None
    if other is None:
        fail("used", "seed-after has no device without a driver")
        return
    add_state(root, gpu, gpu_id, other)
    status = run(vfioctl, root, ["status"], "used: status", {0, 3})
    if status is not None:
        states = sorted(e["boot_state"] for e in status["journal_pending"])
        if states != ["earlier", "this", "unknown"] or status["settled"]["last"] is None:
            fail("used: status", f"journal boot states {states}, settled {status['settled']}")
        p = status["persistent"]
        if not (p["bindings"] and p["conflicts"] and p["problems"] and p["softdeps"]):
            fail("used: status", f"persistent bindings not all read: {p}")
        if validate(schemas, "status", status, "used: status", "status: used host"):
            samples.setdefault("status: used host", ("used: status", status))
    groups = run(vfioctl, root, ["groups"], "used: groups", {0})
    if groups is not None:
        overrides = [d for g in groups["groups"] for d in g["devices"] if "driver_override" in d]
        overrides += [d for d in groups["ungrouped"] if "driver_override" in d]
        if not overrides:
            fail("used: groups", "no device shows the driver_override written")
        validate(schemas, "groups", groups, "used: groups", "groups: used host")
    for args in (["bind", "--dry-run", gpu], ["bind", "--dry-run", "--persistent", gpu]):
        label = "used: " + " ".join(args)
        doc = run(vfioctl, root, args, label, {0, 1, 3})
        if doc is not None:
            kind = bind_kind(doc)
            if "--persistent" in args:
                kind += " --persistent"
            validate(schemas, "bind", doc, label, kind)
    # With the boot hooks installed (and no other binding), --persistent plans its entries.
    hooked = os.path.join(tmp, "hosts", "hooked")
    p = subprocess.run([mkhost, "seed-after", hooked], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        fail("mkhost seed-after (hooked)", p.stderr.strip())
    else:
        write_in(hooked, "/lib/udev/rules.d/61-vfioctl.rules", "# vfioctl\n")
        write_in(hooked, "/lib/systemd/system/vfioctl-bind.service", "[Unit]\n")
        wants = "/etc/systemd/system/sysinit.target.wants/vfioctl-bind.service"
        write_in(hooked, wants, "[Unit]\n")
        label = f"hooked: bind --dry-run --persistent {gpu}"
        doc = run(vfioctl, hooked, ["bind", "--dry-run", "--persistent", gpu], label, {0})
        if doc is not None:
            if "persistent_plan" not in doc:
                fail(label, f"no persistent_plan: {doc}")
            if validate(schemas, "bind", doc, label, "bind: dry run --persistent"):
                samples.setdefault("bind: dry run --persistent", (label, doc))
    label = f"used: bind --at-boot {ABSENT}"
    doc = run(vfioctl, root, ["bind", "--at-boot", "--timeout", "1", ABSENT], label, {0})
    if doc is not None:
        if [i.get("outcome") for i in doc.get("items", [])] != ["absent"]:
            fail(label, f"expected one absent item: {doc}")
        if validate(schemas, "bind", doc, label, "bind: at boot"):
            samples.setdefault("bind: at boot", (label, doc))


def check_torn_host(schemas, vfioctl, mkhost, tmp, samples):
    """seed-after with one group member's sysfs directory gone: groups lists
    it as {"address", "unknown": true}."""
    root = os.path.join(tmp, "hosts", "torn")
    p = subprocess.run([mkhost, "seed-after", root], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        fail("mkhost seed-after (torn)", p.stderr.strip())
        return
    groups = run(vfioctl, root, ["groups"], "torn: groups before", {0})
    if not groups or not groups["groups"]:
        fail("torn", "seed-after has no IOMMU group")
        return
    victim = groups["groups"][0]["devices"][0]["address"]
    real_root = os.path.realpath(root)
    link = os.path.join(root, "sys", "bus", "pci", "devices", victim)
    target = os.path.realpath(link)
    if os.path.commonpath([real_root, target]) != real_root:
        fail("torn", f"{link} leaves the fixture")
        return
    shutil.rmtree(target)
    os.unlink(link)
    label = f"torn: groups ({victim} unreadable)"
    groups = run(vfioctl, root, ["groups"], label, {0})
    if groups is None:
        return
    unknown = [d for g in groups["groups"] for d in g["devices"] if d.get("unknown")]
    if [d["address"] for d in unknown] != [victim]:
        fail(label, f"expected {victim} as an unreadable member, got {unknown}")
    if validate(schemas, "groups", groups, label, "groups: unreadable member"):
        if groups["groups"][0]["devices"][0].get("unknown"):
            samples.setdefault("groups: unreadable member", (label, groups))
    status = run(vfioctl, root, ["status"], f"torn: status ({victim} unreadable)", {0, 3})
    if status is not None:
        validate(schemas, "status", status, "torn: status", "status: unreadable member")


def host_names(source_dir):
    """The names bench/mkhost.cpp's table holds, and synthetic-8."""
    with open(os.path.join(source_dir, "bench", "mkhost.cpp"), encoding="utf-8") as f:
        text = f.read()
    table = text[text.index("named = {") : text.index("};", text.index("named = {"))]
    names = re.findall(r'\{"([a-z0-9-]+)",', table)
    if len(names) < 10:
        fail("bench/mkhost.cpp", f"only {len(names)} host names found: {names}")
    return names + ["synthetic-8"]


def recordings(source_dir, tmp):
    """tests/fixtures/recorded: directories, and NAME.tar.gz unpacked into tmp."""
    base = os.path.join(source_dir, "tests", "fixtures", "recorded")
    out = []
    for entry in sorted(os.listdir(base)):
        path = os.path.join(base, entry)
        if os.path.isdir(path):
            out.append((entry, path))
        elif entry.endswith(".tar.gz"):
            with tarfile.open(path) as t:
                t.extractall(tmp)
            out.append((entry[: -len(".tar.gz")], os.path.join(tmp, entry[: -len(".tar.gz")])))
    return out


class FakeQmp(threading.Thread):
    """A QMP socket that answers as QEMU does: greeting, capabilities,
    query-status "running", and query-pci with a reply recorded from QEMU."""

    def __init__(self, path, query_pci):
        super().__init__(daemon=True)
        self.query_pci = query_pci
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        def send(obj):
            conn.sendall((json.dumps(obj) + "\r\n").encode())

        with conn:
            version = {"qemu": {"major": 8, "minor": 2, "micro": 2}, "package": ""}
            send({"QMP": {"version": version, "capabilities": []}})
            buf = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    command = json.loads(line)["execute"]
                    if command == "query-status":
                        state = {"status": "running", "singlestep": False, "running": True}
                        send({"return": state})
                    elif command == "query-pci":
                        send(self.query_pci)
                    else:
                        send({"return": {}})


def write_record(run_dir, name, pid, devices, device_ids, ssh_port=None):
    d = os.path.join(run_dir, name)
    os.makedirs(d, exist_ok=True)
    record = {
        "name": name,
        "pid": pid,
        "started": int(time.time()) - 90,
        "accel": "tcg",
        "qmp_socket": os.path.join(d, "qmp.sock"),
        "console_socket": os.path.join(d, "console.sock"),
        "console_log": os.path.join(d, "console.log"),
        "pidfile": os.path.join(d, "qemu.pid"),
        "ssh_port": ssh_port,
        "devices": devices,
        "device_ids": device_ids,
        "argv": ["qemu-system-x86_64"],
        "profile": "",
    }
    with open(os.path.join(d, "vm.json"), "w", encoding="utf-8") as f:
        json.dump(record, f)
    return d


def check_vms(schemas, vfioctl, root, source_dir, tmp, samples):
    run_dir = os.path.join(tmp, "run")
    os.makedirs(run_dir)
    common = ["--run-dir", run_dir]
    empty = run(vfioctl, root, ["vm", "status"] + common, "vm status (none)", {0})
    if empty is not None:
        if empty.get("vms") != []:
            fail("vm status (none)", f"expected no VMs: {empty}")
        validate(schemas, "vm-status", empty, "vm status (none)", "vm status: none")

    recorded = os.path.join(source_dir, "tests", "fixtures", "qmp", "query-pci-q35.json")
    with open(recorded, encoding="utf-8") as f:
        query_pci = json.load(f)
    # A running VM: this process stands for QEMU, the fake QMP answers.
    d = write_record(run_dir, "alive", os.getpid(), ["0000:01:00.0"], ["1af4:1041"], ssh_port=2222)
    qmp = FakeQmp(os.path.join(d, "qmp.sock"), query_pci)
    qmp.start()
    # A VM whose QEMU is gone with a device: "stale"; one without: cleaned.
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    write_record(run_dir, "gone", child.pid, ["0000:02:00.0"], ["10de:2336"])

    one = run(vfioctl, root, ["vm", "status", "alive"] + common, "vm status alive", {0})
    if one is not None:
        on_bus = one.get("guest_pci") and one.get("missing_on_guest_bus") == []
        if one.get("status") != "running" or not on_bus:
            fail("vm status alive", f"expected a running VM with 1af4:1041 on its bus: {one}")
        if validate(schemas, "vm-status", one, "vm status alive", "vm status: one running VM"):
            samples.setdefault("vm status: one", ("vm status alive", one))
    stale = run(vfioctl, root, ["vm", "status", "gone"] + common, "vm status gone", {1})
    if stale is not None:
        if stale.get("status") != "stale" or "error" not in stale:
            fail("vm status gone", f"expected a stale VM with an error: {stale}")
        validate(schemas, "vm-status", stale, "vm status gone", "vm status: one stale VM")
    write_record(run_dir, "cleaned", child.pid, [], [])
    for args in (["vm", "status"], ["vm", "list"]):
        label = " ".join(args) + " (three VMs)"
        every = run(vfioctl, root, args + common, label, {0})
        if every is None:
            continue
        statuses = sorted(v.get("status") for v in every.get("vms", []))
        want = ["running", "stale"] + (["stale (cleaned)"] if args[1] == "status" else [])
        if statuses != sorted(want):
            fail(label, f"statuses {statuses}, expected {sorted(want)}")
        if validate(schemas, "vm-status", every, label, "vm status: every VM"):
            samples.setdefault("vm status: every", (label, every))
    nosuch = run(vfioctl, root, ["vm", "status", "nosuch"] + common, "vm status nosuch", {1})
    if nosuch is not None:
        validate(schemas, "error-plain", nosuch, "vm status nosuch", "error")
    qmp.sock.close()


def check_errors(schemas, vfioctl, root, samples):
    for args, codes in (
        (["groups", "--device", "ffff:ff:1f.7"], {1}),
        (["status", "--state-dir", "relative"], {2}),
        (["no-such-command"], {2}),
    ):
        label = " ".join(args)
        doc = run(vfioctl, root, args, label, codes)
        if doc is not None and validate(schemas, "error-plain", doc, label, "error"):
            samples.setdefault("error", (label, doc))


REMOVE = object()  # a mutation that deletes the field

# Per kind of output: (what, path, new value or REMOVE), each a change that
# its schema must reject. Every kind also gets the first three of ANY.
ANY = [
    ("an extra top-level field", ["surprise"], 1),
    ("schema_version removed", ["schema_version"], REMOVE),
    ("schema_version 2", ["schema_version"], 2),
]
MUTATIONS = {
    "status: used host": [
        ("a boot_state unknown", ["journal_pending", 0, "boot_state"], "yesterday"),
        ("a journal boot a number", ["journal_pending", 0, "boot"], 7),
        ("settled.last.count a string", ["settled", "last", "count"], "1"),
        ("a conflict's where a string", ["persistent", "conflicts", 0, "where"], "/etc"),
        ("a binding's source unknown", ["persistent", "bindings", 0, "source"], "grub"),
    ],
    "status": [
        ("verdict removed", ["verdict"], REMOVE),
        ("verdict an unknown word", ["verdict"], "maybe"),
        ("iommu.group_count a string", ["iommu", "group_count"], "3"),
        ("a nullable fact made a string", ["iommu", "interrupt_remapping"], "yes"),
        ("gpus[0] an extra field", ["gpus", 0, "surprise"], True),
        ("gpus[0].health.link.state unknown", ["gpus", 0, "health", "link", "state"], "sideways"),
        ("gpus[0].driver removed", ["gpus", 0, "driver"], REMOVE),
        ("numa.memlock.verdict removed", ["numa", "memlock", "verdict"], REMOVE),
        ("boot.trial.state unknown", ["boot", "trial", "state"], "maybe"),
    ],
    "groups: unreadable member": [
        ("unknown false", ["groups", 0, "devices", 0, "unknown"], False),
        ("unknown removed", ["groups", 0, "devices", 0, "unknown"], REMOVE),
        ("an extra field", ["groups", 0, "devices", 0, "driver"], None),
    ],
    "groups": [
        ("groups removed", ["groups"], REMOVE),
        ("iommu_enabled a string", ["iommu_enabled"], "true"),
        ("a device address not an address", ["groups", 0, "devices", 0, "address"], "8a:00"),
        ("a device's health removed", ["groups", 0, "devices", 0, "health"], REMOVE),
        ("groups[0] an extra field", ["groups", 0, "surprise"], []),
    ],
    "bind: dry run": [
        ("plan removed", ["plan"], REMOVE),
        ("dry_run false", ["dry_run"], False),
        ("plan[0].group a string", ["plan", 0, "group"], "7"),
        ("persistent.known removed", ["persistent", "known"], REMOVE),
    ],
    "bind: refused": [
        ("refused[0].kind unknown", ["refused", 0, "kind"], "dunno"),
        ("exit_code removed", ["exit_code"], REMOVE),
        ("plan removed", ["plan"], REMOVE),
    ],
    "bind: at boot": [
        ("items[0].outcome unknown", ["items", 0, "outcome"], "maybe"),
        ("items[0].from removed", ["items", 0, "from"], REMOVE),
    ],
    "vm status: one": [
        ("alive a string", ["alive"], "yes"),
        ("guest_pci[0].id a number", ["guest_pci", 0, "id"], 4161),
        ("pid removed", ["pid"], REMOVE),
    ],
    "vm status: every": [
        ("vms[0] an extra field", ["vms", 0, "surprise"], 1),
        ("vms[0].ssh_port a string", ["vms", 0, "ssh_port"], "22"),
    ],
    "error": [
        ("error removed", ["error"], REMOVE),
        ("exit_code 0", ["exit_code"], 0),
    ],
}


def mutations(kind, doc):
    """(what, changed copy) pairs that a schema must reject."""
    table = ANY + next((m for k, m in MUTATIONS.items() if kind.startswith(k)), [])
    out = []
    for what, path, value in table:
        d = copy.deepcopy(doc)
        try:
            parent = d
            for part in path[:-1]:
                parent = parent[part]
            if value is REMOVE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # the sample lacks that part (no GPU, no group)
        out.append((what, d))
    return out


def negative_controls(schemas, samples):
    schema_of = {"status": "status", "groups": "groups", "error": "error-plain", "bind": "bind"}
    count = 0
    for kind, (label, doc) in sorted(samples.items()):
        name = next((n for k, n in schema_of.items() if kind.startswith(k)), "vm-status")
        controls = mutations(kind, doc)
        if len(controls) < 5:
            fail(f"negative controls on {kind}", f"only {len(controls)} applied to {label}")
        for what, bad in controls:
            count += 1
            if not schemas.errors(name, bad):
                fail(f"negative control on {kind} ({label})", f"{what}: {name} accepted it")
    return count


def validate_file(name, path):
    """--validate: one saved output (an e2e scenario's) against its schema."""
    source_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    schemas = Schemas(os.path.join(source_dir, "docs", "schema", f"v{VERSION}"))
    if name not in schemas.validators:
        fail(path, f"no schema named {name}")
    if failures:
        return 1
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    validate(schemas, name, doc, path)
    return 1 if failures else 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--validate":
        return validate_file(sys.argv[2], sys.argv[3])
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    vfioctl, mkhost, source_dir = (os.path.abspath(a) for a in sys.argv[1:])
    schemas = Schemas(os.path.join(source_dir, "docs", "schema", f"v{VERSION}"))
    if failures:
        return 1
    samples = {}
    with tempfile.TemporaryDirectory(prefix="vfioctl-schema-") as tmp:
        names = host_names(source_dir)
        roots = []
        for name in names:
            root = os.path.join(tmp, "hosts", name)
            p = subprocess.run([mkhost, name, root], capture_output=True, text=True, check=False)
            if p.returncode != 0:
                fail(f"mkhost {name}", p.stderr.strip())
                continue
            roots.append((name, root))
        roots += recordings(source_dir, os.path.join(tmp, "recorded"))
        for name, root in roots:
            check_host(schemas, vfioctl, root, name, samples)
        check_used_host(schemas, vfioctl, mkhost, tmp, samples)
        check_torn_host(schemas, vfioctl, mkhost, tmp, samples)
        check_vms(schemas, vfioctl, roots[0][1], source_dir, tmp, samples)
        check_errors(schemas, vfioctl, roots[0][1], samples)
    wanted = [
        "status",
        "groups",
        "bind: dry run",
        "bind: dry run with --all-gpus",
        "bind: refused",
        "bind: error",
        "bind: at boot",
        "bind: dry run --persistent",
        "bind: error --persistent",
        "status: used host",
        "groups: used host",
        "groups: unreadable member",
        "status: unreadable member",
        "vm status: none",
        "vm status: one running VM",
        "vm status: one stale VM",
        "vm status: every VM",
        "error",
    ]
    for kind in wanted:
        if not seen.get(kind):
            fail("coverage", f"no valid output of kind '{kind}' was seen")
    controls = negative_controls(schemas, samples)
    names = ", ".join(n for n, _ in roots)
    print(f"hosts: {len(roots)} ({names}), and seed-after used, hooked and torn")
    print("valid outputs: " + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
    print(f"negative controls: {controls}, each rejected unless listed above")
    if failures:
        print(f"check-schemas: {len(failures)} failure(s)")
        return 1
    print("check-schemas: every output matches its schema")
    return 0


if __name__ == "__main__":
    sys.exit(main())
