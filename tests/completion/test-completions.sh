#!/usr/bin/env bash
# Drives the vfioctl completions of DIR in bash, zsh and fish, as a user's
# TAB would, and checks what they offer.
#   tests/completion/test-completions.sh DIR
# DIR holds vfioctl.bash (or vfioctl, as installed under
# bash-completion/completions), _vfioctl and vfioctl.fish: build/completions,
# or the installed files, e.g.
#   test-completions.sh "$DESTDIR/usr/share/bash-completion/completions"
# finds the zsh and fish files by their installed paths next to it
# (ZSH_DIR and FISH_DIR override). A shell that is not installed is
# skipped with a message. Exits 1 on a failed check.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: test-completions.sh DIR}
dir=$(cd "$dir" && pwd)
fixture=$here/../fixtures/recorded/iommu-on

bash_file=$dir/vfioctl.bash
[ -f "$bash_file" ] || bash_file=$dir/vfioctl
share=$(cd "$dir/../.." 2>/dev/null && pwd) # DATADIR, for installed files
zsh_dir=${ZSH_DIR:-$dir}
[ -f "$zsh_dir/_vfioctl" ] || zsh_dir=$share/zsh/vendor-completions
fish_file=${FISH_DIR:-$dir}/vfioctl.fish
[ -f "$fish_file" ] || fish_file=$share/fish/vendor_completions.d/vfioctl.fish

failed=0
checks=0
# check NAME EXPECTED GOT: both lists of words, compared as sorted sets.
check() {
    local name=$1 want got
    want=$(printf '%s\n' $2 | sort -u | tr '\n' ' ')
    got=$(printf '%s\n' $3 | sort -u | tr '\n' ' ')
    checks=$((checks + 1))
    if [ "$want" = "$got" ]; then
        echo "ok   $name"
    else
        echo "FAIL $name"
        echo "     want: $want"
        echo "     got:  $got"
        failed=1
    fi
}
# check_has NAME WORDS GOT: each of WORDS is offered.
check_has() {
    local name=$1 w missing=""
    for w in $2; do
        printf '%s\n' $3 | grep -qxF -- "$w" || missing="$missing $w"
    done
    checks=$((checks + 1))
    if [ -z "$missing" ]; then
        echo "ok   $name"
    else
        echo "FAIL $name: missing$missing"
        echo "     got: $(printf '%s ' $3)"
        failed=1
    fi
}

pci=$(ls "$fixture/sys/bus/pci/devices")
[ -n "$pci" ] || { echo "no PCI devices in the fixture $fixture" >&2; exit 2; }
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
mkdir -p "$runs/dev" "$runs/gpu-box" "$runs/stale"
touch "$runs/dev/vm.json" "$runs/gpu-box/vm.json"
export VFIOCTL_RUN_DIR=$runs
bind_opts="--gpu --all-gpus --with-nvswitches --owner --dry-run --persistent --at-boot --force --state-dir --timeout -h --help --json --root"

# ---------------------------------------------------------------- bash
# bash_complete LINE: COMPREPLY for LINE with the cursor at its end, from
# the function 'complete -p vfioctl' names, as bash calls it.
bash_complete() {
    bash --norc --noprofile -c '
        [ -f /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion
        . "$1" || exit 2
        line=$2
        read -ra COMP_WORDS <<< "$line"
        [[ $line == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE=$line COMP_POINT=${#line}
        func=$(complete -p vfioctl | sed -n "s/.*-F \([^ ]*\).*/\1/p")
        [ -n "$func" ] || { echo "no complete -F for vfioctl" >&2; exit 2; }
        "$func" vfioctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"' _ "$bash_file" "$1"
}
if [ -f "$bash_file" ]; then
    echo "== bash ($bash_file)"
    check "bash: vfioctl bi" "bind" "$(bash_complete 'vfioctl bi')"
    check "bash: vfioctl --root FIXTURE bind" "$pci" "$(bash_complete "vfioctl --root $fixture bind ")"
    check "bash: vfioctl --root FIXTURE vm start --gpu" "$pci" \
        "$(bash_complete "vfioctl --root $fixture vm start --gpu ")"
    check "bash: vfioctl --root FIXTURE vm export --gpu" "$pci" \
        "$(bash_complete "vfioctl --root $fixture vm export --gpu ")"
    check "bash: vfioctl --root FIXTURE bind --force (a flag)" "$pci" \
        "$(bash_complete "vfioctl --root $fixture bind --force ")"
    check "bash: vfioctl vm run --accel" "kvm tcg auto" "$(bash_complete 'vfioctl vm run --accel ')"
    check "bash: vfioctl iommu enable --iommu" "intel amd" "$(bash_complete 'vfioctl iommu enable --iommu ')"
    check "bash: vfioctl vm" "start stop status list console run export" "$(bash_complete 'vfioctl vm ')"
    check "bash: vfioctl vm stop (VM names)" "dev gpu-box" "$(bash_complete 'vfioctl vm stop ')"
    check "bash: vfioctl bind -" "$bind_opts" "$(bash_complete 'vfioctl bind -')"
    check "bash: vfioctl bind --gpu (a number: nothing)" "" "$(bash_complete 'vfioctl bind --gpu ')"
    check "bash: vfioctl bind --d" "--dry-run" "$(bash_complete 'vfioctl bind --d')"
    check "bash: vfioctl vm run --kernel k --accel t" "tcg" "$(bash_complete 'vfioctl vm run --kernel k --accel t')"
else
    echo "FAIL no bash completion in $dir"
    failed=1
fi

# ---------------------------------------------------------------- zsh
if ! command -v zsh >/dev/null; then
    echo "SKIP zsh: zsh is not installed"
elif [ ! -f "$zsh_dir/_vfioctl" ]; then
    echo "FAIL no _vfioctl in $zsh_dir"
    failed=1
else
    echo "== zsh ($zsh_dir/_vfioctl)"
    zc() { zsh -f "$here/zsh-capture.zsh" "$zsh_dir" "$1"; }
    check "zsh: vfioctl bi" "bind" "$(zc 'vfioctl bi')"
    check "zsh: vfioctl --root FIXTURE bind" "$pci" "$(zc "vfioctl --root $fixture bind ")"
    check "zsh: vfioctl vm run --accel" "kvm tcg auto" "$(zc 'vfioctl vm run --accel ')"
    check "zsh: vfioctl vm stop (VM names)" "dev gpu-box" "$(zc 'vfioctl vm stop ')"
    check "zsh: vfioctl bind -" "$bind_opts" "$(zc 'vfioctl bind -')"
fi

# ---------------------------------------------------------------- fish
if ! command -v fish >/dev/null; then
    echo "SKIP fish: fish is not installed"
elif [ ! -f "$fish_file" ]; then
    echo "FAIL no vfioctl.fish at $fish_file"
    failed=1
else
    echo "== fish ($fish_file)"
    fc() { fish --no-config -c "source $(printf '%q' "$fish_file"); complete -C $(printf '%q' "$1")" | cut -f1; }
    check "fish: vfioctl bi" "bind" "$(fc 'vfioctl bi')"
    check "fish: vfioctl --root FIXTURE bind" "$pci" "$(fc "vfioctl --root $fixture bind ")"
    check "fish: vfioctl vm run --accel" "kvm tcg auto" "$(fc 'vfioctl vm run --accel ')"
    check "fish: vfioctl vm stop (VM names)" "dev gpu-box" "$(fc 'vfioctl vm stop ')"
    check "fish: vfioctl bind -" "$bind_opts" "$(fc 'vfioctl bind -')"
fi

echo "$checks checks, $([ $failed = 0 ] && echo all passed || echo some FAILED)"
exit $failed
