#!/usr/bin/env bash
# The installed tree and the Debian package, as a user meets them:
#   tests/install/test-package.sh BUILD_DIR SOURCE_DIR
# 1. 'cmake --install' into a DESTDIR puts exactly tests/install/files.txt
#    there, plus one compressed man page per generated page (build/man).
# 2. Every installed man page renders, 'MANWIDTH=80 man --warnings -l', with
#    nothing on stderr.
# 3. The completion tests (tests/completion) pass against the installed
#    bash, zsh and fish files.
# 4. The installed binary's --version names the project version and the
#    commit of the source tree.
# 5. scripts/package's way (cpack) makes BUILD_DIR/pkg/vfioctl_*.deb holding
#    the same files, with Depends from dpkg-shlibdeps, qemu-system-x86
#    recommended and the /etc file a conffile; lintian finds no error and no
#    warning that tests/install/lintian-allowed.txt does not list.
# The .deb it leaves is what the e2e scenario 'package' installs in L1.
set -euo pipefail
build=$(cd "${1:?usage: test-package.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?usage: test-package.sh BUILD_DIR SOURCE_DIR}" && pwd)
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
for tool in man dpkg-deb lintian gzip cpack; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup installs it)"
done

dest=$build/install-test
rm -rf "$dest"
DESTDIR=$dest cmake --install "$build" --prefix /usr >"$build/install-test.log" ||
  fail "cmake --install failed: $(tail -5 "$build/install-test.log")"

echo "== the installed files"
expected=$(mktemp) actual=$(mktemp) lintian_err=$(mktemp)
trap 'rm -f "$expected" "$actual" "$lintian_err"' EXIT
{
  grep -v -e '^#' -e '^$' "$src/tests/install/files.txt"
  for page in "$build"/man/*.1; do
    echo "/usr/share/man/man1/$(basename "$page").gz"
  done
} | sort >"$expected"
(cd "$dest" && find . -type f -o -type l | sed 's|^\.||' | sort) >"$actual"
if ! diff -u "$expected" "$actual"; then
  fail "the installed files differ from tests/install/files.txt and build/man (- expected, + installed)"
fi
ok "$(wc -l <"$actual") files, as listed"
for page in vfioctl vfioctl-bind vfioctl-vm-run vfioctl-iommu-enable vfioctl-recover; do
  [ -f "$dest/usr/share/man/man1/$page.1.gz" ] || fail "no man page $page(1)"
done
ok "vfioctl(1), vfioctl-bind(1), vfioctl-vm-run(1), vfioctl-iommu-enable(1), vfioctl-recover(1) are there"
[ -x "$dest/usr/bin/vfioctl" ] || fail "/usr/bin/vfioctl is not executable"

echo "== man pages render without warnings"
n=0
for page in "$dest"/usr/share/man/man1/*.1.gz; do
  gzip -t "$page" || fail "$page is not gzip"
  out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) ||
    fail "man -l $(basename "$page") failed: $out"
  [ -z "$out" ] || fail "man --warnings -l $(basename "$page"): $out"
  n=$((n + 1))
done
[ "$n" -gt 10 ] || fail "only $n man pages"
ok "$n man pages render with no warning"

echo "== completions, installed"
# Given the installed bash directory, the script finds the zsh and fish
# files at their installed paths next to it.
"$src/tests/completion/test-completions.sh" "$dest/usr/share/bash-completion/completions" ||
  fail "the completion tests failed on the installed files"

echo "== --version"
version=$(sed -n 's/^project(vfioctl VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
out=$("$dest/usr/bin/vfioctl" --version)
case "$out" in "vfioctl $version (commit "*")") ;; *) fail "--version says '$out', not 'vfioctl $version (commit ...)'" ;; esac
if git -C "$src" rev-parse HEAD >/dev/null 2>&1; then
  head=$(git -C "$src" rev-parse --short=12 HEAD)
  case "$out" in *"(commit $head)" | *"(commit $head-dirty)") ;; *) fail "--version says '$out', HEAD is $head" ;; esac
fi
ok "--version: $out"

echo "== the Debian package"
rm -f "$build"/pkg/vfioctl_*.deb
(cd "$build" && cpack -G DEB -B pkg >"$build/cpack.log" 2>&1) || fail "cpack failed: $(tail -5 "$build/cpack.log")"
deb=$(ls "$build"/pkg/vfioctl_*.deb)
case "$(basename "$deb")" in "vfioctl_${version}_$(dpkg --print-architecture).deb") ;; *) fail "package named $deb" ;; esac
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\.||' | sort >"$expected"
diff -u "$actual" "$expected" || fail "the package's files differ from the installed ones (+ in the package)"
ok "$(basename "$deb") holds the same $(wc -l <"$expected") files"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Version)" = "$version" ] || fail "Version $(field Version), not $version"
for dep in libc6 libpci3 libkmod2 libstdc++6; do
  case ", $(field Depends)," in *", $dep "*) ;; *) fail "Depends lacks $dep: $(field Depends)" ;; esac
done
case "$(field Recommends)" in *qemu-system-x86*) ;; *) fail "qemu-system-x86 is not recommended: $(field Recommends)" ;; esac
ok "Version $version; Depends $(field Depends); Recommends $(field Recommends)"
control=$(mktemp -d)
dpkg-deb -e "$deb" "$control"
[ "$(cat "$control/conffiles")" = /etc/vfioctl/vms/example.toml ] || fail "conffiles: $(cat "$control/conffiles")"
rm -rf "$control"
ok "conffiles: /etc/vfioctl/vms/example.toml"

# As root lintian says so on stderr; its findings are on stdout.
# Exit 0: no finding; 2: findings (read below); anything else: lintian
# itself failed, and an empty output would read as a clean report.
lintian_rc=0
findings=$(lintian "$deb" 2>"$lintian_err") || lintian_rc=$?
case "$lintian_rc" in
0 | 2) ;;
*) fail "lintian failed (exit $lintian_rc): $(tail -n 5 "$lintian_err")" ;;
esac
allowed=$(grep -v -e '^#' -e '^$' "$src/tests/install/lintian-allowed.txt" | awk '{ print $1 }' || true)
bad=$(grep -E '^[EW]: ' <<<"$findings" | while read -r _ _ tag _; do
  grep -qxF -- "$tag" <<<"$allowed" || echo "$tag"
done || true)
echo "$findings"
[ -z "$bad" ] || fail "lintian: $(echo "$bad" | sort -u | tr '\n' ' ')"
ok "lintian: no error, no warning outside tests/install/lintian-allowed.txt"
echo "PASS"
