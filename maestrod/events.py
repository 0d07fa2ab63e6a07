"""The event bus: every change is a numbered event, kept for replay and pushed to subscribers.

Events are rows in the store's ``events`` table, written in the same
transaction as the change they describe, so ``seq`` is monotonic across
daemon restarts and a change that rolled back was never announced.
Retention is bounded (``[events] retention``, default the newest 10,000), see README.

Publishing never blocks. Each subscriber has an outbox of encoded event lines
(:class:`Subscription`, sans-I/O: the connection's pusher drains it). Only a
subscriber that stops reading is dropped: when its pending output passes
``subscriber_max_bytes``, or when the connection took none of it for
``subscriber_stall_seconds``. A burst fills no count: a subscriber that reads
keeps up, however many events the writers produce at once. A dropped
subscriber is told (``events.dropped`` with the seq to resume from) when its
socket can still take that line, then its connection is closed.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable
from typing import Any

import attrs
import orjson
import trio

from maestrod.store.db import Database, utcnow
from shared import jsonrpc
from shared.messages.events import EVENT

log = logging.getLogger("maestrod.events")


@attrs.define(eq=False)
class Subscription:
    """One subscriber's pending output and the rules that drop it (no I/O here; see the connection's pusher).

    ``offer`` queues an event's line; the pusher ``take``s whole lines and reports ``sent`` once the
    connection took them. ``since`` is the last seq written whole: a dropped subscriber resumes after it.
    """

    topics: tuple[str, ...]
    max_bytes: int
    stall_seconds: float
    since: int = 0
    pending: collections.deque[tuple[int, bytes]] = attrs.Factory(collections.deque)
    pending_bytes: int = 0
    #: When the oldest pending output started waiting without the connection taking any byte.
    waiting_since: float | None = None
    #: "behind" or "stalled" once dropped; the pending output was discarded then.
    dropped: str | None = None
    dropped_bytes: int = 0
    #: Unsubscribed (or replaced): the pusher ends quietly.
    closed: bool = False
    _wakeup: trio.Event = attrs.Factory(trio.Event)
    #: The pusher's current wait for the connection (cancelled by drop and close, so that it acts at once).
    wait_scope: trio.CancelScope | None = None

    def wants(self, topic: str) -> bool:
        return not self.topics or any(topic.startswith(p) for p in self.topics)

    def offer(self, seq: int, line: bytes, now: float) -> bool:
        """Queue one event's line; False if that put the subscriber over ``max_bytes`` (it is dropped)."""
        if self.dropped or self.closed:
            return True
        if self.pending_bytes + len(line) > self.max_bytes:
            self.drop("behind")
            return False
        if not self.pending:
            self.waiting_since = now
        self.pending.append((seq, line))
        self.pending_bytes += len(line)
        self._wakeup.set()
        return True

    def take(self, limit: int) -> tuple[bytes, int]:
        """Whole lines, at least one and then up to ``limit`` bytes, and the seq of the last one."""
        parts: list[bytes] = []
        size = 0
        seq = self.since
        while self.pending and (not parts or size + len(self.pending[0][1]) <= limit):
            seq, line = self.pending.popleft()
            parts.append(line)
            size += len(line)
        self.pending_bytes -= size
        return b"".join(parts), seq

    def sent(self, seq: int, now: float) -> None:
        """The connection took every line up to ``seq``: progress."""
        self.since = max(self.since, seq)
        self.waiting_since = now if self.pending else None

    def stall_deadline(self) -> float:
        """When the pending output will have waited too long without progress (inf when none waits)."""
        if self.waiting_since is None:
            return math.inf
        return self.waiting_since + self.stall_seconds

    def drop(self, reason: str) -> None:
        if self.dropped or self.closed:
            return
        self.dropped = reason
        self.dropped_bytes = self.pending_bytes
        self.pending.clear()
        self.pending_bytes = 0
        self._interrupt()

    def close(self) -> None:
        self.closed = True
        self.pending.clear()
        self.pending_bytes = 0
        self._interrupt()

    def _interrupt(self) -> None:
        self._wakeup.set()
        if self.wait_scope is not None:
            self.wait_scope.cancel()

    async def wait(self) -> None:
        """Until there is output to take, or the subscriber was dropped or closed."""
        while not (self.pending or self.dropped or self.closed):
            self._wakeup = trio.Event()
            await self._wakeup.wait()


class EventBus:
    def __init__(self, db: Database, retention: int) -> None:
        self.db = db
        self.retention = retention
        self._subs: list[Subscription] = []
        self._since_prune = 0
        #: In-process listeners (waits, tailers) called synchronously for every committed event.
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        at = utcnow()
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO events(at, topic, data) VALUES (?,?,?)",
                            (at, topic, orjson.dumps(data).decode()))
            event = {"seq": cur.lastrowid, "at": at, "topic": topic, "data": data}
            self.db.after_commit(lambda: self._deliver(event))
        self._since_prune += 1
        if self._since_prune >= 500:
            self._since_prune = 0
            self.prune()

    def prune(self) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?", (self.retention,))

    def _deliver(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", event["topic"])
        line: bytes | None = None
        now = 0.0
        for sub in list(self._subs):
            if sub.dropped or sub.closed:  # dropped by its pusher (stalled): forget it now
                self._subs.remove(sub)
                continue
            if not sub.wants(event["topic"]):
                continue
            if line is None:  # encoded once, shared by every subscriber
                line = jsonrpc.encode(jsonrpc.notification(EVENT, event))
                now = trio.current_time()
            if not sub.offer(event["seq"], line, now):
                log.warning("dropping a subscriber that stopped reading: %d bytes pending (limit %d)",
                            sub.dropped_bytes + len(line), sub.max_bytes)
                self._subs.remove(sub)

    def subscribe(self, topics: list[str], *, since: int, max_bytes: int, stall_seconds: float) -> Subscription:
        """A new subscriber to events after ``since`` (the seq the subscribe call answers)."""
        sub = Subscription(tuple(topics), max_bytes, stall_seconds, since)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        sub.close()

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    @property
    def last_seq(self) -> int:
        row = self.db.conn.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def replay(self, since: int, topics: list[str], limit: int) -> dict[str, Any]:
        oldest = self.db.conn.execute("SELECT MIN(seq) FROM events").fetchone()[0]
        rows = self.db.conn.execute(
            "SELECT seq, at, topic, data FROM events WHERE seq > ? ORDER BY seq", (since,))
        events: list[dict[str, Any]] = []
        more = False
        for r in rows:
            if topics and not any(r["topic"].startswith(p) for p in topics):
                continue
            if len(events) >= limit:
                more = True
                break
            events.append({"seq": r["seq"], "at": r["at"], "topic": r["topic"], "data": orjson.loads(r["data"])})
        # Events after `since` that are no longer retained: the client must resynchronise from state.
        gap = oldest is not None and since + 1 < oldest
        return {"events": events, "more": more, "gap": bool(gap), "last_seq": self.last_seq}
