"""Human output: aligned tables and key/value blocks; ``--json`` bypasses all of it."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


#: What a terminal acts on instead of showing: C0 controls but tab and newline (ESC starts every escape
#: sequence, CR overwrites a line), DEL, C1 controls (U+009B is a one-character CSI) and the bidi controls
#: that reorder text.  Names, titles and messages come from agents: shown, they must not steer the terminal.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROLS.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def safe(text: str) -> str:
    """``text`` for a terminal: every control character above spelled out (ESC as ``\\x1b``)."""
    # C speed for the common case: "not printable" is a superset of _CONTROLS
    if all(map(str.isprintable, text.replace("\t", " ").split("\n"))):
        return text
    return text.translate(_CONTROLS)


def print_json(value: Any) -> None:
    """One line of compact JSON: the same bytes shape the daemon sends (pipe it to `jq` to read)."""
    from maestroctl import wire

    sys.stdout.write(wire.dumps(value) + "\n")


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "-"
    return safe(str(v).replace("\n", " "))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *,
          max_width: int = 60) -> str:
    """Render ``rows`` with (key, header) ``columns``; long cells are cut with an ellipsis."""
    cells = [[_cell(r.get(k)) for k, _ in columns] for r in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    headers = [h for _, h in columns]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def kv(obj: dict[str, Any], keys: Sequence[str] | None = None) -> str:
    keys = list(keys or obj.keys())
    width = max((len(k) for k in keys), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(obj.get(k))}" for k in keys)


def short_time(ts: str | None) -> str:
    """``2026-11-21T14:32:05.123Z`` -> ``11-21 14:32``."""
    if not ts:
        return "-"
    return ts[5:16].replace("T", " ")
