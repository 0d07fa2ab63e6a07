"""What the ``daemon.*`` methods ask of the running daemon (restart in place, reload, stop).

A protocol, so that :class:`~maestrod.app.App` can hold it without importing what implements it
(:class:`maestrod.handoff.DaemonControl`, built by ``maestrod.main``, which knows the process: its sockets,
locks and how it was started).
"""

from __future__ import annotations

from typing import Any, Protocol


class Control(Protocol):
    async def restart(self) -> dict[str, Any]:
        """Check that the installed code takes over this daemon's state, then hand over (after the answer is
        sent). Raises an RpcError saying why when it will not."""
        ...

    def reload(self) -> dict[str, Any]:
        """Read config.toml again and apply what can change live; says what could not."""
        ...

    def stop(self) -> None:
        """Stop the daemon (its agents gracefully), after the answer is sent."""
        ...
