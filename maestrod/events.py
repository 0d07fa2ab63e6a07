"""The event bus: every change is a numbered event, kept for replay and pushed to subscribers.

Events are rows in the store's ``events`` table, written in the same
transaction as the change they describe, so ``seq`` is monotonic across
daemon restarts and a change that rolled back was never announced.
Retention is bounded (``[events] retention``, default the newest 10,000), see README.

Subscribers get events through a bounded buffer each. Publishing never
blocks: a subscriber whose buffer is full is dropped (its connection is
closed), and every other subscriber is unaffected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs
import orjson
import trio

from maestrod.store.db import Database, utcnow

log = logging.getLogger("maestrod.events")


@attrs.define(eq=False)
class Subscription:
    topics: tuple[str, ...]
    send: trio.MemorySendChannel[dict[str, Any]]
    on_overflow: Callable[[], None]
    dropped: bool = False

    def wants(self, topic: str) -> bool:
        return not self.topics or any(topic.startswith(p) for p in self.topics)


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
        for sub in list(self._subs):
            if sub.dropped or not sub.wants(event["topic"]):
                continue
            try:
                sub.send.send_nowait(event)
            except trio.WouldBlock:
                log.warning("dropping a subscriber that stopped reading (buffer of %d events full)",
                            sub.send.statistics().max_buffer_size)
                sub.dropped = True
                self._subs.remove(sub)
                sub.on_overflow()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subs.remove(sub)

    def subscribe(self, topics: list[str], on_overflow: Callable[[], None],
                  buffer: int) -> tuple[Subscription, trio.MemoryReceiveChannel[dict[str, Any]]]:
        send, recv = trio.open_memory_channel[dict[str, Any]](buffer)
        sub = Subscription(tuple(topics), send, on_overflow)
        self._subs.append(sub)
        return sub, recv

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        sub.send.close()

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
