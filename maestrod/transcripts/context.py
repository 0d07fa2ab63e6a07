"""The coordinator's passive awareness: ``<coordinator_context>`` with its task board and its workers' digests.

Why: a coordinator should see what its workers are doing on every turn without spending a tool call (or
its context window) on raw transcripts.  The block is rendered within a token budget (estimated at 4
characters per token) and reaches the model through the Claude Code hooks (:class:`CoordinatorContexts`,
plugged into the daemon's ``HookExtensions`` by the transcript service):

* ``UserPromptSubmit``: printed on every coordinator prompt (:meth:`CoordinatorContexts.user_prompt_context`);
* ``PostToolUse``: added as ``additionalContext`` only when a worker did something new since the last
  injection into that coordinator (:meth:`CoordinatorContexts.post_tool_context`), so a long tool loop is
  not flooded.

Workers get nothing unless ``[context] inject_workers = true`` (then a worker with tasks or workers of its
own gets the same block about them).

What is on the board (decided here, documented in the README): the tasks assigned to the coordinator
(``session_tasks``) and their subtasks, plus the tasks assigned to its workers, each with the workers holding
it; if that is empty, the open tasks of the coordinator's project.  Archived tasks are left out.  Rows are
ordered by urgency (blocked, in progress, in review, todo, then finished ones) so trimming cuts the least
useful lines first.

Live activity: one compact digest per worker (sessions whose ``parent_id`` is the coordinator), those
needing attention first, then running ones, then exited ones (header and last steps only).  Over budget,
the *oldest* entries across all workers go first, then running-tool lines, then board rows, then exited
workers' headers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import tzinfo
from typing import Any, Protocol

import attrs

from maestrod.config import ContextSettings, DigestSettings
from maestrod.sessions.hooks import HookExtensions
from maestrod.sessions.store import SessionStore
from maestrod.store.tasks import TaskStore
from shared.digest import DigestWindow, SessionDigest, entry_line
from shared.transcript.events import parse_timestamp

log = logging.getLogger("maestrod.transcripts.context")

CHARS_PER_TOKEN = 4
#: The task board gets at most this share of the budget while worker entries compete for the rest.
BOARD_SHARE = 0.35
#: Entries considered per exited worker (a running one gets ``[digest] window``).
EXITED_ENTRIES = 2
#: Exited workers shown at all (newest first).
MAX_EXITED = 6
STATUS_RANK = {"blocked": 0, "in_progress": 1, "in_review": 2, "todo": 3, "completed": 4, "cancelled": 5}
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


class DigestSource(Protocol):
    """Where the workers' digests come from (the transcript service is one): a session's digest, the
    ``[digest]`` settings (``window``: entries per running worker) and the clock of the digests' time
    rules."""

    settings: DigestSettings
    clock: Callable[[], float]

    def digest(self, session_id: str) -> SessionDigest | None: ...


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


@attrs.define
class CoordinatorContext:
    """The rendered block and what went into it (``marks``: per worker, the tools-entry total shown)."""

    session_id: str
    text: str
    tokens: int
    budget_tokens: int
    tasks: int
    workers: int
    trimmed_entries: int
    marks: dict[str, tuple[int, bool]]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.session_id, "text": self.text, "tokens": self.tokens,
                "budget_tokens": self.budget_tokens, "tasks": self.tasks, "workers": self.workers,
                "trimmed_entries": self.trimmed_entries}


def _one_line(text: str, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@attrs.define(eq=False)
class _Worker:
    id: str
    header: str
    lines: list[tuple[float, str]]  # (epoch, line) per entry, oldest first
    running: list[str]
    total: int
    rank: tuple[int, str]
    exited: bool
    mark: tuple[int, bool]
    dropped: int = 0


def _board(sessions: SessionStore, task_store: TaskStore, coordinator: Any, workers: list[Any]) -> list[str]:
    """Task board rows, most urgent first (see the module docstring for the selection)."""
    holders: dict[str, list[str]] = {}
    worker_names = {w["id"]: w["name"] for w in workers}
    ids: list[str] = []
    for tid in sessions.task_ids(coordinator["id"]):
        ids.append(tid)
        ids.extend(t.id for t in task_store.descendants(tid))
    for sid, tid in sessions.task_links(list(worker_names)):
        ids.append(tid)
        holders.setdefault(tid, []).append(worker_names[sid])
    ids = list(dict.fromkeys(ids))
    tasks = task_store.get_many(ids) if ids else [
        t for t in task_store.list(project_id=coordinator["project_id"])
        if t.status not in ("completed", "cancelled", "archived")]
    tasks = [t for t in tasks if t.status != "archived"]
    if not tasks:
        return []
    tasks.sort(key=lambda t: (STATUS_RANK.get(t.status, 9), PRIORITY_RANK.get(t.priority, 9), t.created_at))
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.status] = counts.get(t.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: STATUS_RANK.get(
        kv[0], 9)))
    rows = [f"{len(tasks)} task{'s' if len(tasks) != 1 else ''}: {summary}"]
    for t in tasks:
        held = f" — {', '.join(holders[t.id])}" if t.id in holders else ""
        prio = f" !{t.priority}" if t.priority in ("high", "critical") else ""
        rows.append(f"{t.id} [{t.status}]{prio} {_one_line(t.title, 80)}{held}")
    return rows


def _worker(digests: DigestSource, row: Any, now: float, tz: tzinfo | None,
            branch_note: Callable[[str], str | None]) -> _Worker:
    digest = digests.digest(row["id"]) if row["agent"] == "claude" else None
    exited = row["status"] == "exited"
    parts = [f"## {row['name']} ({row['id']})"]
    if exited:
        parts.append(f"exited ({row['exit_reason'] or '?'})")
    else:
        parts.append(row["status"])
    note = branch_note(row["id"])
    if note:
        parts.append(note)
    window: DigestWindow | None = None
    attention = row["needs_attention"]
    if digest is not None:
        window = digest.window("tools", EXITED_ENTRIES if exited else digests.settings.window, now)
        if not exited and window.state != row["status"]:
            parts.append(f"transcript: {window.state}")
        if window.needs_attention:
            attention = window.attention_reason
        elif window.stuck:
            parts.append("stuck")
    if attention and not exited:
        parts.append(f"⚠ NEEDS ATTENTION: {_one_line(attention, 140)}")
    lines: list[tuple[float, str]] = []
    running: list[str] = []
    total = 0
    own_agent = None
    if window is not None:
        total = window.total_entries
        own_agent = window.agent
        for entry in window.entries:
            lines.append((parse_timestamp(entry.timestamp) or 0.0, entry_line(entry, own_agent, tz)))
        if not exited:
            running = [f"… {summary}" for summary in window.running]
            if window.thinking_since:
                running.append("… [THINKING]")
    elif row["agent"] != "claude":
        parts.append("(no transcript: runs a command)")
    rank = (0 if attention and not exited else 2 if exited else 1, row["created_at"] or "")
    return _Worker(row["id"], " · ".join(parts), lines, running, total, rank, exited, (total, bool(attention)))


def _no_branch(session_id: str) -> str | None:
    return None


def render(sessions: SessionStore, task_store: TaskStore, digests: DigestSource, coordinator_id: str,
           budget_tokens: int = 1500, *, now: float | None = None, tz: tzinfo | None = None,
           branch_note: Callable[[str], str | None] = _no_branch) -> CoordinatorContext:
    """Render ``<coordinator_context>`` for ``coordinator_id`` within ``budget_tokens``; ``branch_note``
    gives a worker's git branch and how far it is ahead (``spawn --worktree``), shown in its header."""
    coordinator = sessions.row(coordinator_id)
    now = digests.clock() if now is None else now
    rows = sessions.select(parent_id=coordinator_id)
    live = [r for r in rows if r["status"] != "exited"]
    exited = sorted((r for r in rows if r["status"] == "exited"), key=lambda r: r["exited_at"] or "",
                    reverse=True)[:MAX_EXITED]
    workers = sorted((_worker(digests, r, now, tz, branch_note) for r in live + exited), key=lambda w: w.rank)
    board = _board(sessions, task_store, coordinator, list(rows))
    budget_chars = max(budget_tokens, 1) * CHARS_PER_TOKEN

    def assemble() -> str:
        out = ["<coordinator_context>", "<task_board>"]
        out.extend(board_rows if board_rows else ["(no tasks)"])
        if board_hidden:
            out.append(f"(+{board_hidden} more tasks)")
        out.append("</task_board>")
        out.append("<live_activity>")
        shown = [w for w in workers if not w.exited or w.id not in hidden_exited]
        if not shown:
            out.append("(no workers)")
        for w in shown:
            out.append(w.header + (f" · {len(w.lines)}/{w.total} steps" if w.total else ""))
            out.extend(line for _ts, line in w.lines)
            out.extend(w.running)
        if hidden_exited:
            out.append(f"(+{len(hidden_exited)} exited workers)")
        out.append("</live_activity>")
        out.append("</coordinator_context>")
        return "\n".join(out)

    board_rows = list(board)
    board_hidden = 0
    hidden_exited: set[str] = set()
    # The board may not take more than its share while worker entries still compete for space.
    board_cap = int(budget_chars * BOARD_SHARE)
    while len(board_rows) > 1 and sum(len(r) + 1 for r in board_rows) > board_cap:
        board_rows.pop()
        board_hidden += 1
    text = assemble()
    trimmed = 0
    # Oldest entries first, across every worker (within a worker, file order).
    queue = iter(sorted(((ts, i, w) for w in workers for i, (ts, _line) in enumerate(w.lines)),
                        key=lambda item: (item[0], item[1])))
    while len(text) > budget_chars:
        excess = len(text) - budget_chars
        progressed = False
        for _ts, _i, w in queue:
            _ts0, line = w.lines.pop(0)
            excess -= len(line) + 1
            trimmed += 1
            progressed = True
            if excess <= 0:
                break
        text = assemble()
        if not progressed:
            break
    if len(text) > budget_chars:
        for w in workers:
            w.running = []
        text = assemble()
    while len(text) > budget_chars and len(board_rows) > 1:
        board_rows.pop()
        board_hidden += 1
        text = assemble()
    for w in reversed(workers):
        if len(text) <= budget_chars:
            break
        if w.exited:
            hidden_exited.add(w.id)
            text = assemble()
    if len(text) > budget_chars:
        # Still too big (a very large team): keep the closing tags, cut the middle.
        tail = "\n…\n</live_activity>\n</coordinator_context>"
        text = text[: max(0, budget_chars - len(tail))] + tail
    marks = {w.id: w.mark for w in workers}
    return CoordinatorContext(coordinator_id, text, estimate_tokens(text), budget_tokens,
                              max(len(board) - 1, 0), len(workers), trimmed, marks)


# --------------------------------------------------------------------------------------------------------
# Hook context providers


class CoordinatorContexts:
    """The block for one daemon: :meth:`render` with the daemon's stores and digests, and the two hook
    context providers (:meth:`register`), which remember what each coordinator was last shown."""

    def __init__(self, sessions: SessionStore, task_store: TaskStore, digests: DigestSource,
                 settings: ContextSettings) -> None:
        #: A worker's branch note (set by whoever knows worktrees; see :func:`render`).
        self.branch_note: Callable[[str], str | None] = _no_branch
        self.sessions = sessions
        self.task_store = task_store
        self.digests = digests
        #: ``[context]``: read at every call (a changed setting applies at once).
        self.settings = settings
        #: coordinator id -> per worker (tools entries, needs attention) at the last context injection
        self.injections: dict[str, dict[str, tuple[int, bool]]] = {}

    def render(self, coordinator_id: str, budget_tokens: int = 1500, *, now: float | None = None,
               tz: tzinfo | None = None) -> CoordinatorContext:
        """:func:`render` for ``coordinator_id``."""
        return render(self.sessions, self.task_store, self.digests, coordinator_id, budget_tokens,
                      now=now, tz=tz, branch_note=self.branch_note)

    def _wants_context(self, session_id: str) -> bool:
        row = self.sessions.find(session_id)
        if row is None:
            return False
        if row["role"] == "coordinator":
            return True
        if not self.settings.inject_workers:
            return False
        return self.sessions.has_work(session_id)

    def user_prompt_context(self, session_id: str) -> str:
        """What the UserPromptSubmit hook prints: the block for coordinators, ``""`` for workers (unless
        ``[context] inject_workers``)."""
        if not self._wants_context(session_id):
            return ""
        ctx = self.render(session_id, self.settings.budget_tokens)
        self.injections[session_id] = ctx.marks
        return ctx.text

    def post_tool_context(self, session_id: str) -> str:
        """What PostToolUse adds: the block again, but only when a worker has new entries (or its attention
        flag changed) since the last injection into this session; else ``""``."""
        if not self.settings.post_tool_use or not self._wants_context(session_id):
            return ""
        ctx = self.render(session_id, self.settings.budget_tokens)
        last = self.injections.get(session_id, {})
        fresh = any(mark != last.get(wid) and (mark[0] > 0 or mark[1] or wid in last)
                    for wid, mark in ctx.marks.items())
        if not fresh:
            return ""
        self.injections[session_id] = ctx.marks
        return ctx.text

    def register(self, hook_extensions: HookExtensions) -> None:
        """Plug the two providers into the hooks (called once, by the transcript service)."""
        hook_extensions.add_context_provider("UserPromptSubmit",
                                             lambda sid, _payload: self.user_prompt_context(sid))
        hook_extensions.add_context_provider("PostToolUse", lambda sid, _payload: self.post_tool_context(sid))
