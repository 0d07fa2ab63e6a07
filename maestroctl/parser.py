"""maestroctl's argparse parser (the slow path; see :mod:`maestroctl.fastargs`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import shared
from shared import paths


def _terminal_width() -> int:
    try:
        return int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(2).columns
    except (ValueError, OSError):
        return 100


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter imports shutil (and zlib, bz2, lzma) just to read the terminal
    width, on every add_argument; asking os directly saves ~2 ms per invocation."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or _terminal_width() - 2)


class Parser(argparse.ArgumentParser):
    """Sub-parsers inherit the class (argparse uses ``type(self)``), hence the formatter too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build(groups: dict[str, tuple[str, str]], only: str | None = None) -> argparse.ArgumentParser:
    ap = Parser(prog="maestroctl", description="Talk to maestrod.",
                                 epilog="exit codes: 0 ok, 1 daemon error, 2 usage, 3 daemon unreachable")
    ap.add_argument("--socket", help=f"daemon socket (default: ${paths.SOCKET_ENV} or "
                                     "$XDG_RUNTIME_DIR/maestro/maestrod.sock)")
    ap.add_argument("--json", action="store_true", help="print the raw JSON result")
    ap.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    ap.add_argument("--version", action="version", version=f"maestroctl {shared.__version__}")
    sub = ap.add_subparsers(dest="group", metavar="GROUP", required=True)
    for name, (module, help_) in groups.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_, add_help=False)
            continue
        __import__(f"maestroctl.commands.{module}")
        sys.modules[f"maestroctl.commands.{module}"].register(sub, name, help_)
        _globals_after_command(sub.choices[name])
    return ap


def _globals_after_command(group: argparse.ArgumentParser) -> None:
    """``--json`` and ``--socket`` mean the same everywhere, so every command also takes them after its
    own arguments (``maestroctl digest FILE --json``).  Their default is SUPPRESS: not given there, they
    leave what was given before GROUP.  ``--timeout`` is taken before GROUP only: ``session wait`` and
    ``mail wait`` have their own."""
    commands = [a for a in group._actions if isinstance(a, argparse._SubParsersAction)]
    for command in commands[0].choices.values() if commands else [group]:
        taken = command._option_string_actions
        if "--json" not in taken:
            command.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                                 help="print the raw JSON result (as before GROUP)")
        if "--socket" not in taken:
            command.add_argument("--socket", default=argparse.SUPPRESS, metavar="SOCKET",
                                 help="daemon socket (as before GROUP)")


