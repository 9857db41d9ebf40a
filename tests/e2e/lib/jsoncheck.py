"""Checks and queries on a JSON document for the e2e scenarios.

Usage: jsoncheck.py check FILE EXPR [WHAT]   exit 0 when EXPR is true
       jsoncheck.py eval FILE EXPR           print the value of EXPR
       jsoncheck.py same FILE_A FILE_B [IGNORE...]
                                             exit 0 when both are equal, but
                                             at paths IGNORE (regexes of
                                             "$.a.b[0]" paths) matches

EXPR is a Python expression with d bound to the document and the helpers
below. A file that is not JSON, or an EXPR that raises, is a failure that
prints the reason and the document.
"""

import json
import re
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def helpers(d):
    """Names an expression can use besides d."""

    def group_of(address):
        """The group in d["groups"] holding the device at address, or None."""
        for g in d.get("groups", []):
            if any(dev.get("address") == address for dev in g.get("devices", [])):
                return g
        return None

    def addresses(group):
        return sorted(dev.get("address") for dev in (group or {}).get("devices", []))

    def gpu(address):
        """The entry in d["gpus"] for address, or None."""
        for g in d.get("gpus", []):
            if g.get("address") == address:
                return g
        return None

    def text(value):
        """All strings in value joined, for "… in text(x)" checks."""
        return json.dumps(value)

    return {"d": d, "group_of": group_of, "addresses": addresses, "gpu": gpu, "text": text}


def show(d):
    out = json.dumps(d, indent=2, sort_keys=True)
    if len(out) > 6000:
        out = out[:6000] + "\n…"
    print(out, file=sys.stderr)


def differences(a, b, path="$"):
    """Paths where a and b differ."""
    if type(a) is not type(b):
        return [f"{path}: {json.dumps(a)} != {json.dumps(b)}"]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: missing on the left")
            elif k not in b:
                out.append(f"{path}.{k}: missing on the right")
            else:
                out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        out = []
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items != {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: {json.dumps(a)} != {json.dumps(b)}"]


def main(argv):
    if len(argv) < 4 or argv[1] not in ("check", "eval", "same"):
        print(__doc__, file=sys.stderr)
        return 2
    mode = argv[1]
    try:
        d = load(argv[2])
    except (OSError, ValueError) as e:
        print(f"jsoncheck: {argv[2]}: {e}", file=sys.stderr)
        return 1
    if mode == "same":
        try:
            other = load(argv[3])
        except (OSError, ValueError) as e:
            print(f"jsoncheck: {argv[3]}: {e}", file=sys.stderr)
            return 1
        ignore = [re.compile(r) for r in argv[4:]]
        diff = []
        for line in differences(d, other):
            path = line.split(":", 1)[0]
            if any(r.search(path) for r in ignore):
                print(f"ignored: {line}")
            else:
                diff.append(line)
        for line in diff:
            print(line)
        return 1 if diff else 0
    try:
        value = eval(argv[3], helpers(d))  # noqa: S307 - test expressions
    except Exception as e:  # noqa: BLE001 - any error is a failed check
        print(f"jsoncheck: {argv[3]}: {type(e).__name__}: {e}", file=sys.stderr)
        show(d)
        return 1
    if mode == "eval":
        print(value if isinstance(value, str) else json.dumps(value))
        return 0
    if not value:
        print(f"jsoncheck: not true: {argv[3]}", file=sys.stderr)
        show(d)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
