package main

import (
	"fmt"
)

// shells are the shells e2e completion writes a script for.
var shells = []string{"bash", "zsh", "fish"}

// CompletionCmd prints a shell's completion script. The scripts ask the
// hidden command e2e __complete for the candidates, so they complete
// commands, flags, backend names, option names, cluster ids and node
// references as this e2e knows them.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

func (c *CompletionCmd) Run(e *env) error {
	script := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}[c.Shell]
	_, err := fmt.Fprint(e.stdout, script)
	return err
}

// bashCompletion splits the line itself (COMP_LINE up to the cursor, at
// spaces), so that = and : inside a word (-o image=..., --cluster-id=...)
// do not split it as bash's COMP_WORDBREAKS would; what bash takes as
// already typed before such a character is cut off the candidates.
const bashCompletion = `# bash completion for e2e; load with: source <(e2e completion bash)
_e2e_complete() {
    local line="${COMP_LINE:0:COMP_POINT}"
    local -a words
    read -ra words <<<"$line"
    if [[ -z "$line" || "$line" == *[[:space:]] ]]; then
        words+=("")
    fi
    local cur="${words[${#words[@]}-1]}"
    local keep=""
    if [[ "$cur" == *[=:]* ]]; then
        keep="${cur%"${cur##*[=:]}"}"
    fi
    local IFS=$'\n'
    local -a cands
    cands=($("${COMP_WORDS[0]}" __complete -- "${words[@]:1}" 2>/dev/null))
    COMPREPLY=()
    local c
    for c in "${cands[@]}"; do
        COMPREPLY+=("${c#"$keep"}")
    done
    if [[ ${#COMPREPLY[@]} -eq 1 && "${COMPREPLY[0]}" == *= ]]; then
        compopt -o nospace 2>/dev/null
    fi
}
complete -o default -F _e2e_complete e2e
`

const zshCompletion = `#compdef e2e
# zsh completion for e2e; load with: source <(e2e completion zsh)
# (after compinit), or save as _e2e in a directory of $fpath.
_e2e() {
    local -a cands eq other
    cands=("${(@f)$(${words[1]} __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    cands=(${cands:#})
    if (( ${#cands} == 0 )); then
        _files
        return
    fi
    local c
    for c in $cands; do
        if [[ $c == *= ]]; then eq+=($c); else other+=($c); fi
    done
    (( ${#eq} )) && compadd -S '' -- $eq
    (( ${#other} )) && compadd -- $other
}
if [[ "${funcstack[1]}" == "_e2e" ]]; then
    _e2e "$@"
else
    compdef _e2e e2e
fi
`

const fishCompletion = `# fish completion for e2e; load with: e2e completion fish | source
function __e2e_complete
    set -l words (commandline -opc) (commandline -ct)
    set -l cands ($words[1] __complete -- $words[2..-1] 2>/dev/null)
    if test (count $cands) -eq 0
        __fish_complete_path (commandline -ct)
        return
    end
    printf '%s\n' $cands
end
complete -c e2e -f -a '(__e2e_complete)'
`
