"""List commands: follow the daemon's pages to the end, or show at most ``--limit`` items.

Every list method answers pages ``{"total": N, "next_cursor": C|null, "items": [...]}`` when asked with a
``limit`` (shared/messages/paging.py). Without ``--limit`` a command follows ``next_cursor`` until it is
null, so nothing is ever cut silently, and ``--json`` prints one array of every item: the same shape as
before paging, which agents and the workflow templates parse. ``--limit N`` shows at most N (and says on
stderr how to get the rest with ``--cursor``).

The pages' bytes are joined as the daemon sent them: only each page's head (total, next_cursor) is read.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    from typing import Any

#: Items asked per call: big enough that a typical list is one round trip, small enough that one call
#: holds the daemon a few milliseconds (a page of 1,000 tasks is ~0.3 MB).
PAGE = 1000


def add_args(parser: Any) -> None:
    """``--limit`` and ``--cursor`` on a list command."""
    parser.add_argument("--limit", type=int, metavar="N", help="show at most N (default: all, page by page)")
    parser.add_argument("--cursor", metavar="C", help="start after the page that printed this cursor")


def _head(raw: bytes) -> tuple[int, str | None, bytes] | None:
    """(total, next_cursor, the items array's bytes) of a page as maestrod encodes it, or None."""
    start = b'{"total":'
    if not (raw.startswith(start) and raw.endswith(b"}")):
        return None
    comma = raw.find(b",", len(start))
    rest = raw[comma:]
    if rest.startswith(b',"next_cursor":null,"items":'):
        cursor, at = None, comma + len(b',"next_cursor":null,"items":')
    elif rest.startswith(b',"next_cursor":"'):
        begin = comma + len(b',"next_cursor":"')
        end = raw.find(b'"', begin)  # a cursor is URL-safe base64: no quote, no escape
        if not raw.startswith(b',"items":', end + 1):
            return None
        cursor, at = raw[begin:end].decode(), end + 1 + len(b',"items":')
    else:
        return None
    items = raw[at:-1]
    try:
        total = int(raw[len(start):comma])
    except ValueError:
        return None
    return (total, cursor, items) if items.startswith(b"[") and items.endswith(b"]") else None


def fetch(rt: Any, method: str, params: dict[str, Any], limit: int | None = None,
          cursor: str | None = None) -> tuple[bytes, int, str | None]:
    """Every item (or at most ``limit``) as one JSON array's bytes, the total, and the cursor after them."""
    if limit is not None and limit < 1:
        raise SystemExit(f"maestroctl: --limit must be at least 1, got {limit}")
    parts: list[bytes] = []
    total = 0
    left = limit
    while True:
        size = PAGE if left is None else min(left, PAGE)
        ask = dict(params, limit=size)
        if cursor is not None:
            ask["cursor"] = cursor
        value, raw = rt.client().call_raw(method, ask)
        head = _head(raw) if raw is not None else None
        if head is None:  # not the usual encoding: decode it
            from maestroctl import wire

            page = wire.loads(raw) if raw is not None else value
            total, cursor = page["total"], page["next_cursor"]
            items = wire.dumps(page["items"]).encode()
        else:
            total, cursor, items = head
        if items != b"[]":
            parts.append(items[1:-1])
        if cursor is None:
            break
        if left is not None:
            left -= size
            if left <= 0:
                break
    return b"[" + b",".join(parts) + b"]", total, cursor


def show(rt: Any, method: str, params: dict[str, Any], human: Any, limit: int | None = None,
         cursor: str | None = None) -> None:
    """Print a list command's items: every one, or at most ``limit`` (the rest's cursor on stderr)."""
    data, total, after = fetch(rt, method, params, limit, cursor)
    if rt.json:
        out = sys.stdout.buffer
        out.write(data + b"\n")
        out.flush()
    else:
        from maestroctl import wire

        rt.emit(wire.loads(data), human)
    if after is not None:
        sys.stderr.write(f"maestroctl: {total} in all; the next ones: --cursor {after}\n")
