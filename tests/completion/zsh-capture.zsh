#!/usr/bin/env zsh
# Prints the completions zsh offers for LINE, one per line: a zsh under
# zpty with DIR first on $fpath and compinit, TAB sent after LINE, and a
# compadd that prints each match it adds; the shell exits after the one
# completion. (The approach of zsh-capture-completion, by Valodim.)
#   zsh-capture.zsh DIR LINE
zmodload zsh/zpty || exit 2
dir=$1 line=$2
zpty z zsh -f -i
zpty -w z "PS1=''"
zpty -w z "fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'bindkey "^I" complete-word'
# A NUL line before and after the matches; exit after them.
zpty -w z 'null-line() { echo -E - $'"'"'\0'"'"' }; compprefuncs=(null-line); comppostfuncs=(null-line exit)'
zpty -w z 'compadd() {
    if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
    typeset -a __hits; builtin compadd -A __hits "$@"
    local h; for h in $__hits; do echo -E - "$h"; done
}'
zpty -w -n z "$line"$'\t'
out=''
integer idle=0
while (( idle < 200 )); do
    if zpty -r -t z chunk 2>/dev/null; then
        out+=$chunk
        idle=0
    else
        parts=("${(@ps:\0:)out}")
        (( ${#parts} >= 3 )) && break
        (( idle++ ))
        sleep 0.05
    fi
done
zpty -d z
parts=("${(@ps:\0:)out}")
print -r -- "${parts[2]}" | tr -d '\r' | sed '/^$/d'
