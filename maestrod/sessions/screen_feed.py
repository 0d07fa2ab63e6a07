"""Screen feeds: a session's screen model pushed to a client as it changes (the dashboard's live terminal).

``session.watch_screen`` streams ``session.screen_model`` notifications on the client's connection: the
screen as runs of styled text with the cursor (:meth:`~maestrod.sessions.terminal.Terminal.screen_model`),
first at once, then each time the program's output changed what the screen shows -- at most
``max_rate`` frames a second, so a session that floods its terminal costs its watcher ten renders a second,
not one per read. A frame that would show exactly what the last one showed is not sent.

Cheap when nobody watches: a session without feeds pays one empty-list check per read of its output; the
screen model is brought up to date only for a feed (the screen witness decides the rest, see
:mod:`maestrod.sessions.screen`). The feed ends when the client calls ``session.unwatch_screen``, when the
session exits (after the last frame) or when the client goes away.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import trio

from maestrod.sessions.live import LiveSession, ScreenFeed

log = logging.getLogger("maestrod.sessions")


class Peer(Protocol):
    """The client connection a feed runs on."""

    extras: dict[str, Any]

    async def notify(self, method: str, params: dict[str, Any]) -> None: ...

    def cancel_when_gone(self) -> AbstractContextManager[trio.CancelScope]: ...


#: Brings the session's screen model up to date (and lets the screen witness classify it).
SyncScreen = Callable[[LiveSession], Awaitable[object]]


def _feeds_of(peer: Peer, sid: str) -> list[ScreenFeed]:
    feeds: dict[str, list[ScreenFeed]] = peer.extras.setdefault("screen_feeds", {})
    return feeds.setdefault(sid, [])


def frame(s: LiveSession, status: str) -> dict[str, Any]:
    """The session's screen model now (call after a sync), with what identifies the frame: ``revision`` is
    the number of output bytes the session had written when it was taken."""
    return {"id": s.id, "status": status, "revision": s.scrollback.total, **s.terminal.screen_model()}


class ScreenFeeds:
    def __init__(self, sync_screen: SyncScreen, status_of: Callable[[LiveSession], str]) -> None:
        self._sync = sync_screen
        self._status_of = status_of

    async def watch(self, peer: Peer, s: LiveSession, max_rate: float) -> dict[str, Any]:
        """Push frames to ``peer`` until unwatched, exited or disconnected; ``{id, ended, frames}``."""
        feed = ScreenFeed()
        s.screen_feeds.append(feed)
        mine = _feeds_of(peer, s.id)
        mine.append(feed)
        interval = 1.0 / max_rate
        ended, frames = "disconnected", 0
        last_shown: tuple[Any, ...] | None = None
        last_sent = -math.inf
        try:
            with peer.cancel_when_gone():
                while True:
                    exited = s.is_exited  # read before the sync: the last frame comes after the exit
                    await self._sync(s)
                    now = frame(s, self._status_of(s))
                    shown = (now["lines"], now["styles"], now["cursor"], now["rows"], now["cols"], now["stale"],
                             now["status"])
                    if shown != last_shown:
                        await peer.notify("session.screen_model", {**now, "frame": frames})
                        frames += 1
                        last_shown = shown
                        last_sent = trio.current_time()
                    if exited:
                        ended = "exited"
                        break
                    await feed.wait()
                    if feed.ended:
                        ended = "unwatched"
                        break
                    # Output meanwhile is shown once, after the wait: at most max_rate frames a second.
                    await trio.sleep_until(last_sent + interval)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            s.screen_feeds.remove(feed)
            mine.remove(feed)
        return {"id": s.id, "ended": ended, "frames": frames}

    @staticmethod
    def unwatch(peer: Peer, sid: str) -> int:
        feeds = list(_feeds_of(peer, sid))
        for feed in feeds:
            feed.ended = True
            feed.poke()
        return len(feeds)
