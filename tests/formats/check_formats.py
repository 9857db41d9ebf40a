#!/usr/bin/python3
"""Checks what 'vfioctl export' writes the way its consumers read it.

  check_formats.py nfd FILE        NFD local feature file: directives, Kubernetes
                                   label names and values, the 64 KiB limit
  check_formats.py kubevirt FILE   YAML parsed; KubeVirt's permittedHostDevices
                                   pciHostDevices entries and their field types
  check_formats.py nova FILE       nova.conf [pci]: device_spec and alias JSON
                                   with the keys and values Nova accepts
  check_formats.py ansible FILE    the facts JSON object ansible_local shows

Exits 1 and prints each problem when the file is not valid.
"""
import json
import re
import sys

# k8s.io/apimachinery validation: qualified names and label values.
NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
# NFD's defaults: its own namespaces and their subdomains only.
NFD_NAMESPACES = ("feature.node.kubernetes.io", "profile.node.kubernetes.io")


def label_problems(name, value, nfd=True):
    problems = []
    prefix, _, short = name.rpartition("/")
    if "/" in name:
        if len(prefix) > 253 or not re.fullmatch(DNS1123_SUBDOMAIN, prefix):
            problems.append(f"prefix {prefix!r} is not a DNS subdomain")
        elif nfd and not any(prefix == ns or prefix.endswith("." + ns) for ns in NFD_NAMESPACES):
            problems.append(f"prefix {prefix!r} is not in a namespace NFD allows by default")
    if len(short) > 63 or not re.fullmatch(NAME, short):
        problems.append(f"name {short!r} is not a valid label name")
    if value and (len(value) > 63 or not re.fullmatch(NAME, value)):
        problems.append(f"value {value!r} is not a valid label value")
    return problems


def check_nfd(data):
    problems = []
    if len(data) > 64 * 1024:
        problems.append(f"{len(data)} bytes: NFD ignores files over 65536")
    text = data.decode("utf-8")
    labels = 0
    for n, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line.startswith("# +"):
            key, eq, value = line[3:].partition("=")
            if key == "expiry-time" and eq:
                if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                                    value.strip()):
                    problems.append(f"line {n}: expiry-time {value!r} is not RFC 3339")
            elif key not in ("no-feature", "no-label"):
                problems.append(f"line {n}: unknown directive {line!r}")
            continue
        if line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        problems += [f"line {n}: {p}" for p in label_problems(name, value)]
        labels += 1
    if labels == 0:
        problems.append("no labels")
    return problems


def check_kubevirt(data):
    import yaml  # python3-yaml
    problems = []
    doc = yaml.safe_load(data)
    try:
        entries = doc["permittedHostDevices"]["pciHostDevices"]
    except (TypeError, KeyError):
        return ["no permittedHostDevices.pciHostDevices"]
    if not isinstance(entries, list) or not entries:
        return ["pciHostDevices is not a non-empty list"]
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or set(e) != {"pciVendorSelector", "resourceName",
                                                 "externalResourceProvider"}:
            problems.append(f"entry {i}: fields {sorted(e) if isinstance(e, dict) else e!r}")
            continue
        if not isinstance(e["pciVendorSelector"], str) or not re.fullmatch(
                r"[0-9A-F]{4}:[0-9A-F]{4}", e["pciVendorSelector"]):
            problems.append(f"entry {i}: pciVendorSelector {e['pciVendorSelector']!r}")
        # A Kubernetes extended resource name: a qualified name with a domain.
        rn = e["resourceName"]
        if not isinstance(rn, str) or not rn.startswith("nvidia.com/") or label_problems(
                rn, "", nfd=False):
            problems.append(f"entry {i}: resourceName {rn!r}")
        if e["externalResourceProvider"] is not True:
            problems.append(f"entry {i}: externalResourceProvider is not true")
    return problems


def check_nova(data):
    problems = []
    section = None
    specs = aliases = 0
    for n, line in enumerate(data.decode("utf-8").split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        key, eq, value = line.partition(" = ")
        if section != "[pci]" or not eq:
            problems.append(f"line {n}: {line!r} outside [pci] or not KEY = VALUE")
            continue
        try:
            obj = json.loads(value)
        except ValueError as e:
            problems.append(f"line {n}: not JSON: {e}")
            continue
        if key == "device_spec":
            specs += 1
            if set(obj) - {"vendor_id", "product_id", "address"}:
                problems.append(f"line {n}: device_spec keys {sorted(obj)}")
            if not re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", obj.get("address", "")):
                problems.append(f"line {n}: address {obj.get('address')!r}")
        elif key == "alias":
            aliases += 1
            if set(obj) != {"vendor_id", "product_id", "device_type", "name", "numa_policy"}:
                problems.append(f"line {n}: alias keys {sorted(obj)}")
            if obj.get("device_type") not in ("type-PCI", "type-PF", "type-VF"):
                problems.append(f"line {n}: device_type {obj.get('device_type')!r}")
            if obj.get("numa_policy") not in ("legacy", "preferred", "required", "socket"):
                problems.append(f"line {n}: numa_policy {obj.get('numa_policy')!r}")
        else:
            problems.append(f"line {n}: unknown option {key!r}")
            continue
        for k in ("vendor_id", "product_id"):
            if not re.fullmatch(r"[0-9a-f]{4}", obj.get(k, "")):
                problems.append(f"line {n}: {k} {obj.get(k)!r}")
    if not specs or not aliases:
        problems.append(f"{specs} device_spec and {aliases} alias lines")
    return problems


def check_ansible(data):
    problems = []
    facts = json.loads(data)
    want = {"iommu_enabled": bool, "iommu_groups": int, "verdict": str,
            "passthrough_ready": bool, "journal_pending": int, "gpus": list, "vfio_gpus": int,
            "on_vfio": list, "vfioctl_version": str, "read_at": str}
    for k, t in want.items():
        if not isinstance(facts.get(k), t):
            problems.append(f"{k}: {facts.get(k)!r} is not {t.__name__}")
    if facts.get("reboot_pending") not in (True, False, None):
        problems.append(f"reboot_pending: {facts.get('reboot_pending')!r}")
    return problems


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("nfd", "kubevirt", "nova", "ansible"):
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[2], "rb") as f:
        data = f.read()
    try:
        problems = globals()["check_" + sys.argv[1]](data)
    except Exception as e:  # a file that does not even parse
        problems = [f"{type(e).__name__}: {e}"]
    for p in problems:
        print(f"{sys.argv[2]}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
