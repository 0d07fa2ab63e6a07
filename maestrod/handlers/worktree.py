"""worktree.*: the git worktrees sessions work in (made by ``session.spawn`` with ``worktree``).

The mechanism is :class:`maestrod.worktrees.service.WorktreeService` (``app.worktrees``). Reading is open
to everyone; removing is a change to a session's work: a person may remove any, an agent only the
worktrees of sessions it may stop (its own subtree), the same rule as ``session.stop``.
"""

from __future__ import annotations

from typing import Any

from maestrod import paging, policy
from maestrod.dispatch import Context, handler
from shared.messages.worktree import Worktree, WorktreeDiff, WorktreeList, WorktreeRef, WorktreeRemove

#: The most of a diff one answer carries (the rest is cut, and the answer says so).
DIFF_LIMIT = 4 * 1024 * 1024


@handler("worktree.list")
async def list_(ctx: Context, p: WorktreeList) -> list[Worktree] | dict[str, Any]:
    svc = ctx.app.worktrees
    found = svc.store.list(p.all)
    if paging.paged(p.limit, p.cursor):  # in the store's order; only the page is read from git
        page = paging.slice_page("worktree.list", found, lambda w: (w.created_at, w.id), p.cursor, p.limit,
                                 (str, str))
        page["items"] = [await svc.refresh(wt) for wt in page["items"]]
        return page
    return [await svc.refresh(wt) for wt in found]


@handler("worktree.get")
async def get(ctx: Context, p: WorktreeRef) -> Worktree:
    svc = ctx.app.worktrees
    return await svc.refresh(svc.resolve(p.id))


@handler("worktree.diff")
async def diff(ctx: Context, p: WorktreeDiff) -> dict[str, Any]:
    svc = ctx.app.worktrees
    return await svc.diff(svc.resolve(p.id), p.stat, DIFF_LIMIT)


@handler("worktree.remove")
async def remove(ctx: Context, p: WorktreeRemove) -> dict[str, Any]:
    svc = ctx.app.worktrees
    wt = svc.resolve(p.id)
    policy.check_act(ctx.app.session_store, ctx.session_id, wt.session_id, "stop")
    return await svc.remove(wt, force=p.force, delete_branch=p.delete_branch, actor=ctx.actor)
