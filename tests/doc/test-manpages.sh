#!/usr/bin/env bash
# Checks the man pages of MANDIR against the real binary: every command
# and subcommand that 'vfioctl [CMD [SUB]] --help' lists has its page, and
# every option, positional and subcommand that --help shows is an item
# (.TP) of that page; every page renders with 'man --warnings' silent and
# has a SEE ALSO section.
#   tests/doc/test-manpages.sh VFIOCTL MANDIR
# MANDIR: build/man, or an installed .../share/man/man1. Exits 1 on a
# failed check, 2 when man is missing.
set -uo pipefail
bin=${1:?usage: test-manpages.sh VFIOCTL MANDIR}
mandir=${2:?usage: test-manpages.sh VFIOCTL MANDIR}
command -v man >/dev/null || { echo "man is not installed" >&2; exit 2; }

failed=0
pages=0
items=0
fail() {
    echo "FAIL $*"
    failed=1
}

# The names --help lists in section SECTION ("Options", "Positionals",
# "Subcommands"): the first word of each entry, split at commas.
help_names() {
    awk -v want="$2:" '
        /^[^ ]/ { in_section = ($0 == want); next }
        in_section && /^  [^ ]/ { print $1 }' <<<"$1" | tr ',' '\n'
}

# The items of a page: the line after each .TP, with roff escapes undone.
page_items() {
    awk 'tp { print; tp = 0 } /^\.TP/ { tp = 1 }' "$1" |
        sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\|//g'
}

check_command() {
    local path=$1 page help name
    page=$mandir/vfioctl${path:+-${path// /-}}.1
    # shellcheck disable=SC2086
    help=$("$bin" $path --help) || { fail "'vfioctl $path --help' failed"; return; }
    if [ ! -f "$page" ]; then
        fail "no page $page for 'vfioctl $path'"
        return
    fi
    pages=$((pages + 1))
    local page_text
    page_text=$(page_items "$page")
    for section in Options Positionals Subcommands; do
        while read -r name; do
            [ -n "$name" ] || continue
            items=$((items + 1))
            if ! grep -qE -- "(^|[ ,])$(sed 's/[.[\*^$]/\\&/g' <<<"$name")([ ,]|\$)" <<<"$page_text"; then
                fail "$(basename "$page"): '$name' (${section} of 'vfioctl $path --help') is not on the page"
            fi
        done < <(help_names "$help" "$section")
    done
    while read -r name; do
        [ -n "$name" ] && check_command "${path:+$path }$name"
    done < <(help_names "$help" Subcommands)
}

check_command ""

for page in "$mandir"/*.1; do
    # C.UTF-8: always there on Debian; a locale that is not installed would
    # make man warn about it, not about the page.
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "$(basename "$page"): man --warnings: $warnings"
    grep -q '^\.SH SEE ALSO' "$page" || fail "$(basename "$page"): no SEE ALSO"
done

echo "$pages pages, $items options and commands from --help checked: $([ $failed = 0 ] && echo all on their pages || echo some FAILED)"
exit $failed
