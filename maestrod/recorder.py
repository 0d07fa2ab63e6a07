"""The timeline's one writer: an audit row and its event, in one transaction.

Every store that changes something people may ask about later (who did what, when) records it here;
the row lands in ``timeline`` and the matching event is published on the bus in the same transaction,
so a change that rolled back is neither recorded nor announced.
"""

from __future__ import annotations

from typing import Any

from maestrod.events import EventBus
from maestrod.store.db import Database
from maestrod.store.timeline import TimelineStore


class Recorder:
    def __init__(self, db: Database, timeline: TimelineStore, bus: EventBus) -> None:
        self.db = db
        self.timeline = timeline
        self.bus = bus

    def record(self, actor: str, subject_kind: str, subject_id: str, type_: str,
               data: dict[str, Any] | None = None, *, topic: str | None = None,
               event: dict[str, Any] | None = None) -> None:
        """Append an audit row and publish the matching event (``event`` replaces the default payload:
        the actor, ``<kind>_id`` and ``data``)."""
        with self.db.transaction():
            self.timeline.append(actor, subject_kind, subject_id, type_, data)
            self.bus.publish(topic or type_, event if event is not None else
                             {"actor": actor, f"{subject_kind}_id": subject_id, **(data or {})})

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        """An event with no timeline row (progress that is not an audit fact, e.g. a digest update)."""
        self.bus.publish(topic, data)
