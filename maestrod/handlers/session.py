"""session.*: spawn agents in PTYs the daemon owns; status, screen, output, input, prompts, stop, attach.

The mechanism is :class:`maestrod.sessions.manager.SessionManager` (``app.sessions``); these
handlers resolve ids, apply the policy, pick the actor and shape results.

Policy (:mod:`maestrod.policy`; the human may do everything): an agent acting on another session
needs ``read`` for its screen, output and attach stream; ``prompt`` for prompts, raw input,
interrupt and resize (all of them type into its terminal); ``stop`` / ``kill`` (its own subtree
only; ``hibernate`` and ``wake`` follow the same rule). Metadata (``get``, ``list``, ``wait``) is open to
every session, like ``session list``.
Spawning is checked by the manager (only coordinators spawn).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import math
from typing import Any

import attrs

from maestrod import paging, policy
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
from shared.messages.session import SessionHistory, SessionPrune, parse_duration  # housekeeping, at the end
from shared.messages.session import SessionWatchScreen  # the screen model, at the end


def _sid(ctx: Context, ident: str, action: policy.Action | None = None) -> str:
    """The session id for ``ident``; with ``action``, refused (FORBIDDEN) unless the caller may do it."""
    sid = ctx.app.sessions.resolve(ident)
    if action is not None:
        policy.check_act(ctx.app.session_store, ctx.session_id, sid, action)
    return sid


@handler("session.spawn")
async def spawn(ctx: Context, p: SessionSpawn) -> Session:
    if not ctx.is_human:
        ctx.app.project_scope.check(ctx.session_id, ctx.app.projects.resolve(p.project), "write",
                                    f"spawn session {p.name!r}")
    if p.worktree or p.worktree_of is not None:
        async def start(q: SessionSpawn) -> Session:
            return await ctx.app.sessions.spawn(q, ctx.actor, ctx.session_id)

        return _with_worktree(ctx, await ctx.app.worktrees.spawn(p, start, ctx.actor))
    return await ctx.app.sessions.spawn(p, ctx.actor, ctx.session_id)


def _with_worktree(ctx: Context, s: Session) -> Session:
    return _with_facts(ctx, [s])[0]


def _with_facts(ctx: Context, sessions: list[Session]) -> list[Session]:
    """``session.get``/``list`` show the worktree a session works in (its last known state; one query for the
    whole list), and the resident memory and CPU of its process tree."""
    summaries = ctx.app.worktrees.summaries([s.id for s in sessions])
    out = []
    for s in sessions:
        summary = summaries.get(s.id)
        s = s if summary is None else attrs.evolve(s, worktree=summary)
        usage = ctx.app.process_trees.usage(s.pid) if s.status not in ("exited", "hibernated", "queued") else None
        out.append(s if usage is None else attrs.evolve(s, rss_bytes=usage.rss_bytes, cpu_percent=usage.cpu_percent))
    return out


def _readable_sessions(ctx: Context, p: SessionList, found: list[Session]) -> list[Session]:
    """An agent lists the sessions of the projects it may read (its own unless `[policy]` grants more), and
    the ones it spawned wherever they run."""
    scope = ctx.app.project_scope
    if p.project:
        scope.check(ctx.session_id, ctx.app.projects.resolve(p.project), "read", "list sessions")
    readable = {proj.id for proj in ctx.app.projects.list() if scope.may(ctx.session_id, proj.id, "read")}
    below = set(ctx.app.session_store.descendants(ctx.session_id)) if ctx.session_id else set()
    return [s for s in found if s.project_id in readable or s.id in below]


@handler("session.list")
async def list_(ctx: Context, p: SessionList) -> list[Session] | dict[str, Any]:
    found = ctx.app.sessions.list(p, ctx.session_id)
    if not ctx.is_human:
        found = _readable_sessions(ctx, p, found)
    if paging.paged(p.limit, p.cursor):  # in the list's own order: created_at, then id
        page = paging.slice_page("session.list", found, lambda s: (s.created_at, s.id), p.cursor, p.limit,
                                 (str, str))
        page["items"] = _with_facts(ctx, page["items"])
        return page
    return _with_facts(ctx, found)


@handler("session.get")
async def get(ctx: Context, p: SessionRef) -> Session:
    return _with_worktree(ctx, ctx.app.sessions.get(_sid(ctx, p.id)))


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


@handler("session.hibernate")
async def hibernate(ctx: Context, p: SessionRef) -> Session:
    return await ctx.app.sessions.hibernate(_sid(ctx, p.id, "stop"), ctx.actor)


@handler("session.wake")
async def wake(ctx: Context, p: SessionRef) -> Session:
    return await ctx.app.sessions.wake(_sid(ctx, p.id, "stop"), ctx.actor)


@handler("session.attach")
async def attach(ctx: Context, p: SessionAttach) -> dict[str, Any]:
    if ctx.conn is None:
        raise errors.RpcError(errors.UNAVAILABLE, "session.attach needs a connection")
    if (p.rows is None) != (p.cols is None):
        raise errors.invalid_params(["give both rows and cols, or neither"])
    sid = _sid(ctx, p.id, "read")  # the stream; keys go through session.input (prompt)
    if p.rows is not None:
        policy.check_act(ctx.app.session_store, ctx.session_id, sid, "prompt")  # it resizes the terminal
    reason = await ctx.app.sessions.attach(ctx.conn, sid, p.rows, p.cols, ctx.actor, since=p.since)
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


# -- housekeeping and inspection: delete, prune, history, explain ----------------------------------------
#
# These read and remove session rows through ``app.session_store`` (the only code that touches the session
# tables).  Only exited sessions are removed; the live side then forgets them (``sessions.forget``).  The
# removal is recorded once per project (``session.deleted``, subject kind ``project``): the sessions' own
# timeline rows go with them.  An agent may remove only exited sessions below it (its own subtree).


def _resolve(ctx: Context, ident: str, action: policy.Action | None = None) -> str:
    """The session id for ``ident`` (id, unique prefix or name); with ``action``, refused unless allowed."""
    store = ctx.app.session_store
    sid = store.resolve(ident)
    if action is not None:
        policy.check_act(store, ctx.session_id, sid, action)
    return sid


def _removed(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "project_id": row["project_id"],
            "exit_reason": row["exit_reason"], "exit_code": row["exit_code"], "exited_at": row["exited_at"]}


def _remove(ctx: Context, sids: list[str], why: dict[str, Any]) -> dict[str, Any]:
    """Delete exited sessions ``sids`` with their rows and record it on their projects, in one transaction;
    then the live side forgets them.  ``{"count", "deleted": [{id, name, project_id, exit_reason, ...}]}``."""
    app = ctx.app
    store = app.session_store
    removed: list[dict[str, Any]] = []
    with app.db.transaction() as c:
        rows = [r for i in range(0, len(sids), 500) for r in store.select(ids=sids[i:i + 500])]
        live = [r for r in rows if r["status"] != "exited"]
        if live:  # checked inside the transaction: nothing is removed while it runs
            first = live[0]
            raise errors.conflict(
                f"session {first['id']} ({first['name']}) is {first['status']}: only exited sessions can be "
                f"deleted; stop it first (`maestroctl session stop {first['id']}`)",
                {"session": first["id"], "name": first["name"], "status": first["status"]})
        removed = [_removed(r) for r in rows]
        if removed:
            store.delete(c, [r["id"] for r in removed])
        by_project: dict[str, list[dict[str, Any]]] = {}
        for gone in removed:
            by_project.setdefault(gone["project_id"], []).append({"id": gone["id"], "name": gone["name"]})
        for project_id, listed in by_project.items():
            app.record(ctx.actor, "project", project_id, "session.deleted",
                       {"count": len(listed), "sessions": listed, **why})
    for gone in removed:
        app.sessions.forget(gone["id"])
    return {"count": len(removed), "deleted": removed}


@handler("session.delete")
async def delete(ctx: Context, p: SessionRef) -> dict[str, Any]:
    sid = _resolve(ctx, p.id, "delete")
    kept = await ctx.app.worktrees.with_changes([sid])
    if kept:
        raise errors.conflict(f"session {sid} is kept: {kept[sid]} (`maestroctl worktree remove {sid}` "
                              "once that work is merged, or with --force)", {"session": sid, "kept": kept[sid]})
    return _remove(ctx, [sid], {"how": "delete"})


@handler("session.prune")
async def prune(ctx: Context, p: SessionPrune) -> dict[str, Any]:
    app = ctx.app
    project_id = app.projects.resolve(p.project) if p.project is not None else None
    before = None
    if p.older_than is not None:
        cutoff = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=parse_duration(p.older_than))
        before = cutoff.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # the format of utcnow(): sorts as text
    sids = app.session_store.prunable(project_id, before)
    if not policy.is_human(ctx.session_id):
        assert ctx.session_id is not None
        mine = set(app.session_store.descendants(ctx.session_id))
        sids = [s for s in sids if s in mine]
    kept = await app.worktrees.with_changes(sids)
    result = _remove(ctx, [s for s in sids if s not in kept], {"how": "prune", "older_than": p.older_than})
    return {**result, "kept": [{"id": s, "why": why} for s, why in kept.items()], "project_id": project_id, "older_than": p.older_than, "exited_before": before}


@handler("session.history")
async def history(ctx: Context, p: SessionHistory) -> dict[str, Any]:
    store = ctx.app.session_store
    sid = _resolve(ctx, p.id, "read")
    return {"id": sid, "name": store.name(sid), "entries": store.history(sid, p.limit),
            "prompts": store.prompts(sid, p.limit)}


@handler("session.explain")
async def explain(ctx: Context, p: SessionRef) -> dict[str, Any]:
    return ctx.app.sessions.explain(_resolve(ctx, p.id, "read"))


# -- the screen model (the dashboard's live terminal) -------------------------------------------------------


@handler("session.screen_model")
async def screen_model(ctx: Context, p: SessionRef) -> dict[str, Any]:
    return await ctx.app.sessions.screen_model(_sid(ctx, p.id, "read"))


@handler("session.watch_screen")
async def watch_screen(ctx: Context, p: SessionWatchScreen) -> dict[str, Any]:
    if ctx.conn is None:
        raise errors.RpcError(errors.UNAVAILABLE, "session.watch_screen needs a connection")
    return await ctx.app.sessions.watch_screen(ctx.conn, _sid(ctx, p.id, "read"), p.max_rate)


@handler("session.unwatch_screen")
async def unwatch_screen(ctx: Context, p: SessionRef) -> dict[str, Any]:
    if ctx.conn is None:
        return {"id": p.id, "unwatched": 0}
    sid = _sid(ctx, p.id)
    return {"id": sid, "unwatched": ctx.app.sessions.unwatch_screen(ctx.conn, sid)}
