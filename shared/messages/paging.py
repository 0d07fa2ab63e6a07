"""Paged lists: the ``limit`` and ``cursor`` params every list method takes.

Give ``limit`` (or a ``cursor``) and the answer is one page::

    {"total": 10000, "next_cursor": "WyJ0YXNrLmxpc3Qi...", "items": [...]}

``next_cursor`` is null on the last page; pass it back unchanged (with the same filters) for the next one.
Pages are keyset pages (the cursor holds the sort key of the last item, never an offset): an item inserted
or deleted between two calls never makes another repeat or go missing. ``total`` counts every item that
matches the filters at the time of that call.

Without ``limit`` and ``cursor`` a list method answers as it always did (a bare array; mail.inbox its first
50, task.history its latest 200), so older clients keep working. maestroctl always pages.
"""

from __future__ import annotations

from typing import Any

import attrs

from shared.messages.spec import between, doc

#: The largest page any list method answers.
MAX_PAGE = 1000


def limit_field(high: int = MAX_PAGE) -> Any:
    return attrs.field(default=None, validator=attrs.validators.optional(between(1, high)), metadata=doc(
        f"page size (1..{high}): answer one page {{total, next_cursor, items}} instead of the whole list"))


def cursor_field() -> Any:
    return attrs.field(default=None, metadata=doc(
        "next_cursor of the previous page (same method, same filters); null: the first page"))
