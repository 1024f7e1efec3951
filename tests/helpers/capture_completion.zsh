# The completions an interactive zsh offers for a command line, one per line:
#   zsh -f capture.zsh COMPLETION_SCRIPT FOLDER LINE
# A real `zsh -i` in a pseudo-terminal (zpty) loads compinit and the script; compadd is
# wrapped to print each match between two NUL lines (after Valodim's zsh-capture-completion).
zmodload zsh/zpty
local setup=${TMPDIR:-/tmp}/capture-setup-$$.zsh
cat > $setup <<SETUP
PROMPT= RPROMPT=
autoload -U compinit && compinit -u -D
source ${(q)1}
cd ${(q)2}
zmodload zsh/zutil
null-line () { echo -E - \$'\0' }
compprefuncs=( null-line ); comppostfuncs=( null-line exit )
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
compadd () {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "\$@"; return \$?; fi
  typeset -a __hits
  builtin compadd -A __hits "\$@"
  local i
  for i in {1..\$#__hits}; do echo -E - "COMPLETION:\$__hits[\$i]"; done
}
bindkey '^M' undefined; bindkey '^J' undefined; bindkey '^I' complete-word
SETUP
zpty z zsh -f -i
zpty -w z "source ${(q)setup}"
zpty -n -w z "$3"$'\t'
integer tog=0
local line
while zpty -r z; do :; done | while IFS= read -r line; do
  if [[ $line == *$'\0\r' ]]; then (( tog++ )) && break || continue; fi
  (( tog )) && [[ $line == COMPLETION:* ]] && echo -E - "${${line#COMPLETION:}%$'\r'}"
done
rm -f $setup
zpty -d z
