"""session.*: spawn agents in PTYs the daemon owns; status, screen, output, input, prompts, stop, attach.

The mechanism is :class:`maestrod.sessions.manager.SessionManager` (``app.sessions``); these
handlers resolve ids, apply the policy, pick the actor and shape results.

Policy (:mod:`maestrod.policy`; the human may do everything): an agent acting on another session
needs ``read`` for its screen, output and attach stream; ``prompt`` for prompts, raw input,
interrupt and resize (all of them type into its terminal); ``stop`` / ``kill`` (its own subtree
only). Metadata (``get``, ``list``, ``wait``) is open to every session, like ``session list``.
Spawning is checked by the manager (only coordinators spawn).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from maestrod import policy
from maestrod.dispatch import Context, handler
from shared import errors
from shared.messages.session import (
    Session,
    SessionAttach,
    SessionInput,
    SessionList,
    SessionOutput,
    SessionPrompt,
    SessionRef,
    SessionResize,
    SessionSpawn,
    SessionStop,
    SessionWait,
)


def _sid(ctx: Context, ident: str, action: policy.Action | None = None) -> str:
    """The session id for ``ident``; with ``action``, refused (FORBIDDEN) unless the caller may do it."""
    sid = ctx.app.sessions.resolve(ident)
    if action is not None:
        policy.check_act(ctx.app.db, ctx.session_id, sid, action)
    return sid


@handler("session.spawn")
async def spawn(ctx: Context, p: SessionSpawn) -> Session:
    return await ctx.app.sessions.spawn(p, ctx.actor, ctx.session_id)


@handler("session.list")
async def list_(ctx: Context, p: SessionList) -> list[Session]:
    return ctx.app.sessions.list(p, ctx.session_id)


@handler("session.get")
async def get(ctx: Context, p: SessionRef) -> Session:
    return ctx.app.sessions.get(_sid(ctx, p.id))


@handler("session.screen")
async def screen(ctx: Context, p: SessionRef) -> dict[str, Any]:
    return await ctx.app.sessions.screen(_sid(ctx, p.id, "read"))


@handler("session.output")
async def output(ctx: Context, p: SessionOutput) -> dict[str, Any]:
    return ctx.app.sessions.output(_sid(ctx, p.id, "read"), p.offset, p.limit)


@handler("session.input")
async def input_(ctx: Context, p: SessionInput) -> dict[str, Any]:
    if (p.text is None) == (p.data is None):
        raise errors.invalid_params(["give exactly one of text (keys as UTF-8) or data (base64)"])
    if p.text is not None:
        data = p.text.encode()
    else:
        try:
            data = base64.b64decode(p.data or "", validate=True)
        except (binascii.Error, ValueError):
            raise errors.invalid_params(["data: not valid base64"]) from None
    if not data:
        raise errors.invalid_params(["nothing to type"])
    sid = _sid(ctx, p.id, "prompt")
    mgr = ctx.app.sessions
    # An attached viewer's keystrokes are covered by its attach row in the timeline.
    n = await mgr.input(sid, data, ctx.actor, record=not mgr.attached_on(ctx.conn, sid))
    return {"id": sid, "bytes": n}


@handler("session.resize")
async def resize(ctx: Context, p: SessionResize) -> dict[str, Any]:
    sid = _sid(ctx, p.id, "prompt")
    await ctx.app.sessions.resize(sid, p.rows, p.cols, ctx.actor)
    return {"id": sid, "rows": p.rows, "cols": p.cols}


@handler("session.interrupt")
async def interrupt(ctx: Context, p: SessionRef) -> dict[str, Any]:
    sid = _sid(ctx, p.id, "prompt")
    return {"id": sid, "sent": await ctx.app.sessions.interrupt(sid, ctx.actor)}


@handler("session.prompt")
async def prompt(ctx: Context, p: SessionPrompt) -> dict[str, Any]:
    return await ctx.app.sessions.prompt(_sid(ctx, p.id, "prompt"), p.message, p.mode, p.now, ctx.actor)


@handler("session.stop")
async def stop(ctx: Context, p: SessionStop) -> Session:
    return await ctx.app.sessions.stop(_sid(ctx, p.id, "stop"), ctx.actor, wait=p.wait)


@handler("session.kill")
async def kill(ctx: Context, p: SessionStop) -> Session:
    return await ctx.app.sessions.stop(_sid(ctx, p.id, "kill"), ctx.actor, kill=True, wait=p.wait)


@handler("session.attach")
async def attach(ctx: Context, p: SessionAttach) -> dict[str, Any]:
    if ctx.conn is None:
        raise errors.RpcError(errors.UNAVAILABLE, "session.attach needs a connection")
    if (p.rows is None) != (p.cols is None):
        raise errors.invalid_params(["give both rows and cols, or neither"])
    sid = _sid(ctx, p.id, "read")  # the stream; keys go through session.input (prompt)
    if p.rows is not None:
        policy.check_act(ctx.app.db, ctx.session_id, sid, "prompt")  # it resizes the terminal
    reason = await ctx.app.sessions.attach(ctx.conn, sid, p.rows, p.cols, ctx.actor)
    return {"id": sid, "ended": reason}


@handler("session.detach")
async def detach(ctx: Context, p: SessionRef) -> dict[str, Any]:
    if ctx.conn is None:
        return {"id": p.id, "detached": 0}
    sid = _sid(ctx, p.id)
    return {"id": sid, "detached": ctx.app.sessions.detach(ctx.conn, sid)}


@handler("session.wait")
async def wait(ctx: Context, p: SessionWait) -> dict[str, Any]:
    if not p.ids:
        raise errors.invalid_params(["ids: give at least one session"])
    if p.timeout is not None and (not math.isfinite(p.timeout) or p.timeout < 0):
        raise errors.invalid_params([f"timeout: must be a number of seconds >= 0, got {p.timeout}"])
    mgr = ctx.app.sessions
    sids = list(dict.fromkeys(_sid(ctx, ident) for ident in p.ids))
    if ctx.conn is None:
        return await mgr.wait(sids, p.until, p.timeout)
    with ctx.conn.cancel_when_gone():
        return await mgr.wait(sids, p.until, p.timeout)
    return mgr.wait_state(sids, p.until, False)  # the client went away: nobody reads this
