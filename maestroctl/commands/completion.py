"""``maestroctl completion bash|zsh``: a static script generated from the real parser."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_,
                       description="Print a completion script. bash: `source <(maestroctl completion bash)`; "
                                   "zsh: `source <(maestroctl completion zsh)`.")
    p.add_argument("shell", choices=["bash", "zsh"])
    p.set_defaults(func=run)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    from maestroctl.fastargs import subparsers_of

    action = subparsers_of(parser)
    return dict(action.choices) if action is not None else {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(o for a in parser._actions for o in a.option_strings if o.startswith("--"))


def words() -> dict[str, list[str]]:
    """Map 'group' and 'group cmd' to the words that may follow."""
    from maestroctl.main import build_parser

    root = build_parser()
    table: dict[str, list[str]] = {"": sorted(_subparsers(root)) + _options(root)}
    for gname, gparser in _subparsers(root).items():
        cmds = _subparsers(gparser)
        table[gname] = sorted(cmds) + _options(gparser)
        for cname, cparser in cmds.items():
            table[f"{gname} {cname}"] = _options(cparser)
    return table


def bash_script() -> str:
    cases = "\n".join(f'        "{k}") words="{" ".join(v)}" ;;' for k, v in sorted(words().items()))
    return f"""# maestroctl bash completion: source <(maestroctl completion bash)
_maestroctl() {{
    local cur key words i w
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    key=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        case "$w" in
            --socket|--timeout) ((i++)); continue ;;
            -*) continue ;;
        esac
        if [[ -z "$key" ]]; then key="$w"; elif [[ "$key" != *" "* ]]; then key="$key $w"; fi
    done
    case "$key" in
{cases}
        *) words="" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _maestroctl maestroctl
"""


def zsh_script() -> str:
    return "# maestroctl zsh completion: source <(maestroctl completion zsh)\n" \
           "autoload -Uz bashcompinit && bashcompinit\n" + bash_script()


def run(rt: Any, a: argparse.Namespace) -> int:
    print(bash_script() if a.shell == "bash" else zsh_script(), end="")
    return 0
