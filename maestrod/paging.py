"""Keyset pages for the list methods (see shared/messages/paging.py for what clients see).

A cursor is the sort key of the last item a page held, tagged with the method that gave it, in URL-safe
base64 of a JSON array: opaque to clients, and checked here (a cursor that is not this method's, or whose
key has the wrong shape, is -32602 naming ``cursor``). The next page starts strictly after that key, in SQL
(``WHERE (k1, k2) > (?, ?)``) for lists that can be long, or over the sorted list for short ones.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from shared import errors

T = TypeVar("T")
#: A sort key: ints and strings only (what a cursor can carry through JSON unchanged).
Key = tuple[Any, ...]


def encode(method: str, key: Key) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([method, *key])).decode().rstrip("=")


def decode(method: str, cursor: str, shape: Sequence[type]) -> Key:
    """The key in ``cursor``, or -32602 naming ``cursor`` when it is not one ``method`` gave."""
    def bad(why: str) -> errors.RpcError:
        return errors.invalid_params([f"cursor: {why}; pass back next_cursor from a {method} page unchanged"])

    if len(cursor) > 4096:
        raise bad("too long to be a cursor")
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad("not a cursor") from None
    if not isinstance(value, list) or not value or value[0] != method:
        raise bad("not a cursor of this method")
    key = value[1:]
    if len(key) != len(shape) or not all(type(k) is t for k, t in zip(key, shape)):
        raise bad("not a cursor of this method")
    if any(type(k) is int and not -(1 << 63) <= k < 1 << 63 for k in key):  # SQLite's integers
        raise bad("not a cursor of this method")
    return tuple(key)


#: The page size when a caller gives a cursor but no limit.
DEFAULT_PAGE = 100


def answer(method: str, items: list[Any], total: int, next_key: Key | None) -> dict[str, Any]:
    """The answer: ``total`` and ``next_cursor`` first (maestroctl reads them without decoding the items)."""
    return {"total": total, "next_cursor": None if next_key is None else encode(method, next_key),
            "items": items}


def paged(limit: int | None, cursor: str | None) -> bool:
    """Whether the caller asked for a page (else the method answers its whole list, as before)."""
    return limit is not None or cursor is not None


class Page:
    """One page being fetched: where it starts (``after``), its size, and what the store found out
    (``total``, ``next_key`` when another page follows). A store fills it in from a keyset query."""

    def __init__(self, method: str, cursor: str | None, limit: int | None, shape: Sequence[type]) -> None:
        self.method = method
        self.after = None if cursor is None else decode(method, cursor, shape)
        self.limit = limit if limit is not None else DEFAULT_PAGE
        self.total = 0
        self.next_key: Key | None = None

    def cut(self, fetched: list[T], key: Callable[[T], Key]) -> list[T]:
        """``fetched`` holds up to ``limit + 1`` items in key order: the page, and whether more follow."""
        if len(fetched) > self.limit:
            fetched = fetched[:self.limit]
            self.next_key = key(fetched[-1])
        return fetched

    def answer(self, items: list[Any]) -> dict[str, Any]:
        return answer(self.method, items, self.total, self.next_key)


def slice_page(method: str, items: Sequence[T], key: Callable[[T], Key], cursor: str | None,
               limit: int | None, shape: Sequence[type]) -> dict[str, Any]:
    """One page of a short list held whole (templates, projects, a thread): the items after the cursor's
    key in ``key`` order."""
    page = Page(method, cursor, limit, shape)
    ordered = sorted(items, key=key)
    page.total = len(ordered)
    rest = ordered if page.after is None else [i for i in ordered if key(i) > page.after]
    return page.answer(page.cut(rest[:page.limit + 1], key))
