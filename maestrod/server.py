"""Accept connections on the Unix socket(s), check the peer, serve each connection."""

from __future__ import annotations

import logging
import socket

import trio

from maestrod.app import App
from maestrod.connection import Connection
from maestrod.service import peer_credentials

log = logging.getLogger("maestrod.server")


def make_connection_handler(app: App):  # type: ignore[no-untyped-def]
    async def handle(stream: trio.SocketStream) -> None:
        pid: int | None = None
        try:
            pid, uid, _gid = peer_credentials(stream.socket)  # type: ignore[arg-type]
            if uid != app.allowed_uid:
                log.warning("refused a connection from uid %d (pid %d): only uid %d may connect",
                            uid, pid, app.allowed_uid)
                await stream.aclose()
                return
        except OSError:
            log.exception("could not read peer credentials; refusing the connection")
            await stream.aclose()
            return
        conn = Connection(app, stream, pid)
        # Decided once, at connect time: SO_PEERCRED gives the pid that connected, which later requests
        # cannot change (see maestrod/identity.py and docs/security.md).
        conn.session_id = app.identity.bind(conn.extras, pid)
        try:
            await conn.serve()
        except Exception:
            # A client's mistake (or a broken socket) must never take the server down.
            log.exception("connection from pid %s failed", pid)

    return handle


async def serve(app: App, socks: list[socket.socket],
                task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the services and the listeners until cancelled."""
    import maestrod.handlers  # noqa: F401  (registers every method handler)

    listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(s)) for s in socks]
    async with trio.open_nursery() as nursery:
        for service in app.services:
            await nursery.start(service)
        await nursery.start(trio.serve_listeners, make_connection_handler(app), listeners)
        task_status.started()
