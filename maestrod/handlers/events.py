"""events.*: subscribe to pushed change events, replay missed ones."""

from __future__ import annotations

from typing import Any

from maestrod.dispatch import Context, handler
from shared import errors
from shared.messages.events import Replay, Subscribe


@handler("events.subscribe")
async def subscribe(ctx: Context, p: Subscribe) -> dict[str, Any]:
    conn = ctx.conn
    if conn is None:
        raise errors.RpcError(errors.UNAVAILABLE, "events.subscribe needs a connection")
    if conn.subscription is not None:
        ctx.app.bus.unsubscribe(conn.subscription)
    last_seq = ctx.app.bus.last_seq
    cfg = ctx.app.config.events
    sub = ctx.app.bus.subscribe(p.topics, since=last_seq, max_bytes=cfg.subscriber_max_bytes,
                                stall_seconds=cfg.subscriber_stall_seconds)
    conn.subscription = sub
    conn.start_pusher(sub)
    # Every event after last_seq is pushed: a client resuming calls events.replay {since: its own} up to it.
    return {"subscribed": p.topics, "last_seq": last_seq}


@handler("events.unsubscribe")
async def unsubscribe(ctx: Context, p: Any) -> dict[str, Any]:
    conn = ctx.conn
    if conn is not None and conn.subscription is not None:
        ctx.app.bus.unsubscribe(conn.subscription)
        conn.subscription = None
        return {"unsubscribed": True}
    return {"unsubscribed": False}


@handler("events.replay")
async def replay(ctx: Context, p: Replay) -> dict[str, Any]:
    if p.limit < 1 or p.limit > 10_000:
        raise errors.invalid_params([f"limit: must be between 1 and 10000, got {p.limit}"])
    if p.since < 0:
        raise errors.invalid_params([f"since: must be >= 0, got {p.since}"])
    return ctx.app.bus.replay(p.since, p.topics, p.limit)
