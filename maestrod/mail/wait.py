"""``mail.wait``: a long poll woken by the arrival itself, never by polling.

A waiter checks the store for unread mail and, finding none, parks on a
:class:`trio.Event` registered under its mailbox. The event bus calls
:meth:`MailWaiters.on_event` synchronously after a ``mail.received`` event
commits, which sets the events of every waiting recipient. Between the check
and the registration there is no checkpoint, so no arrival can slip between
them (trio runs one task at a time).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from maestrod.mail.store import MailStore


class MailWaiters:
    """Parked ``mail.wait`` calls, by mailbox."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[trio.Event]] = {}

    def on_event(self, event: dict[str, Any]) -> None:
        """A ``mail.received`` event: wake every waiter of its recipients."""
        for mailbox in event["data"].get("to", ()):
            for ev in self._waiting.get(mailbox, ()):
                ev.set()

    @contextlib.contextmanager
    def watch(self, mailbox: str) -> Iterator[trio.Event]:
        ev = trio.Event()
        self._waiting.setdefault(mailbox, set()).add(ev)
        try:
            yield ev
        finally:
            waiting = self._waiting.get(mailbox)
            if waiting is not None:
                waiting.discard(ev)
                if not waiting:
                    del self._waiting[mailbox]

    def count(self, mailbox: str | None = None) -> int:
        if mailbox is not None:
            return len(self._waiting.get(mailbox, ()))
        return sum(len(s) for s in self._waiting.values())


async def wait_for_mail(store: MailStore, waiters: MailWaiters, mailbox: str, timeout: float | None,
                        type_: str | None = None) -> list[dict[str, Any]]:
    """Every unread message of ``mailbox`` (of ``type_``), at once if there is any, else as soon as
    one arrives; ``[]`` once ``timeout`` seconds passed (None: no limit)."""
    deadline = math.inf if timeout is None else trio.current_time() + timeout
    while True:
        found = store.unread(mailbox, type_)
        if found:
            return found
        if trio.current_time() >= deadline:
            await trio.lowlevel.checkpoint()
            return []
        with waiters.watch(mailbox) as ev:
            with trio.move_on_at(deadline):
                await ev.wait()
            if not ev.is_set():
                return []  # every arrival for this mailbox would have set the event
