"""worktree.*: the git worktrees maestrod made for sessions (``session spawn --worktree``)."""

from typing import Optional

import attrs

from shared.messages.paging import cursor_field, limit_field
from shared.messages.spec import MethodSpec, doc


@attrs.define
class WorktreeState:
    """How a worktree stands against its base: commits ahead/behind, uncommitted entries; ``checked_at``
    says when git was last asked (refreshed after the agent edits, and on ``worktree.list``/``get``)."""

    ahead: int = 0
    behind: int = 0
    changed: int = 0
    untracked: int = 0
    unmerged: int = 0
    dirty: bool = False
    checked_at: Optional[str] = None
    error: Optional[str] = None


@attrs.define
class Worktree:
    id: str
    session_id: str
    #: Every session that worked in it, oldest first (``--worktree-of`` hands it on).
    session_ids: list[str]
    repo: str
    path: str
    branch: str
    base: str
    base_commit: str
    created_at: str
    removed_at: Optional[str]
    state: WorktreeState = attrs.Factory(WorktreeState)


@attrs.define
class WorktreeList:
    all: bool = attrs.field(default=False, metadata=doc("include removed worktrees"))
    limit: Optional[int] = limit_field()
    cursor: Optional[str] = cursor_field()


@attrs.define
class WorktreeRef:
    id: str = attrs.field(metadata=doc("a session (id, prefix or name) or the worktree's branch"))


@attrs.define
class WorktreeRemove:
    id: str = attrs.field(metadata=doc("a session (id, prefix or name) or the worktree's branch"))
    force: bool = attrs.field(default=False, metadata=doc("remove even with uncommitted or unmerged changes"))
    delete_branch: bool = attrs.field(default=False, metadata=doc("also delete the branch (kept by default)"))


@attrs.define
class WorktreeDiff:
    id: str = attrs.field(metadata=doc("a session (id, prefix or name) or the worktree's branch"))
    stat: bool = attrs.field(default=False, metadata=doc("a summary (git diff --stat) instead of the patch"))


METHODS = [
    MethodSpec("worktree.list", WorktreeList, "The worktrees sessions work in, with ahead/behind and changes."),
    MethodSpec("worktree.get", WorktreeRef, "One worktree, its state freshly read from git."),
    MethodSpec("worktree.diff", WorktreeDiff, "What the worktree changed since its base (commits and edits)."),
    MethodSpec("worktree.remove", WorktreeRemove,
               "Remove a worktree (refused with uncommitted or unmerged changes unless forced); the branch "
               "is kept unless asked."),
]
