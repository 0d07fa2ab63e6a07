"""Caps on what a client can make the daemon store (Hardening item 8), checked by the strict converter
(:func:`shared.convert.structure_params`) before any handler runs: a value over its cap is refused with
-32005 (TOO_LARGE) naming the field, the cap and the size.

docs/limits.md lists them (a test keeps that table in step with :data:`FIELD_CAPS`). Caps that a person may
tune live in the config instead (mail bodies and subjects, prompts) and are checked where they are used.
"""

from __future__ import annotations

import attrs

#: Any string param not capped below (ids, prefixes, hook event names, a session's typed input...).
STRING_MAX = 1024 * 1024
#: Any array param not capped below.
LIST_MAX = 10_000

NAME_MAX = 200
TITLE_MAX = 500
TEXT_MAX = 64 * 1024
PATH_MAX = 4096
#: Linux refuses a single argv or environment string longer than this (MAX_ARG_STRLEN).
ARG_MAX = 128 * 1024
IDS_MAX = 1000


@attrs.frozen
class Cap:
    """``chars``: the string's length (or each item's / each key's and value's, for arrays and objects);
    ``items``: how many items or entries."""

    chars: int | None = None
    items: int | None = None
    #: For objects: the length of each key (``chars`` is each value's).
    key_chars: int | None = None


_PROJECT = {"name": Cap(NAME_MAX), "dir": Cap(PATH_MAX), "description": Cap(TEXT_MAX)}
_TASK = {"title": Cap(TITLE_MAX), "description": Cap(TEXT_MAX)}

#: Params class name -> field -> cap.
FIELD_CAPS: dict[str, dict[str, Cap]] = {
    "ProjectCreate": _PROJECT,
    "ProjectUpdate": _PROJECT,
    "TaskCreate": {**_TASK, "depends_on": Cap(items=IDS_MAX)},
    "TaskUpdate": {**_TASK, "add_depends_on": Cap(items=IDS_MAX), "remove_depends_on": Cap(items=IDS_MAX)},
    "TaskReport": {"message": Cap(16 * 1024)},
    "MailSend": {"to": Cap(NAME_MAX, items=IDS_MAX)},
    "SessionSpawn": {
        "name": Cap(NAME_MAX), "cwd": Cap(PATH_MAX), "task_ids": Cap(items=IDS_MAX),
        "argv": Cap(ARG_MAX, items=4096), "env": Cap(ARG_MAX, items=1000, key_chars=1024),
        "allowed_tools": Cap(PATH_MAX), "permission_mode": Cap(NAME_MAX), "template": Cap(NAME_MAX),
        "subject": Cap(TITLE_MAX), "branch": Cap(NAME_MAX), "base": Cap(NAME_MAX),
    },
    "HookEvent": {"event": Cap(NAME_MAX)},
}


def check(field: str, value: object, cap: Cap) -> list[str]:
    """What is over ``cap`` in ``value`` (``field: at most N ..., got M``), empty when nothing is."""
    out: list[str] = []
    if value is None:
        return out
    if isinstance(value, str):
        if cap.chars is not None and len(value) > cap.chars:
            out.append(f"{field}: at most {cap.chars} characters, got {len(value)}")
        return out
    if isinstance(value, (list, dict)) and cap.items is not None and len(value) > cap.items:
        out.append(f"{field}: at most {cap.items} items, got {len(value)}")
        return out
    if isinstance(value, list) and cap.chars is not None:
        for i, item in enumerate(value):
            if isinstance(item, str) and len(item) > cap.chars:
                out.append(f"{field}[{i}]: at most {cap.chars} characters, got {len(item)}")
    if isinstance(value, dict):
        for k, v in value.items():
            if cap.key_chars is not None and isinstance(k, str) and len(k) > cap.key_chars:
                out.append(f"{field}: a key of at most {cap.key_chars} characters, got {len(k)}")
            if cap.chars is not None and isinstance(v, str) and len(v) > cap.chars:
                out.append(f"{field}[{k[:40]!r}]: at most {cap.chars} characters, got {len(v)}")
    return out
