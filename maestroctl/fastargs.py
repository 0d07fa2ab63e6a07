"""A compiled fast path for maestroctl's own argparse parser.

argparse (with ``re``, ``gettext`` and ``locale``) and building the parser cost
more than the rest of a call together. Agents call maestroctl hundreds of
times, so the common invocations are parsed from :data:`maestroctl._argspec.SPEC`,
a plain-data snapshot that :func:`compile_spec` takes *from the real parser*
(``python -m maestroctl.fastargs > maestroctl/_argspec.py``; a test fails when
the snapshot is stale).

The fast path only accepts what it can parse exactly as argparse would: exact
long options, ``--opt value`` / ``--opt=value``, flags, append/extend lists,
choices, int/float types and one contiguous run of positionals. Anything else
(``-h``, abbreviations, ``--``, a missing required option, a bad choice...)
returns None and argparse takes over, with its usual messages and exit codes.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

GLOBAL_DESTS = {"--socket": ("socket", "str"), "--timeout": ("timeout", "float")}
#: The global options every command also takes after its arguments (default argparse.SUPPRESS: set only
#: when given).  Not in the snapshot: a command is "supported" only if it has both, exactly so.
AFTER_COMMAND = {
    "--json": {"dest": "json", "kind": "store_true", "type": None, "choices": None},
    "--socket": {"dest": "socket", "kind": "store", "type": None, "choices": None},
}


class Namespace:
    """Attribute bag standing in for argparse.Namespace (same attributes, no argparse import)."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Namespace({vars(self)!r})"


def _convert(value: str, type_name: str | None) -> Any:
    if type_name == "int":
        return int(value)
    if type_name == "float":
        return float(value)
    return value


def parse(argv: list[str], spec: dict[str, Any] | None = None) -> Namespace | None:
    """``argv`` parsed as argparse would, or None; against the snapshot in _argspec unless ``spec`` is given."""
    values: dict[str, Any] = {"socket": None, "json": False, "timeout": None}
    i = 0
    n = len(argv)
    while i < n and argv[i].startswith("-"):
        tok = argv[i]
        if tok == "--json":
            values["json"] = True
            i += 1
            continue
        name, eq, inline = tok.partition("=")
        if name not in GLOBAL_DESTS:
            return None
        dest, type_name = GLOBAL_DESTS[name]
        if eq:
            raw = inline
            i += 1
        else:
            if i + 1 >= n or argv[i + 1].startswith("-"):
                return None
            raw = argv[i + 1]
            i += 2
        try:
            values[dest] = _convert(raw, type_name)
        except ValueError:
            return None
    if i >= n:
        return None
    if spec is None:
        # The snapshot holds each command as JSON text: only the one being run is decoded (C scanner), not
        # the whole parser (executing one big dict literal cost ~0.25 ms of every call).
        from maestroctl import _argspec

        dest = _argspec.DESTS.get(argv[i])
        key = argv[i] if dest is None else (f"{argv[i]} {argv[i + 1]}" if i + 1 < n else "")
        text = _argspec.NODES.get(key)
        if text is None:
            return None
        values["group"] = argv[i]
        i += 1
        if dest is not None:
            values[dest] = argv[i]
            i += 1
        from maestroctl import wire

        node = wire.loads(text)
    else:
        group = spec["groups"].get(argv[i])
        if group is None:
            return None
        values["group"] = argv[i]
        i += 1
        node = group
        if "commands" in node:
            if i >= n:
                return None
            cmd = node["commands"].get(argv[i])
            if cmd is None:
                return None
            values[node["dest"]] = argv[i]
            i += 1
            node = cmd
    if not node.get("supported", False):
        return None
    return _parse_command(argv[i:], node, values)


def _parse_command(args: list[str], node: dict[str, Any], values: dict[str, Any]) -> Namespace | None:
    opts: dict[str, dict[str, Any]] = node["options"]
    for o in opts.values():
        d = o["default"]
        values[o["dest"]] = list(d) if isinstance(d, list) else d
    for p in node["positionals"]:
        d = p["default"]
        values[p["dest"]] = list(d) if isinstance(d, list) else d
    values.update(node["defaults"])
    seen: set[str] = set()
    positional_tokens: list[str] = []
    runs = 0
    last_was_positional = False
    i = 0
    n = len(args)
    while i < n:
        tok = args[i]
        if not tok.startswith("-") or tok == "-":
            positional_tokens.append(tok)
            if not last_was_positional:
                runs += 1
            last_was_positional = True
            i += 1
            continue
        last_was_positional = False
        name, eq, inline = tok.partition("=")
        opt = opts.get(name) or AFTER_COMMAND.get(name)
        if opt is None:
            return None  # unknown, abbreviated, short, `--`, negative number...: argparse decides
        kind = opt["kind"]
        seen.add(opt["dest"])
        if kind in ("store_true", "store_false"):
            if eq:
                return None
            values[opt["dest"]] = kind == "store_true"
            i += 1
            continue
        if kind == "extend":
            items = [inline] if eq else []
            i += 1
            if not eq:
                # argparse takes a lone "-" as a value (stdin, by convention), not as an option
                while i < n and (not args[i].startswith("-") or args[i] == "-"):
                    items.append(args[i])
                    i += 1
                if not items:
                    return None
            converted = []
            for item in items:
                if opt["choices"] is not None and item not in opt["choices"]:
                    return None
                try:
                    converted.append(_convert(item, opt["type"]))
                except ValueError:
                    return None
            current = values[opt["dest"]]
            values[opt["dest"]] = (list(current) if current else []) + converted
            continue
        if eq:
            raw = inline
            i += 1
        else:
            if i + 1 >= n or (args[i + 1].startswith("-") and args[i + 1] != "-"):
                return None
            raw = args[i + 1]
            i += 2
        if opt["choices"] is not None and raw not in opt["choices"]:
            return None
        try:
            value = _convert(raw, opt["type"])
        except ValueError:
            return None
        if kind == "append":
            current = values[opt["dest"]]
            values[opt["dest"]] = (list(current) if current else []) + [value]
        else:
            values[opt["dest"]] = value
    for o in opts.values():
        if o["required"] and o["dest"] not in seen:
            return None
    if runs > 1:
        return None  # positionals split by options: argparse's chunked matching may differ
    if not _assign_positionals(positional_tokens, node["positionals"], values):
        return None
    func = node["func"]
    module = f"maestroctl.commands.{func[0]}"
    __import__(module)
    values["func"] = getattr(sys.modules[module], func[1])
    return Namespace(**values)


def _assign_positionals(tokens: list[str], positionals: list[dict[str, Any]], values: dict[str, Any]) -> bool:
    pos = 0
    for idx, p in enumerate(positionals):
        nargs = p["nargs"]
        remaining = len(tokens) - pos
        later_min = sum(1 for q in positionals[idx + 1:] if q["nargs"] is None)
        if nargs is None:
            if remaining < 1:
                return False
            take = [tokens[pos]]
            pos += 1
            values[p["dest"]] = _checked(take[0], p)
            if values[p["dest"]] is _BAD:
                return False
        elif nargs == "?":
            if remaining - later_min >= 1:
                v = _checked(tokens[pos], p)
                if v is _BAD:
                    return False
                values[p["dest"]] = v
                pos += 1
        elif nargs in ("*", "+"):
            count = remaining - later_min
            if nargs == "+" and count < 1:
                return False
            items = [_checked(t, p) for t in tokens[pos:pos + count]]
            if _BAD in items:
                return False
            if count or nargs == "+":
                values[p["dest"]] = items
            elif p["default"] is None:
                values[p["dest"]] = []
            pos += count
        else:
            return False
    return pos == len(tokens)


_BAD = object()


def _checked(token: str, p: dict[str, Any]) -> Any:
    if p["choices"] is not None and token not in p["choices"]:
        return _BAD
    try:
        return _convert(token, p["type"])
    except ValueError:
        return _BAD


# -- compiling the snapshot from the real parser ---------------------------------------------------

def _type_name(t: Any) -> str | None | bool:
    if t is None or t is str:
        return None
    if t is int:
        return "int"
    if t is float:
        return "float"
    return False


def _jsonable(v: Any) -> bool:
    if v is None or isinstance(v, (str, bool, int, float)):
        return True
    if isinstance(v, list):
        return all(_jsonable(x) for x in v)
    return False


def _compile_command(parser: argparse.ArgumentParser) -> dict[str, Any]:
    import argparse

    node: dict[str, Any] = {"options": {}, "positionals": [], "defaults": {}, "supported": True}
    kinds = {argparse._StoreAction: "store", argparse._StoreTrueAction: "store_true",
             argparse._StoreFalseAction: "store_false", argparse._AppendAction: "append",
             argparse._ExtendAction: "extend"}
    after: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        kind = kinds.get(type(action))
        if action.default == argparse.SUPPRESS and len(action.option_strings) == 1:
            flag = action.option_strings[0]
            known = AFTER_COMMAND.get(flag)
            if known is not None and (known["dest"], known["kind"], action.type, action.choices) == (
                    action.dest, kind, None, None):
                after.add(flag)
                continue
        type_name = _type_name(action.type)
        choices = list(action.choices) if action.choices is not None else None
        ok = kind is not None and type_name is not False and _jsonable(action.default) and \
            (choices is None or all(isinstance(c, str) for c in choices)) and \
            not (isinstance(action.default, str) and type_name)  # argparse would convert that default
        if not ok:
            node["supported"] = False
            continue
        entry = {"dest": action.dest, "kind": kind, "type": type_name, "choices": choices,
                 "default": action.default, "required": bool(action.required), "nargs": action.nargs}
        if action.option_strings:
            if kind == "store" and action.nargs is not None:
                node["supported"] = False
            if kind == "append" and action.nargs is not None:
                node["supported"] = False
            if kind == "extend" and action.nargs != "+":
                node["supported"] = False
            for flag in action.option_strings:
                if flag.startswith("--"):
                    node["options"][flag] = entry
        else:
            if kind != "store" or action.nargs not in (None, "?", "*", "+"):
                node["supported"] = False
            node["positionals"].append(entry)
    if after != set(AFTER_COMMAND):
        node["supported"] = False
    variable = [p for p in node["positionals"] if p["nargs"] in ("?", "*", "+")]
    if len(variable) > 1:
        node["supported"] = False
    func = None
    for key, value in parser._defaults.items():
        if key == "func":
            mod = value.__module__
            if not mod.startswith("maestroctl.commands."):
                node["supported"] = False
            func = [mod.rsplit(".", 1)[1], value.__name__]
        elif _jsonable(value):
            node["defaults"][key] = value
        else:
            node["supported"] = False
    if func is None:
        node["supported"] = False
    node["func"] = func
    return node


def subparsers_of(parser: argparse.ArgumentParser) -> Any:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def compile_spec(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Snapshot ``parser`` (maestroctl's full parser) as plain data for :func:`parse`."""
    groups: dict[str, Any] = {}
    top = subparsers_of(parser)
    for gname, gparser in top.choices.items():
        sub = subparsers_of(gparser)
        if sub is None:
            groups[gname] = _compile_command(gparser)
            continue
        groups[gname] = {"dest": sub.dest, "commands": {c: _compile_command(p) for c, p in sub.choices.items()}}
    return {"groups": groups}


def split_spec(spec: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """``spec`` as (group -> its commands' dest, "group" or "group command" -> that command as JSON)."""
    import json

    dests: dict[str, str] = {}
    nodes: dict[str, str] = {}
    for gname, group in sorted(spec["groups"].items()):
        if "commands" in group:
            dests[gname] = group["dest"]
            for cname, node in sorted(group["commands"].items()):
                nodes[f"{gname} {cname}"] = json.dumps(node, sort_keys=True, separators=(",", ":"))
        else:
            nodes[gname] = json.dumps(group, sort_keys=True, separators=(",", ":"))
    return dests, nodes


def join_spec(dests: dict[str, str], nodes: dict[str, str]) -> dict[str, Any]:
    """The inverse of :func:`split_spec`: the whole snapshot as one dict (``_argspec.SPEC``)."""
    import json

    groups: dict[str, Any] = {}
    for key, text in nodes.items():
        gname, _, cname = key.partition(" ")
        if cname:
            groups.setdefault(gname, {"dest": dests[gname], "commands": {}})["commands"][cname] = json.loads(text)
        else:
            groups[gname] = json.loads(text)
    return {"groups": groups}


def render_module(spec: dict[str, Any]) -> str:
    dests, nodes = split_spec(spec)
    lines = ['"""Generated by `python -m maestroctl.fastargs > maestroctl/_argspec.py`: do not edit.',
             "",
             "A plain-data snapshot of maestroctl's argparse parser for the start-up fast path: each command as",
             "JSON text, decoded only when that command runs; SPEC is the whole snapshot as one dict.",
             'tests/test_fastargs.py fails when it no longer matches the parser."""',
             "",
             "#: group -> the dest of its command name (groups that have commands)",
             f"DESTS = {dests!r}",
             "",
             '#: "group command" (or "group") -> its spec as JSON',
             "NODES = {"]
    lines += [f"    {key!r}:\n        {text!r}," for key, text in nodes.items()]
    lines += ["}",
              "",
              "",
              "def __getattr__(name: str) -> object:",
              '    if name == "SPEC":',
              "        from maestroctl.fastargs import join_spec",
              "",
              "        return join_spec(DESTS, NODES)",
              "    raise AttributeError(name)",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    from maestroctl.main import build_parser

    sys.stdout.write(render_module(compile_spec(build_parser())))
