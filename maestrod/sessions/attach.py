"""Attached viewers: a session's terminal streamed to a client, like ``tmux attach``.

The attach stream is a series of notifications on the client's connection: ``session.output`` (base64 bytes,
the first one a full repaint), ``session.heartbeat`` when quiet, ``session.exited`` at the end. Keys go back
through ``session.input``. The connection is seen only through :class:`Peer`, so this module knows nothing
of the server.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import trio

from maestrod.sessions.live import VIEWER_BACKLOG, LiveSession, Viewer
from maestrod.sessions.terminal import Terminal
from maestrod.sessions.store import SessionStore

log = logging.getLogger("maestrod.sessions")

#: A quiet attach stream sends a `session.heartbeat` this often (finds viewers that went away).
HEARTBEAT = 15.0


class Peer(Protocol):
    """The client connection an attach stream runs on."""

    extras: dict[str, Any]

    async def notify(self, method: str, params: dict[str, Any]) -> None: ...

    def cancel_when_gone(self) -> AbstractContextManager[trio.CancelScope]: ...


#: Brings the session's screen model up to date (before a repaint is rendered).
SyncScreen = Callable[[LiveSession], Awaitable[object]]


def _viewers_of(peer: Peer | None, sid: str) -> list[Viewer]:
    if peer is None:
        return []
    attached: dict[str, list[Viewer]] = peer.extras.setdefault("attach", {})
    return attached.setdefault(sid, [])


class Attachments:
    def __init__(self, store: SessionStore, sync_screen: SyncScreen) -> None:
        self.store = store
        self._sync = sync_screen

    async def attach(self, peer: Peer, s: LiveSession, actor: str, *, since: int | None = None) -> str:
        """Stream the session's terminal to ``peer`` until detached, exited or disconnected; the reason.

        ``since``: a viewer resuming (after a daemon restart) gets the output after that offset instead of a
        repaint, when the scrollback still holds it and it is not too much (else a repaint, as for a viewer
        that fell behind)."""
        viewer = Viewer()
        sb = s.scrollback
        resume = since is not None and max(sb.start, sb.total - sb.capacity) <= since <= sb.total \
            and sb.total - since <= VIEWER_BACKLOG
        if resume:
            assert since is not None
            # What the reader gave viewers: the raw output with the terminal's queries taken out (they were
            # answered already), through a terminal of its own so the session's is not disturbed.
            repaint, _replies = Terminal(s.terminal.rows, s.terminal.cols).process(sb.read(since, sb.total - since)[1])
        else:
            await self._sync(s)
            repaint = s.terminal.render_ansi()
        offset = sb.total
        s.viewers.append(viewer)  # no checkpoint since the snapshot: nothing is missed or doubled
        mine = _viewers_of(peer, s.id)
        mine.append(viewer)
        self.store.record(actor, s.id, "session.attach", {"attached": True, "viewers": len(s.viewers)})
        reason = "disconnected"
        try:
            # The attacher going away ends the stream at once, not at the next heartbeat.
            with peer.cancel_when_gone():
                await _output(peer, s.id, repaint, offset, repaint=not resume)
                reason = await self._stream(peer, s, viewer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            s.viewers.remove(viewer)
            mine.remove(viewer)
            try:
                self.store.record(actor, s.id, "session.attach",
                                  {"attached": False, "reason": reason, "viewers": len(s.viewers)})
            except Exception:
                log.debug("detach of %s not recorded", s.id, exc_info=True)
        return reason

    async def _stream(self, peer: Peer, s: LiveSession, viewer: Viewer) -> str:
        """The attach loop after the first repaint: ``detached`` or ``exited``."""
        while not viewer.detached:
            if viewer.needs_repaint:
                await self._sync(s)
                viewer.needs_repaint = False
                viewer.take()
                await _output(peer, s.id, s.terminal.render_ansi(), s.scrollback.total, repaint=True)
                continue
            data = viewer.take()
            if data:
                await _output(peer, s.id, data, s.scrollback.total, repaint=False)
                continue
            if s.is_exited:
                await peer.notify("session.exited", {"id": s.id, "exit_code": s.exit_code,
                                                     "exit_reason": self.store.row(s.id)["exit_reason"]})
                return "exited"
            with trio.move_on_after(HEARTBEAT) as idle:
                await viewer.wait()
            if idle.cancelled_caught:
                await peer.notify("session.heartbeat", {"id": s.id})
        return "detached"

    @staticmethod
    def detach(peer: Peer, sid: str) -> int:
        viewers = list(_viewers_of(peer, sid))
        for v in viewers:
            v.detached = True
            v.poke()
        return len(viewers)

    @staticmethod
    def attached_on(peer: Peer | None, sid: str) -> bool:
        return bool(_viewers_of(peer, sid))


async def _output(peer: Peer, sid: str, data: bytes, offset: int, *, repaint: bool) -> None:
    await peer.notify("session.output", {"id": sid, "repaint": repaint, "offset": offset,
                                         "data": base64.b64encode(data).decode()})
