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


METHODS = [
    MethodSpec("events.subscribe", Subscribe,
               "Push every matching change on this connection as `event` notifications with a seq."),
    MethodSpec("events.unsubscribe", NoParams, "Stop pushing events."),
    MethodSpec("events.replay", Replay, "Events after seq `since` (bounded retention; see README)."),
]
