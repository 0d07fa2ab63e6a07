"""Whether the daemon takes new work (``App.shutting_down``)."""

from __future__ import annotations

import trio


class ShuttingDown:
    """Set on SIGTERM/SIGINT and while a graceful restart hands over to a successor: new requests get -32006
    ``{retry: true}``, long waits end the same way, services stop starting work. Cleared only when that
    hand-over is abandoned (its exec failed) and the daemon serves on.

    A :class:`trio.Event` cannot be cleared, and services keep what they were given at start (the task-run
    ``Runner``, for one): so they all keep this one object, which holds a fresh event after :meth:`clear`."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        """Until it is set (at once if it is): waiters woken by a set are not put back to sleep by a clear."""
        await self._event.wait()

    def clear(self) -> None:
        if self._event.is_set():
            self._event = trio.Event()
