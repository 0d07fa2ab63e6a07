"""Workflow templates: what a spawned agent is told to do, by role.

Six are built in (the ``*.md`` files next to this module):

* workers: ``execute-simple`` (tasks one at a time), ``execute-tree`` (a task
  tree, leaves first), ``execute-queue`` (drain an ordered queue);
* coordinators: ``coordinate-default`` (a worker per subtask),
  ``coordinate-batching`` (batches of independent subtasks),
  ``coordinate-dag`` (a dependency graph, run in waves).

A user overrides one -- or adds a new one -- with a file of the same name in
``$XDG_CONFIG_HOME/maestro/templates/`` (``NAME.md``; ``NAME`` or ``NAME.txt``
work too). A file may start with front matter::

    ---
    role: worker
    description: one line
    ---

Missing keys fall back to the built-in template of that name (else role
``coordinator`` for names starting with ``coordinate``, ``worker`` otherwise).
Files are read on every call: an edit applies to the next spawn, no restart.

Only the standard library is used here (``maestroctl`` may import it).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shared import paths

BUILTIN_DIR = Path(__file__).resolve().parent
BUILTIN = ("execute-simple", "execute-tree", "execute-queue",
           "coordinate-default", "coordinate-batching", "coordinate-dag")
#: The template a session gets when the spawner names none.
DEFAULT_FOR_ROLE = {"worker": "execute-simple", "coordinator": "coordinate-default"}
ROLES = ("worker", "coordinator")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_SUFFIXES = (".md", ".txt", "")


class TemplateError(Exception):
    """A template file that cannot be used (unreadable, empty, bad front matter)."""


class UnknownTemplate(TemplateError):
    """No template of that name."""


class BadTemplateName(TemplateError):
    """A name that cannot be a template (it would be a path)."""


@dataclass(frozen=True)
class Template:
    name: str
    role: str
    description: str
    text: str
    #: "builtin", or "user" when a file in the user's template directory provides it.
    source: str
    path: str

    def to_json(self, *, with_text: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not with_text:
            d.pop("text")
        return d


def user_dir(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/maestro/templates``."""
    return Path(paths.config_dir(env)) / "templates"


def parse(text: str) -> tuple[dict[str, str], str]:
    """Split optional ``---`` front matter (``key: value`` lines) from the body."""
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(keepends=True)
    if lines[0].strip() != "---":
        return {}, text
    meta: dict[str, str] = {}
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return meta, "".join(lines[i + 1:]).lstrip("\n")
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip()
    return {}, text  # no closing fence: it was not front matter


def _check_name(name: str) -> None:
    if not NAME_RE.match(name) or ".." in name:
        raise BadTemplateName(f"invalid template name {name!r}: use lowercase letters, digits, '-', '_' and '.'")


def _find_user(name: str, env: Any) -> Path | None:
    d = user_dir(env)
    for suffix in _SUFFIXES:
        p = d / f"{name}{suffix}"
        if p.is_file():
            return p
    return None


def _load(name: str, path: Path, source: str, fallback: Template | None) -> Template:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read template {name!r} from {path}: {exc}") from None
    meta, body = parse(raw)
    role = meta.get("role") or (fallback.role if fallback else
                                "coordinator" if name.startswith("coordinate") else "worker")
    if role not in ROLES:
        raise TemplateError(f"template {name!r} ({path}): role must be worker or coordinator, got {role!r}")
    description = meta.get("description") or (fallback.description if fallback else "")
    if not body.strip():
        raise TemplateError(f"template {name!r} ({path}) is empty")
    return Template(name=name, role=role, description=description, text=body.rstrip() + "\n",
                    source=source, path=str(path))


def builtin(name: str) -> Template:
    """The built-in template ``name``, ignoring user overrides."""
    if name not in BUILTIN:
        raise UnknownTemplate(f"no built-in template {name!r}; built in: {', '.join(BUILTIN)}")
    return _load(name, BUILTIN_DIR / f"{name}.md", "builtin", None)


def get_template(name: str, env: os._Environ[str] | dict[str, str] | None = None) -> Template:
    """Template ``name``: the user's file if there is one, else the built-in one."""
    _check_name(name)
    base = builtin(name) if name in BUILTIN else None
    user = _find_user(name, env)
    if user is not None:
        return _load(name, user, "user", base)
    if base is None:
        raise UnknownTemplate(f"unknown template {name!r}; available: {', '.join(n.name for n in list_templates(env))}")
    return base


def list_templates(env: os._Environ[str] | dict[str, str] | None = None) -> list[Template]:
    """Every template: the built-in ones (or their overrides), then the user's own, by name."""
    names = list(BUILTIN)
    d = user_dir(env)
    if d.is_dir():
        extra = set()
        for p in d.iterdir():
            stem = p.name
            for suffix in (".md", ".txt"):
                if stem.endswith(suffix):
                    stem = stem[: -len(suffix)]
                    break
            if p.is_file() and NAME_RE.match(stem) and stem not in BUILTIN:
                extra.add(stem)
        names += sorted(extra)
    out = []
    for name in names:
        try:
            out.append(get_template(name, env))
        except TemplateError:
            continue  # a broken user file is reported by template.get, not by the listing
    return out


def default_template(role: str) -> str:
    if role not in DEFAULT_FOR_ROLE:
        raise TemplateError(f"unknown role {role!r}: worker or coordinator")
    return DEFAULT_FOR_ROLE[role]
