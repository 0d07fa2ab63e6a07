"""Daemon errors in the command line's words (imported only when a command failed).

The daemon names RPC params (``older_than``, ``my_workers``, "pass cascade"); a person typed flags. The
command that ran is looked up in the real argparse parser and each param it has is spelled as its flag
(``--older-than``, ``--my-workers``) or its positional's metavar (``ID``): at the head of a ``-32602``
problem (``older_than: expected ...``), after "pass"/"give", and wherever a ``snake_case`` param appears.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

#: Params a command sends under another name than its argparse dest: (group, command) -> {param: dest}.
PARAM_TO_DEST: dict[tuple[str, str | None], dict[str, str]] = {
    ("session", "digests"): {"ids": "ids"},
}

_HEAD = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>(?:\[[^\]]*\]|\.[A-Za-z_][A-Za-z0-9_]*)*): ")
_VERB = re.compile(r"\b(?P<verb>pass|give) (?P<name>[a-z][a-z0-9_]*)\b")
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def _command_parser(args: Any) -> argparse.ArgumentParser | None:
    from maestroctl.fastargs import subparsers_of
    from maestroctl.main import build_parser

    group = getattr(args, "group", None)
    top = subparsers_of(build_parser(group))
    if top is None or group not in top.choices:
        return None
    node: argparse.ArgumentParser = top.choices[group]
    sub = subparsers_of(node)
    if sub is not None:
        node = sub.choices.get(getattr(args, sub.dest, None) or "", node)
    return node


def flag_names(args: Any) -> dict[str, str]:
    """param -> how the command that ran spells it (``--older-than``, ``ID``)."""
    parser = _command_parser(args)
    if parser is None:
        return {}
    spelled: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.dest in ("json", "socket"):
            continue
        if action.option_strings:
            spelled[action.dest] = next((o for o in action.option_strings if o.startswith("--")),
                                        action.option_strings[0])
        else:
            metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
            spelled[action.dest] = metavar
    for param, dest in PARAM_TO_DEST.get((args.group, _cmd(args)), {}).items():
        if dest in spelled:
            spelled[param] = spelled[dest]
    return spelled


def _cmd(args: Any) -> str | None:
    for name in ("cmd", "command", "action"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            return value
    return None


def speak_in_flags(message: str, names: dict[str, str]) -> str:
    """``message`` with the params in ``names`` spelled as the command line spells them."""
    if not names:
        return message
    prefix = ""
    if message.startswith("Invalid params: "):
        prefix, message = "Invalid params: ", message[len("Invalid params: "):]
    parts = []
    for part in message.split("; "):
        m = _HEAD.match(part)
        if m is not None and m.group("name") in names:
            part = names[m.group("name")] + m.group("rest") + ": " + part[m.end():]
        part = _VERB.sub(lambda v: f"{v.group('verb')} {names.get(v.group('name'), v.group('name'))}", part)
        part = _SNAKE.sub(lambda s: names.get(s.group(0), s.group(0)), part)
        parts.append(part)
    return prefix + "; ".join(parts)
