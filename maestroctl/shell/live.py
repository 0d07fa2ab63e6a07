"""What the shell knows about the daemon, kept current by events: a pure state machine (no I/O, no clock).

The feed (:mod:`.feed`) loads a snapshot, then applies every event in ``seq`` order; the toolbar and the
completer only read.  Applying an event says which lists the completer should fetch again (a new task's id
is not in the event that announces a task change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from maestroctl.output import safe

#: The kinds of live names the completer offers, each fetched by one method (see :mod:`.feed`).
KINDS = ("sessions", "tasks", "projects", "mail", "templates")
#: The topics the feed subscribes to: what the toolbar shows and what changes a completion list.
TOPICS = ["session.status", "session.spawned", "session.needs_attention", "session.deleted",
          "task.", "project.", "mail."]


@dataclass
class LiveSession:
    id: str
    name: str
    status: str
    attention: str | None = None


@dataclass
class Live:
    #: Sessions that have not exited, by id, in the order they were first seen.
    sessions: dict[str, LiveSession] = field(default_factory=dict)
    #: Completion words per kind: word -> a short description shown beside it.
    words: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    #: The last event applied (None until the first snapshot).
    seq: int | None = None
    connected: bool = False
    #: Why the daemon cannot be reached (shown in the toolbar), None while connected.
    down_reason: str | None = "connecting"

    # -- snapshot -------------------------------------------------------------------------------------

    def load_sessions(self, rows: list[dict[str, Any]]) -> None:
        self.sessions = {r["id"]: LiveSession(r["id"], r["name"], r["status"], r.get("needs_attention"))
                         for r in rows if r.get("status") != "exited"}
        self.words["sessions"] = _session_words(rows)

    def load(self, kind: str, rows: list[dict[str, Any]]) -> None:
        """A fresh list for one completion kind (``sessions`` also resets the toolbar)."""
        if kind == "sessions":
            self.load_sessions(rows)
        elif kind == "tasks":
            self.words["tasks"] = {r["id"]: f"{r.get('status', '')} {r.get('title', '')}" for r in rows}
        elif kind == "projects":
            words = {r["id"]: r.get("name", "") for r in rows}
            words.update({r["name"]: r["id"] for r in rows if r.get("name")})
            self.words["projects"] = words
        elif kind == "mail":
            self.words["mail"] = {r["id"]: f"{r.get('from_name') or r.get('from', '')}: {r.get('subject', '')}"
                                  for r in rows}
        elif kind == "templates":
            self.words["templates"] = {r["name"]: r.get("description", r.get("role", "")) for r in rows}

    # -- connection -----------------------------------------------------------------------------------

    def up(self) -> None:
        self.connected, self.down_reason = True, None

    def down(self, reason: str) -> None:
        self.connected, self.down_reason = False, reason

    # -- events ---------------------------------------------------------------------------------------

    def apply(self, event: dict[str, Any]) -> set[str]:
        """Apply one pushed or replayed event (older than what was applied: ignored).  The completion
        kinds to fetch again."""
        seq = event.get("seq")
        if isinstance(seq, int):
            if self.seq is not None and seq <= self.seq:
                return set()
            self.seq = seq
        topic = str(event.get("topic", ""))
        data = event.get("data") or {}
        if topic == "session.spawned":
            s = data.get("session") or {}
            if s.get("id") and s.get("status") != "exited":
                self.sessions[s["id"]] = LiveSession(s["id"], s.get("name", s["id"]), s.get("status", "unknown"),
                                                     s.get("needs_attention"))
                self.words["sessions"].update(_session_words([s]))
            return set()
        if topic == "session.status":
            sid = data.get("session_id")
            to = data.get("to")
            if not sid or not to:
                return set()
            if to == "exited":
                self.sessions.pop(sid, None)
                return set()
            s = self.sessions.get(sid)
            if s is None:  # spawned before our snapshot's events were kept: learn it from the event
                s = self.sessions[sid] = LiveSession(sid, data.get("name") or sid, to)
                self.words["sessions"].update(_session_words([{"id": sid, "name": s.name, "status": to}]))
            s.status = to
            return set()
        if topic == "session.needs_attention":
            s = self.sessions.get(data.get("session_id", ""))
            if s is not None:
                s.attention = data.get("reason") if data.get("needs_attention", True) else None
            return set()
        if topic == "session.deleted":
            return {"sessions"}
        if topic.startswith("task."):
            return {"tasks"}
        if topic.startswith("project."):
            return {"projects"}
        if topic.startswith("mail."):
            return {"mail"}
        return set()

    # -- the toolbar ----------------------------------------------------------------------------------

    def toolbar(self, socket: str, running: str | None = None) -> list[tuple[str, str]]:
        """prompt_toolkit formatted text: (style, text) pairs.  Names and reasons come from agents, so they
        go through :func:`safe` (no control character reaches the terminal)."""
        out: list[tuple[str, str]] = []
        if running:
            out.append(("class:toolbar.running", f" running: {safe(running)} (Ctrl-C cancels) "))
            out.append(("", " "))
        if not self.connected:
            reason = self.down_reason or "disconnected"
            if reason == "connecting":
                out.append(("class:toolbar.down", f" connecting to maestrod at {safe(socket)} "))
            else:
                out.append(("class:toolbar.down", f" maestrod unreachable ({safe(reason)}): reconnecting "))
            if self.sessions:
                out.append(("", "  last known:"))
        if not self.sessions and self.connected:
            out.append(("class:toolbar", " no live sessions"))
        # Sessions that need a person come first: they are why the toolbar exists.
        ordered = sorted(self.sessions.values(), key=lambda s: s.attention is None)
        for s in ordered:
            out.append(("", " "))
            if s.attention:
                out.append(("class:toolbar.attention", f" {safe(s.name)} {s.status}: {safe(s.attention)} "))
            else:
                out.append((f"class:toolbar.status.{s.status}", f" {safe(s.name)} {s.status} "))
        return out


def _session_words(rows: list[dict[str, Any]]) -> dict[str, str]:
    words: dict[str, str] = {}
    for r in rows:
        words[r["id"]] = f"{r.get('name', '')} {r.get('status', '')}"
        if r.get("name"):
            words.setdefault(r["name"], f"{r['id']} {r.get('status', '')}")
    return words


def items(result: Any) -> list[dict[str, Any]]:
    """The rows of a list method's result: a bare array, or an object holding one (a page)."""
    if isinstance(result, list):
        return [r for r in result if isinstance(r, dict)]
    if isinstance(result, dict):
        for value in result.values():
            if isinstance(value, list):
                return [r for r in value if isinstance(r, dict)]
    return []
