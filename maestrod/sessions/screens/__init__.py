"""The screen witness: what an agent's terminal shows, recognised by a table of screen rules.

Hooks do not report everything an agent's TUI does. Claude Code opens dialogs of its own (trust
this folder? use this API key? allow this command?) that wait for a person, and a prompt typed by
maestrod into one of them *answers* it -- the trust dialog's default is "No, exit", the API-key
dialog's default stores the key as rejected for good. So the screen model of each session
(:class:`~maestrod.sessions.terminal.Terminal`) is a witness too: a table of rules per agent kind
says what a screen means.

Each rule is a set of regular expressions that must all match the visible screen text, plus a kind:

* ``dialog``  -- a question only a person may answer; nothing may be typed into the session;
* ``blocked`` -- the agent cannot work until a person acts (not logged in, key refused, limit hit);
* ``notice``  -- the agent keeps going but something is failing (the model API is being retried);
* ``prompt``  -- the empty input prompt, ready for text;
* ``busy``    -- the empty input box while a turn runs: text typed now is queued by the agent itself (only
  ``--now`` types there).

The first matching rule in table order wins, and every ``prompt``/``busy`` rule comes after all the others,
so a dialog drawn over (or instead of) the input box is never taken for a ready prompt.

The built-in table for agent ``<agent>`` is ``<agent>.toml`` next to this module; a file of the same
name in the override directory (maestrod passes ``$XDG_CONFIG_HOME/maestro/screens``) replaces,
adds or disables rules by name. The format is in ``docs/screens.md``.

Pure: no I/O beyond reading those two files. :meth:`ScreenRules.match` is called a few times a
second per session, so everything is compiled once, and each rule first checks literal substrings
its patterns cannot match without (found in the patterns at load time) before any regex runs.
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

import attrs

__all__ = [
    "BUILTIN_DIR",
    "FORMAT",
    "ScreenKind",
    "ScreenMatch",
    "ScreenRule",
    "ScreenRules",
    "ScreenRulesError",
    "RuleTables",
    "load_rules",
]

ScreenKind = Literal["dialog", "notice", "blocked", "prompt", "busy"]
#: Kinds that show the input box: they come after every other rule.
_INPUT_KINDS = frozenset({"prompt", "busy"})
KINDS: Final[tuple[str, ...]] = get_args(ScreenKind)

#: Where the built-in tables are: ``<agent>.toml`` beside this module.
BUILTIN_DIR: Final = Path(__file__).resolve().parent
#: The table format this module reads (a table's top-level ``format``; absent means this one).
FORMAT: Final = 1

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_AGENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TOP_KEYS = frozenset({"format", "agent", "version", "rule"})
_RULE_KEYS = frozenset({"name", "kind", "reason", "patterns", "triggers", "fixture", "synthetic", "enabled"})
#: A literal shorter than this is not worth a substring check.
_MIN_NEEDLE = 3


class ScreenRulesError(Exception):
    """A rule table that cannot be used; the message names the file and the rule or key."""


def _literal_needles(patterns: Iterable[re.Pattern[str]]) -> tuple[str, ...]:
    """Strings the screen text must contain for the patterns to match: the longest required literal
    of each pattern (see :func:`_required_literal`), longest first so a miss is found early."""
    found = {lit for p in patterns if (lit := _required_literal(p)) is not None}
    return tuple(sorted(found, key=len, reverse=True))


def _compile_triggers(triggers: Iterable[bytes]) -> re.Pattern[bytes] | None:
    unique = sorted(set(triggers), key=lambda t: (-len(t), t))  # longest first: the alternation's order
    return re.compile(b"|".join(re.escape(t) for t in unique)) if unique else None


def _format_values(groups: Mapping[str, str | None]) -> dict[str, str]:
    # Whitespace collapsed: a value cut from a screen line may carry runs of padding.
    return {k: " ".join(v.split()) if v else "" for k, v in groups.items()}


@attrs.frozen
class ScreenRule:
    name: str
    kind: ScreenKind
    #: For people; ``{group}`` fields are filled from the patterns' named groups.
    reason: str
    #: All must match the screen text (the lines joined by newlines), ``re.MULTILINE``.
    patterns: tuple[re.Pattern[str], ...]
    #: Short byte strings in the raw PTY output that paint this screen: cheap to look for in every
    #: read, so a caller knows when rendering the screen is worth it.
    triggers: tuple[bytes, ...]
    #: The fixture (under tests/fixtures/screens/<agent>/) the rule was written from.
    fixture: str
    #: The fixture was written by hand, not captured from the real agent.
    synthetic: bool = False
    _needles: tuple[str, ...] = attrs.field(
        init=False, repr=False, eq=False, default=attrs.Factory(lambda self: _literal_needles(self.patterns), takes_self=True)
    )
    _trigger_re: re.Pattern[bytes] | None = attrs.field(
        init=False, repr=False, eq=False,
        default=attrs.Factory(lambda self: _compile_triggers(self.triggers), takes_self=True),
    )

    def search(self, text: str) -> dict[str, str | None] | None:
        """The named groups of all patterns when every pattern matches ``text``, else ``None``."""
        for needle in self._needles:
            if needle not in text:
                return None
        groups: dict[str, str | None] = {}
        for pattern in self.patterns:
            m = pattern.search(text)
            if m is None:
                return None
            for key, value in m.groupdict().items():
                if value is not None or key not in groups:
                    groups[key] = value
        return groups

    def describe(self, groups: Mapping[str, str | None]) -> str:
        return self.reason.format_map(_format_values(groups))

    def triggered_by(self, data: bytes) -> bool:
        """Whether raw PTY output ``data`` holds one of this rule's triggers."""
        return self._trigger_re is not None and self._trigger_re.search(data) is not None


@attrs.frozen
class ScreenMatch:
    rule: str
    kind: ScreenKind
    reason: str


@attrs.frozen
class ScreenRules:
    agent: str
    #: The agent version the built-in table was written against.
    version: str
    #: In match order: every ``prompt`` rule after all the others.
    rules: tuple[ScreenRule, ...]
    #: The files the table was loaded from (the built-in one, then an override).
    sources: tuple[str, ...]
    _trigger_re: re.Pattern[bytes] | None = attrs.field(
        init=False, repr=False, eq=False,
        default=attrs.Factory(
            lambda self: _compile_triggers(t for r in self.rules for t in r.triggers), takes_self=True
        ),
    )

    def match(self, lines: Sequence[str]) -> ScreenMatch | None:
        """What the screen shows: the first rule, in table order, whose patterns all match."""
        text = "\n".join(lines)
        for rule in self.rules:
            groups = rule.search(text)
            if groups is not None:
                return ScreenMatch(rule.name, rule.kind, rule.describe(groups))
        return None

    def trigger_pattern(self) -> re.Pattern[bytes] | None:
        """One compiled alternation of every rule's triggers (``None`` if there are none)."""
        return self._trigger_re

    def rule(self, name: str) -> ScreenRule | None:
        return next((r for r in self.rules if r.name == name), None)


# -- loading ----------------------------------------------------------------------------------------


def load_rules(agent: str, override_dir: Path | None = None) -> ScreenRules | None:
    """The screen rules for agent kind ``agent``; ``None`` when it has no table (plain commands).

    The built-in table is ``<agent>.toml`` beside this module; ``override_dir/<agent>.toml``, when
    present, replaces built-in rules of the same name, adds new ones (before the ``prompt`` rules)
    and removes those it marks ``enabled = false``. Raises :class:`ScreenRulesError` for a table
    that cannot be used."""
    if not _AGENT.match(agent):
        return None  # not a name a table file can have (and never a path)
    builtin_path = BUILTIN_DIR / f"{agent}.toml"
    override_path = override_dir / f"{agent}.toml" if override_dir is not None else None
    has_override = override_path is not None and override_path.is_file()
    builtin = _builtin_table(agent) if builtin_path.is_file() else None
    if builtin is None and not has_override:
        return None
    version = builtin.version if builtin is not None else ""
    rules = list(builtin.rules) if builtin is not None else []
    sources = [str(builtin_path)] if builtin is not None else []
    if has_override:
        assert override_path is not None
        override = _read_table(override_path, agent, override=True)
        rules = _apply_override(rules, override, override_path)
        sources.append(str(override_path))
        if builtin is None:
            version = override.version
    return _assemble(agent, version, rules, sources)


def _assemble(agent: str, version: str, rules: Sequence[ScreenRule], sources: Sequence[str]) -> ScreenRules:
    # A stable partition: the prompt rules last, whatever an override did.
    ordered = ([r for r in rules if r.kind not in _INPUT_KINDS] + [r for r in rules if r.kind == "busy"]
               + [r for r in rules if r.kind == "prompt"])
    return ScreenRules(agent=agent, version=version, rules=tuple(ordered), sources=tuple(sources))


class RuleTables:
    """The screen rules of each agent kind, as the session manager uses them.

    A kind with an override file beside the config is loaded at once, so that an override that does not load
    stops the daemon at start (:class:`ScreenRulesError`). A built-in table alone is read from disk at once
    too (a running daemon never reads its package's files later, when an upgrade may have replaced them) but
    parsed when a session of that kind first needs it: compiling its patterns is a few ms of every start,
    and so of a graceful restart's pause, that a daemon running no such session never needs.
    """

    def __init__(self, kinds: Iterable[str], override_dir: Path | None = None) -> None:
        self._tables: dict[str, ScreenRules | None] = {}
        self._unparsed: dict[str, bytes] = {}
        for kind in kinds:
            builtin = BUILTIN_DIR / f"{kind}.toml"
            overridden = override_dir is not None and (override_dir / f"{kind}.toml").is_file()
            if overridden or not _AGENT.match(kind) or not builtin.is_file():
                self._tables[kind] = load_rules(kind, override_dir)
            else:
                self._unparsed[kind] = builtin.read_bytes()

    def get(self, kind: str) -> ScreenRules | None:
        """The rules of agent kind ``kind``; None when it has none."""
        raw = self._unparsed.pop(kind, None)
        if raw is not None:
            self._tables[kind] = _parse_builtin(kind, raw)
        return self._tables.get(kind)


def _parse_builtin(agent: str, raw: bytes) -> ScreenRules:
    path = BUILTIN_DIR / f"{agent}.toml"
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ScreenRulesError(f"{path}: not valid TOML: {e}") from e
    table = _table_from(data, path, agent, override=False)
    return _assemble(agent, table.version, table.rules, [str(path)])


@attrs.frozen
class _Table:
    version: str
    rules: tuple[ScreenRule, ...]
    #: Names an override file disables.
    disabled: tuple[str, ...]


@functools.cache
def _builtin_table(agent: str) -> _Table:
    # Shipped with the code: read once per process.
    return _read_table(BUILTIN_DIR / f"{agent}.toml", agent, override=False)


def _read_table(path: Path, agent: str, *, override: bool) -> _Table:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ScreenRulesError(f"{path}: cannot read: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ScreenRulesError(f"{path}: not valid TOML: {e}") from e
    return _table_from(data, path, agent, override=override)


def _table_from(data: dict[str, Any], path: Path, agent: str, *, override: bool) -> _Table:
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ScreenRulesError(f"{path}: unknown top-level key {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise ScreenRulesError(f"{path}: format = {fmt!r}; this maestrod reads format {FORMAT}")
    if data.get("agent", agent) != agent:
        raise ScreenRulesError(f"{path}: agent = {data['agent']!r}, but the file is the table of {agent!r}")
    version = data.get("version")
    if version is None and not override:
        raise ScreenRulesError(f"{path}: no top-level `version` (the {agent} version the rules were written for)")
    if version is not None and not isinstance(version, str):
        raise ScreenRulesError(f"{path}: `version` must be a string, not {type(version).__name__}")
    entries = data.get("rule", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ScreenRulesError(f"{path}: `rule` must be an array of tables ([[rule]] sections)")
    rules: list[ScreenRule] = []
    disabled: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(cast(list[dict[str, Any]], entries)):
        name = entry.get("name")
        where = f"{path}: rule {name!r}" if isinstance(name, str) else f"{path}: [[rule]] number {index + 1}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ScreenRulesError(f"{where}: `name` must be lower-case letters, digits and dashes")
        if name in seen:
            raise ScreenRulesError(f"{where}: defined twice in this file")
        seen.add(name)
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ScreenRulesError(f"{where}: `enabled` must be true or false")
        if not enabled:
            if not override:
                raise ScreenRulesError(f"{where}: `enabled = false` belongs in an override file")
            extra = sorted(set(entry) - {"name", "enabled"})
            if extra:
                raise ScreenRulesError(f"{where}: a disabled rule takes only `name`, not {extra[0]!r}")
            disabled.append(name)
            continue
        rules.append(_parse_rule(entry, where, require_fixture=not override))
    return _Table(version=version or "", rules=tuple(rules), disabled=tuple(disabled))


def _parse_rule(entry: Mapping[str, Any], where: str, *, require_fixture: bool) -> ScreenRule:
    unknown = sorted(set(entry) - _RULE_KEYS)
    if unknown:
        raise ScreenRulesError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_RULE_KEYS))})")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ScreenRulesError(f"{where}: `kind` must be one of {', '.join(KINDS)}, not {kind!r}")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ScreenRulesError(f"{where}: `reason` must be a non-empty string")
    patterns = _string_list(entry, "patterns", where)
    triggers = _string_list(entry, "triggers", where)
    compiled: list[re.Pattern[str]] = []
    for i, source in enumerate(patterns):
        try:
            compiled.append(re.compile(source, re.MULTILINE))
        except re.error as e:
            raise ScreenRulesError(f"{where}: pattern {i + 1} does not compile: {e}") from e
    groups = {g for p in compiled for g in p.groupindex}
    for field in _reason_fields(reason, where):
        if field not in groups:
            raise ScreenRulesError(f"{where}: `reason` uses {{{field}}}, which no pattern captures as (?P<{field}>...)")
    fixture = entry.get("fixture", "")
    if not isinstance(fixture, str) or (require_fixture and not fixture):
        raise ScreenRulesError(f"{where}: `fixture` must name the fixture file the rule was written from")
    synthetic = entry.get("synthetic", False)
    if not isinstance(synthetic, bool):
        raise ScreenRulesError(f"{where}: `synthetic` must be true or false")
    return ScreenRule(
        name=entry["name"],
        kind=cast(ScreenKind, kind),
        reason=reason,
        patterns=tuple(compiled),
        triggers=tuple(t.encode() for t in triggers),
        fixture=fixture,
        synthetic=synthetic,
    )


def _string_list(entry: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ScreenRulesError(f"{where}: `{key}` must be a non-empty list of non-empty strings")
    return cast(list[str], value)


def _reason_fields(reason: str, where: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(reason))
    except ValueError as e:
        raise ScreenRulesError(f"{where}: `reason` is not a valid template: {e}") from e
    fields: list[str] = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ScreenRulesError(f"{where}: `reason` field {{{field}}} must be a plain group name")
        fields.append(field)
    return fields


def _apply_override(rules: list[ScreenRule], override: _Table, path: Path) -> list[ScreenRule]:
    by_name = {r.name: i for i, r in enumerate(rules)}
    for name in override.disabled:
        if name not in by_name:
            raise ScreenRulesError(f"{path}: rule {name!r}: `enabled = false` names no built-in rule")
    merged: list[ScreenRule | None] = list(rules)
    added: list[ScreenRule] = []
    for rule in override.rules:
        if rule.name in by_name:
            merged[by_name[rule.name]] = rule  # replaced where it stood
        else:
            added.append(rule)
    for name in override.disabled:
        merged[by_name[name]] = None
    kept = [r for r in merged if r is not None]
    # New rules go after the built-in non-prompt rules and before the first prompt rule.
    cut = next((i for i, r in enumerate(kept) if r.kind in _INPUT_KINDS), len(kept))
    return kept[:cut] + added + kept[cut:]


# -- required literals -----------------------------------------------------------------------------

_ESCAPE_CLASSES = frozenset("dDsSwWbBAZ")
_QUANTIFIERS = frozenset("*?{")
_COUNTED = re.compile(r"\{\d*(?:,\d*)?\}")


def _required_literal(pattern: re.Pattern[str]) -> str | None:
    """The longest run of plain characters every match of ``pattern`` contains, or ``None``.

    Conservative: only the top level of the pattern is read; groups, classes, alternations and
    anything quantified end a run; a pattern with a top-level ``|`` or a case-insensitive flag has
    none. Finding less than there is only costs speed; finding a wrong one would lose matches."""
    if pattern.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    src = pattern.pattern
    runs: list[str] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    i, n, depth = 0, len(src), 0
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n:
            nxt = src[i + 1]
            i += 2
            if nxt.isalnum() or nxt in _ESCAPE_CLASSES:
                end_run()  # \d, \s, \1, \n ... : not a plain character here (kept simple)
                continue
            char = nxt
        elif c == "[":
            end_run()
            i = _skip_class(src, i)
            continue
        elif c == "(":
            depth += 1
            end_run()
            i += 1
            continue
        elif c == ")":
            depth -= 1
            end_run()
            i += 1
            continue
        elif c == "|":
            if depth == 0:
                return None  # a top-level alternative: nothing is required
            i += 1
            continue
        elif c in ".^$+*?{}":
            end_run()
            counted = _COUNTED.match(src, i) if c == "{" else None
            i = counted.end() if counted else i + 1
            continue
        else:
            char = c
            i += 1
        if depth:
            continue  # inside a group: maybe optional, maybe one branch of an alternation
        if i < n and src[i] in _QUANTIFIERS:
            end_run()  # this character may be absent
            continue
        run.append(char)
    end_run()
    best = max(runs, key=len, default="")
    return best if len(best) >= _MIN_NEEDLE else None


def _skip_class(src: str, i: int) -> int:
    """The index just after the character class that starts at ``src[i] == "["``."""
    j = i + 1
    if j < len(src) and src[j] == "^":
        j += 1
    if j < len(src) and src[j] == "]":
        j += 1
    while j < len(src) and src[j] != "]":
        j += 2 if src[j] == "\\" else 1
    return j + 1
