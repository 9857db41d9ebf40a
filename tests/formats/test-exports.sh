#!/usr/bin/env bash
# 'vfioctl export' checked by each consumer's own reader: promtool (the
# Prometheus package) for the textfile metrics, PyYAML for KubeVirt's
# snippet, and check_formats.py for NFD's labels (the Kubernetes label
# rules), Nova's [pci] options and the Ansible facts. Every format on every
# fixture host it applies to; then negative controls that prove each check
# can fail.
#   test-exports.sh VFIOCTL MKHOST
set -euo pipefail
vfioctl=$1
mkhost=$2
here=$(cd "$(dirname "$0")" && pwd)
check=("/usr/bin/python3" "$here/check_formats.py")
for tool in promtool /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/setup installs it)"; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

checked=0
for host in seed-before seed-after amd shared-group dgx dgx-vfio; do
  root=$work/$host
  "$mkhost" "$host" "$root" >/dev/null
  for format in nfd prometheus ansible kubevirt nova; do
    out=$work/$host.$format
    rc=0
    "$vfioctl" --root "$root" export --format "$format" >"$out" 2>"$out.err" || rc=$?
    # KubeVirt and Nova need GPUs on vfio-pci: only dgx-vfio has them.
    if [ "$format" = kubevirt ] || [ "$format" = nova ]; then
      if [ "$host" != dgx-vfio ]; then
        if [ "$rc" != 1 ] || ! grep -q "is on vfio-pci" "$out.err"; then
          fail "$host $format: rc $rc, expected 1 with nothing on vfio-pci: $(cat "$out.err")"
        fi
        continue
      fi
    fi
    [ "$rc" = 0 ] || { fail "$host $format: rc $rc: $(cat "$out.err")"; continue; }
    case $format in
      prometheus)
        lint=$(promtool check metrics <"$out" 2>&1) || fail "$host: promtool: $lint"
        [ -z "$lint" ] || fail "$host: promtool says: $lint" ;;
      *) "${check[@]}" "$format" "$out" || fail "$host $format: not valid" ;;
    esac
    checked=$((checked + 1))
  done
done
echo "checked $checked exports on 6 fixture hosts"
[ "$checked" = 20 ] || fail "checked $checked exports, expected 20"

# The written files: atomically in place, the fact script executable and
# printing the same facts.
root=$work/dgx-vfio
"$vfioctl" --root "$root" export --format nfd --write --expiry 600 >/dev/null
"${check[@]}" nfd "$root/etc/kubernetes/node-feature-discovery/features.d/vfioctl" ||
  fail "written nfd file"
head -1 "$root/etc/kubernetes/node-feature-discovery/features.d/vfioctl" | grep -q '^# +expiry-time=' ||
  fail "written nfd file has no expiry-time first"
"$vfioctl" --root "$root" export --format ansible --write >/dev/null
fact=$root/etc/ansible/facts.d/vfioctl.fact
[ -x "$fact" ] || fail "the fact script is not executable"
"$fact" >"$work/fact.json" || fail "the fact script failed"
"${check[@]}" ansible "$work/fact.json" || fail "the fact script's output"
grep -q '"vfio_gpus": 8' "$work/fact.json" || fail "the fact script does not see 8 GPUs on vfio-pci"

# Negative controls: each check rejects a broken file.
#   reject WHAT FORMAT SOURCE SED-EXPRESSION
reject() {
  local bad=$work/bad.$2
  sed "$4" "$work/$3" >"$bad"
  if cmp -s "$bad" "$work/$3"; then
    fail "negative control '$1': the edit changed nothing"
  elif [ "$2" = prometheus ]; then
    promtool check metrics <"$bad" >/dev/null 2>&1 && fail "promtool accepted $1"
  else
    "${check[@]}" "$2" "$bad" >/dev/null && fail "check_formats.py $2 accepted $1"
  fi
  return 0
}
reject "an unescaped quote" prometheus dgx.prometheus 's/model="GH100/model="GH"100/'
reject "a label name with a space" nfd dgx.nfd 's/^\(vfioctl.feature.node.kubernetes.io\/gpus\)=/\1 x=/'
reject "a namespace NFD denies" nfd dgx.nfd 's/^vfioctl\.feature\.node\.kubernetes\.io/vfioctl.io/'
reject "a string externalResourceProvider" kubevirt dgx-vfio.kubevirt \
  's/externalResourceProvider: true/externalResourceProvider: "yes"/'
reject "broken YAML indentation" kubevirt dgx-vfio.kubevirt 's/^    - pciVendorSelector/  - pciVendorSelector/'
reject "numa_policy strict" nova dgx-vfio.nova 's/"numa_policy":"legacy"/"numa_policy":"strict"/'
reject "a string iommu_enabled" ansible dgx.ansible 's/"iommu_enabled": true/"iommu_enabled": "yes"/'

if [ "$fails" -gt 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all export formats valid; 7 negative controls rejected"
