"""The shell's own connection to the daemon: a snapshot, then every event, and back after a restart.

On its first connection it subscribes, then loads the lists (sessions for the toolbar; tasks, projects,
mail and templates for completion).  When the daemon goes away the toolbar says so and the feed retries
(0.1 s, doubling to 1 s); once it is back it subscribes again and replays what it missed by ``seq``
(``events.replay``), or loads everything again if the daemon no longer keeps those events (``gap``).
Subscribing before replaying means nothing falls between the two: an event both replayed and pushed is
applied once (:meth:`Live.apply` ignores a ``seq`` it has seen).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from maestroctl.shell.live import KINDS, TOPICS, Live, items
from maestroctl.shell.rpc import ConnectionLost, RemoteError, RpcConnection

RETRY_FIRST, RETRY_MAX = 0.1, 1.0
#: Completion lists changed by events are fetched again at most this often.
REFRESH_DELAY = 0.2
REPLAY_PAGE = 1000

#: kind -> (method, params) that lists it
FETCH: dict[str, tuple[str, dict[str, Any] | None]] = {
    "sessions": ("session.list", {"active": True}),
    "tasks": ("task.list", {}),
    "projects": ("project.list", None),
    "mail": ("mail.inbox", {"limit": 1000}),
    "templates": ("template.list", None),
}


class Feed:
    def __init__(self, socket: str, live: Live, on_change: Callable[[], None]) -> None:
        self.socket = socket
        self.live = live
        self.on_change = on_change
        self._stale: set[str] = set()
        self._wake = asyncio.Event()
        #: Set each time the feed has caught up after a (re)connection (tests and the bench wait on it).
        self.synced = asyncio.Event()

    async def run(self) -> None:
        """Forever (until cancelled): connect, follow, and reconnect when the daemon goes away."""
        delay = RETRY_FIRST
        while True:
            try:
                conn = await RpcConnection.open(self.socket)
            except (OSError, asyncio.TimeoutError) as exc:
                self._down(_why(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            reason = "maestrod closed the connection"
            try:
                await self._follow(conn)
            except ConnectionLost:
                pass
            except RemoteError as exc:  # e.g. shutting down (-32006): try again
                reason = f"error {exc.code}: {exc.message}"
            except asyncio.TimeoutError:
                reason = "maestrod did not answer"
            finally:
                await conn.aclose()
            self._down(reason)
            await asyncio.sleep(RETRY_FIRST)

    def _down(self, reason: str) -> None:
        self.synced.clear()
        if self.live.connected or self.live.down_reason != reason:
            self.live.down(reason)
            self.on_change()

    async def _follow(self, conn: RpcConnection) -> None:
        sub = await conn.call("events.subscribe", {"topics": TOPICS})
        last_seq = sub.get("last_seq") if isinstance(sub, dict) else None
        if self.live.seq is None:
            await self._load(conn, KINDS)
            self.live.seq = last_seq if isinstance(last_seq, int) else 0
        else:
            await self._replay(conn, last_seq)
        self.live.up()
        self.on_change()
        self.synced.set()
        refresher = asyncio.get_running_loop().create_task(self._refresh(conn))
        try:
            while True:
                msg = await conn.notifications.get()
                if msg is None:
                    return
                if msg.get("method") != "event" or not isinstance(msg.get("params"), dict):
                    continue
                self._mark(self.live.apply(msg["params"]))
                self.on_change()
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    async def _replay(self, conn: RpcConnection, last_seq: Any) -> None:
        """Catch up from the last event applied: the toolbar ends as if the connection never broke."""
        while True:
            since = self.live.seq or 0
            r = await conn.call("events.replay", {"since": since, "topics": TOPICS, "limit": REPLAY_PAGE})
            if r.get("gap"):  # pruned: what happened in between is lost, so start from a fresh snapshot
                await self._load(conn, KINDS)
                self.live.seq = last_seq if isinstance(last_seq, int) else since
                return
            for event in r.get("events", []):
                self._mark(self.live.apply(event))
            if not r.get("more") or self.live.seq == since:
                return

    def _mark(self, kinds: set[str]) -> None:
        if kinds:
            self._stale |= kinds
            self._wake.set()

    async def _refresh(self, conn: RpcConnection) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(REFRESH_DELAY)  # a burst of task changes costs one fetch
            self._wake.clear()
            kinds, self._stale = self._stale, set()
            await self._load(conn, kinds)
            if "sessions" in kinds:
                self.on_change()

    async def _load(self, conn: RpcConnection, kinds: Any) -> None:
        for kind in kinds:
            method, params = FETCH[kind]
            try:
                result = await conn.call(method, params)
            except RemoteError:
                continue  # e.g. an agent that may not read the human's mailbox: nothing to complete
            self.live.load(kind, items(result))


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no socket"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer"
    return str(exc) or type(exc).__name__
