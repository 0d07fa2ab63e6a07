from typing import Literal

import attrs

from shared.messages.spec import MethodSpec, between, doc
from shared.messages.system import NoParams


@attrs.define
class Subscribe:
    topics: list[str] = attrs.field(factory=list, metadata=doc('topic prefixes, e.g. ["task."]; empty = all'))


@attrs.define
class Replay:
    since: int = attrs.field(metadata=doc("last seq the client saw; events after it are returned"))
    topics: list[str] = attrs.field(factory=list)
    limit: int = attrs.field(default=1000, validator=between(1, 10_000),
                             metadata=doc("at most this many (1..10000)"))


#: The notification a subscriber gets just before the daemon drops it (then the connection is closed).
DROPPED = "events.dropped"
#: The notification that carries one event (``params``: seq, at, topic, data).
EVENT = "event"


@attrs.define
class Dropped:
    """``events.dropped``: why a subscriber is being dropped and where to resume.

    Only a subscriber that stops reading is dropped: its pending output passed ``[events]
    subscriber_max_bytes`` (``reason: "behind"``), or the connection took no byte of it for
    ``subscriber_stall_seconds`` (``"stalled"``). Every event up to ``since`` was written to the connection
    before this notification; reconnect, ``events.subscribe`` again, then ``events.replay {since}`` to get
    the rest with no gap and no repeat."""

    reason: Literal["behind", "stalled"]
    since: int = attrs.field(metadata=doc("the last seq written to this connection; replay from it"))
    pending_bytes: int = attrs.field(metadata=doc("output that was waiting for the client, discarded"))
    message: str = ""


METHODS = [
    MethodSpec("events.subscribe", Subscribe,
               "Push every matching change on this connection as `event` notifications with a seq."),
    MethodSpec("events.unsubscribe", NoParams, "Stop pushing events."),
    MethodSpec("events.replay", Replay, "Events after seq `since` (bounded retention; see README)."),
]
