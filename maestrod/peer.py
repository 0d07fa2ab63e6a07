"""What a handler may use of the client connection it serves (implemented by ``connection.Connection``).

A protocol rather than the class, so that dispatch and the handlers do not import the server side
(which imports them): the module graph stays a tree.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

import trio

from maestrod.events import Subscription


class Peer(Protocol):
    peer_pid: int | None
    session_id: str | None
    auth_error: str | None
    subscription: Subscription | None
    #: Per-connection state that handlers keep (e.g. attached viewers), dropped with the connection.
    extras: dict[str, Any]

    async def notify(self, method: str, params: Any) -> None: ...

    def close_soon(self) -> None: ...

    def peer_gone(self) -> bool: ...

    def cancel_when_gone(self) -> AbstractContextManager[trio.CancelScope]: ...

    def start_pusher(self, sub: Subscription) -> None: ...
