"""session.digest, session.digests, session.usage, context.coordinator: transcript digests (issue 4).

The mechanism is :class:`maestrod.transcripts.service.TranscriptService` (``app.transcripts``); these
handlers resolve ids, apply the read policy (a session may read itself, its descendants and its siblings;
the human everything) and shape results.  Following a digest is done with ``events.subscribe`` on
``session.digest`` (see ``shared/messages/digest.py``), not with a long-running method.
"""

from __future__ import annotations

from typing import Any

from maestrod.dispatch import Context, handler
from maestrod.policy import check_act
from shared import errors
from shared.digest import SessionDigest
from shared.messages.digest import (
    ContextCoordinatorParams,
    SessionDigestParams,
    SessionDigestsParams,
    SessionUsageParams,
)
from shared.transcript import TokenUsage, estimate_cost_usd


def _row(ctx: Context, sid: str) -> Any:
    return ctx.app.session_store.find(sid)


def _identity(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "session_id": row["id"], "name": row["name"], "status": row["status"],
            "role": row["role"], "parent_id": row["parent_id"]}


async def _digest(ctx: Context, row: Any) -> SessionDigest:
    digest = await ctx.app.transcripts.ensure(row["id"])
    if digest is None:
        why = ("it runs a command, not an agent" if row["agent"] not in ("claude", "codex") else
               "its transcript has not been written yet" if row["transcript_path"] else
               "no rollout yet (Codex writes it with the first prompt)" if row["agent"] == "codex" else
               "no transcript path is known for it")
        raise errors.conflict(f"session {row['id']} ({row['name']}) has no transcript digest: {why}",
                              {"session": row["id"]})
    return digest


def _window(ctx: Context, row: Any, digest: SessionDigest, mode: str, last: int | None) -> dict[str, Any]:
    app = ctx.app
    window = digest.window(mode, app.config.digest.window if last is None else last, app.transcripts.clock())
    out = window.to_dict()
    out["claude_session_id"] = out.pop("session_id")
    out.update(_identity(row))
    if not out["needs_attention"] and row["needs_attention"] and row["status"] != "exited":
        # a reason from the hooks (a permission prompt): the session needs someone all the same
        out["needs_attention"] = True
        out["attention_reason"] = row["needs_attention"]
    out["stats"] = digest.parser.stats.to_dict()
    return out


@handler("session.digest")
async def session_digest(ctx: Context, p: SessionDigestParams) -> dict[str, Any]:
    store = ctx.app.session_store
    sid = store.resolve(p.id)
    check_act(store, ctx.session_id, sid, "read")
    row = _row(ctx, sid)
    return _window(ctx, row, await _digest(ctx, row), p.mode, p.last)


@handler("session.digests")
async def session_digests(ctx: Context, p: SessionDigestsParams) -> dict[str, Any]:
    store = ctx.app.session_store
    ids = [store.resolve(ident) for ident in p.ids]
    if p.my_workers:
        if ctx.session_id is None:
            raise errors.invalid_params([("my_workers is relative to the calling session: call it from inside "
                                          "a session (with MAESTRO_SESSION_TOKEN)")])
        ids.extend(r["id"] for r in store.select(parent_id=ctx.session_id))
    if not ids and not p.my_workers:
        if ctx.session_id is not None:
            raise errors.invalid_params(["give ids, or my_workers (the sessions you spawned)"])
        # A person asking for digests without naming sessions: every live one (what they would look at).
        ids = [r["id"] for r in store.select(active=True)]
    out = []
    for sid in dict.fromkeys(ids):
        check_act(store, ctx.session_id, sid, "read")
        row = _row(ctx, sid)
        digest = await ctx.app.transcripts.ensure(sid)
        if digest is None:
            out.append({**_identity(row), "needs_attention": bool(row["needs_attention"]),
                        "attention_reason": row["needs_attention"], "digest": None})
        else:
            out.append(_window(ctx, row, digest, p.mode, p.last))
    worktrees = ctx.app.worktrees.summaries([entry["id"] for entry in out])
    for entry in out:
        entry["worktree"] = worktrees.get(entry["id"])
    return {"sessions": out}


@handler("session.usage")
async def session_usage(ctx: Context, p: SessionUsageParams) -> dict[str, Any]:
    store = ctx.app.session_store
    sid = store.resolve(p.id)
    check_act(store, ctx.session_id, sid, "read")
    row = _row(ctx, sid)
    digest = await _digest(ctx, row)
    by_model = digest.usage_by_model()
    total = sum(by_model.values(), TokenUsage())
    cost, unpriced = estimate_cost_usd(by_model)
    return {**_identity(row), "usage": total.to_dict(), "cost_usd": round(cost, 6),
            "reported_cost_usd": digest.parser.reported_cost_usd, "unpriced_models": unpriced,
            "by_model": {model: {**usage.to_dict(), "cost_usd": round(estimate_cost_usd({model: usage})[0], 6)}
                         for model, usage in sorted(by_model.items())}}


@handler("context.coordinator")
async def context_coordinator(ctx: Context, p: ContextCoordinatorParams) -> dict[str, Any]:
    app = ctx.app
    if p.id is None:
        if ctx.session_id is None:
            raise errors.invalid_params(["id: which coordinator? (the caller is not a session)"])
        sid = ctx.session_id
    else:
        sid = app.session_store.resolve(p.id)
        check_act(app.session_store, ctx.session_id, sid, "read")
    # Workers watched lazily (rows written by something else than the session manager) are read first.
    watched = app.transcripts.watched()
    for wid in app.session_store.children(sid, live_only=True):
        if wid not in watched:
            await app.transcripts.ensure(wid)
    return app.transcripts.context.render(sid, p.budget_tokens).to_dict()
