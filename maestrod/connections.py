"""The daemon's client connections together: counts, long waits not yet answered, the input budget.

Its own module (not :mod:`maestrod.connection`) so that :mod:`maestrod.app` builds it without importing
the connection, which imports dispatch, which knows the app: the module graph stays a tree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import trio


class InputBudget:
    """Input bytes buffered across every connection (their unfinished lines), against one bound.

    Each connection may hold a line of up to ``[connections] line_max_bytes``; together they may hold
    ``input_total_bytes``. Past that, a line that grows beyond :attr:`refuse_above` is refused with -32005
    (its bytes dropped, the rest skipped); short requests still get through, no connection is closed.
    """

    #: Lines up to this size are never refused: a ping or a typical call goes through whatever the load.
    refuse_above = 64 * 1024

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0

    def refusal(self) -> str:
        return (f"Message too large: maestrod's input buffers are full ({self.total} of {self.limit} bytes, "
                "[connections] input_total_bytes); this line was refused and skipped, retry it later")


class Connections:
    """The daemon's client connections together: how many are open, how many are in a long wait (shown by
    ``system.version``), and the input budget they share."""

    def __init__(self, input_total_bytes: int) -> None:
        self.input = InputBudget(input_total_bytes)
        self.open = 0
        #: Long waits (mail.wait, session.wait) not answered yet.
        self.waiting = 0
        self._answered = trio.Event()
        #: Requests answered in order that are running or whose answer is being written (a graceful restart
        #: lets them finish first).
        self.answering = 0
        self._idle = trio.Event()

    @contextlib.contextmanager
    def waiting_answer(self) -> Iterator[None]:
        self.waiting += 1
        try:
            yield
        finally:
            self.waiting -= 1
            if self.waiting == 0:
                self._answered.set()

    @contextlib.contextmanager
    def answering_request(self) -> Iterator[None]:
        self.answering += 1
        try:
            yield
        finally:
            self.answering -= 1
            if self.answering == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        """Until every request that started has been answered (long waits included: they end at once when
        the daemon is shutting down)."""
        await self.wait_answered()
        await self.wait_none_answering()

    async def wait_none_answering(self) -> None:
        """Until no request is running or having its answer written (long waits aside)."""
        while self.answering:
            self._idle = trio.Event()
            await self._idle.wait()

    async def wait_answered(self) -> None:
        """Until no long wait is left unanswered (on shutdown they end with -32006 at once)."""
        while self.waiting:
            self._answered = trio.Event()
            await self._answered.wait()

    def stats(self) -> dict[str, int]:
        return {"open": self.open, "waiting": self.waiting, "input_bytes": self.input.total,
                "input_limit": self.input.limit}
