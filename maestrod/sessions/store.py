"""SessionStore: the only code that reads or writes the session tables.

``sessions`` (one row per session: identity, family, status, attention), ``session_tasks`` and
``session_prompts`` (the prompt queue and each prompt's fate), and the timeline rows about sessions
(through the :class:`~maestrod.recorder.Recorder`). Everyone else asks it: the live side for status and
prompts, policy for the family tree, mail for scopes, transcripts for paths and names.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from maestrod.recorder import Recorder
from maestrod.store.db import Database, utcnow
from shared import errors
from shared.convert import unstructure
from shared.messages.session import Session

#: Session ids look like ``s-4f2a9c``; a unique prefix with or without ``s-`` is accepted.
SESSION_ID_PREFIX = "s"
_MAX_DEPTH = 10_000  # a guard: parent links cannot form cycles, but a corrupt file must not hang us
#: :class:`Session` fields read as is from the ``sessions`` row (the others are decoded or live facts).
_ROW_FIELDS = tuple(f.name for f in attrs.fields(Session)
                    if f.name not in ("argv", "task_ids", "queued_prompts", "viewers", "bracketed_paste",
                                      "worktree", "rss_bytes", "cpu_percent"))
_CHUNK = 500


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


@attrs.frozen
class LiveFacts:
    """What only the live side knows about a session (not stored)."""

    viewers: int = 0
    bracketed_paste: bool = False


NO_FACTS = LiveFacts()


@attrs.frozen
class NewSession:
    """A session row about to be inserted (see :meth:`SessionStore.insert`)."""

    id: str
    project_id: str
    name: str
    role: str
    parent_id: str | None
    root_id: str
    agent: str
    argv: list[str]
    cwd: str
    env: dict[str, str]
    token_hash: str
    claude_session_id: str | None
    transcript_path: str | None
    rows: int
    cols: int
    task_ids: list[str]


class SessionStore:
    def __init__(self, db: Database, recorder: Recorder) -> None:
        self.db = db
        self.recorder = recorder

    # -- single rows -----------------------------------------------------------------------------------

    def row(self, sid: str) -> sqlite3.Row:
        row: sqlite3.Row | None = self.db.conn.execute("SELECT * FROM sessions WHERE id=?", (sid,)).fetchone()
        if row is None:
            raise errors.not_found("session", sid)
        return row

    def find(self, sid: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.conn.execute("SELECT * FROM sessions WHERE id=?", (sid,)).fetchone()
        return row

    def name(self, sid: str) -> str | None:
        row = self.db.conn.execute("SELECT name FROM sessions WHERE id=?", (sid,)).fetchone()
        return str(row[0]) if row else None

    def describe(self, sid: str | None, *, human: str = "the human") -> str:
        """``session s-4f2a9c (worker-3)``."""
        if sid is None:
            return human
        name = self.name(sid)
        return f"session {sid} ({name})" if name else f"session {sid}"

    def resolve(self, ident: str) -> str:
        """A session id from an id, a name (live sessions win over exited ones), or a unique id prefix."""
        if not ident:
            raise errors.invalid_params(["session: must not be empty"])
        row = self.db.conn.execute("SELECT id FROM sessions WHERE id=?", (ident,)).fetchone()
        if row:
            return str(row[0])
        named = self.db.conn.execute(
            "SELECT id, status FROM sessions WHERE name=? ORDER BY created_at, rowid", (ident,)).fetchall()
        if len(named) == 1:
            return str(named[0]["id"])
        if named:
            live = [r["id"] for r in named if r["status"] != "exited"]
            if len(live) == 1:
                return str(live[0])
            if not live:  # only exited sessions by that name: the newest is meant
                return str(named[-1]["id"])
            raise errors.conflict(
                f"ambiguous session name {ident!r}: matches {', '.join(r['id'] for r in named)}; use an id",
                {"candidates": [r["id"] for r in named]})
        return self.db.resolve("sessions", "session", ident, SESSION_ID_PREFIX)

    def token_lookup(self, token: str) -> str | None:
        """The session whose token this is, while it has not exited: a token dies with its session (also
        across restarts, where a previous daemon's sessions end ``exited`` as ``lost``)."""
        row = self.db.conn.execute("SELECT id FROM sessions WHERE token_hash=? AND status<>'exited'",
                                   (token_hash(token),)).fetchone()
        return str(row[0]) if row else None

    # -- building API objects ------------------------------------------------------------------------

    def build(self, rows: Sequence[sqlite3.Row], facts: Callable[[str], LiveFacts]) -> list[Session]:
        ids = [r["id"] for r in rows]
        tasks: dict[str, list[str]] = {i: [] for i in ids}
        queued: dict[str, int] = {}
        for chunk in _chunks(ids):
            q = ",".join("?" * len(chunk))
            for t in self.db.conn.execute(
                    f"SELECT session_id, task_id FROM session_tasks WHERE session_id IN ({q}) "
                    "ORDER BY updated_at, task_id", chunk):
                tasks[t[0]].append(t[1])
            for t in self.db.conn.execute(
                    f"SELECT session_id, COUNT(*) FROM session_prompts WHERE state='queued' AND session_id "
                    f"IN ({q}) GROUP BY session_id", chunk):
                queued[t[0]] = t[1]
        out = []
        for r in rows:
            live = facts(r["id"])
            out.append(Session(**{k: r[k] for k in _ROW_FIELDS}, argv=json.loads(r["argv"]),
                               task_ids=tasks[r["id"]], queued_prompts=queued.get(r["id"], 0),
                               viewers=live.viewers, bracketed_paste=live.bracketed_paste))
        return out

    def get(self, sid: str, facts: Callable[[str], LiveFacts] = lambda sid: NO_FACTS) -> Session:
        return self.build([self.row(sid)], facts)[0]

    def select(self, *, project_id: str | None = None, statuses: Sequence[str] = (), active: bool = False,
               parent_id: str | None = None, ids: Sequence[str] | None = None) -> list[sqlite3.Row]:
        where: list[str] = []
        args: list[Any] = []
        if project_id is not None:
            where.append("project_id=?")
            args.append(project_id)
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if active:
            where.append("status<>'exited'")
        if parent_id is not None:
            where.append("parent_id=?")
            args.append(parent_id)
        if ids is not None:
            where.append(f"id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        sql = "SELECT * FROM sessions" + (" WHERE " + " AND ".join(where) if where else "")
        return list(self.db.conn.execute(sql + " ORDER BY created_at, id", args).fetchall())

    def unfinished(self) -> list[sqlite3.Row]:
        """Sessions not ``exited`` (at start-up: what a previous daemon left behind)."""
        return list(self.db.conn.execute("SELECT * FROM sessions WHERE status<>'exited'").fetchall())

    def queued_order(self, sids: Sequence[str]) -> dict[str, int]:
        """When each of ``sids`` was last queued for room (its ``session.queued`` timeline row's id: the order
        the governor served them in)."""
        found: dict[str, int] = {}
        for chunk in _chunks(list(sids)):
            q = ",".join("?" * len(chunk))
            found.update((str(r[0]), int(r[1])) for r in self.db.conn.execute(
                f"SELECT subject_id, max(id) FROM timeline WHERE subject_kind='session' AND type='session.queued' "
                f"AND subject_id IN ({q}) GROUP BY subject_id", chunk))
        return found

    def live_transcripts(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.db.conn.execute(
            "SELECT id, transcript_path FROM sessions WHERE status NOT IN ('exited', 'hibernated') "
            "AND transcript_path IS NOT NULL")]

    def live_among(self, ids: Sequence[str], project_id: str | None = None) -> list[str]:
        """``ids`` (once each, in order) that are live sessions (of ``project_id``, if given)."""
        ids = list(dict.fromkeys(ids))
        extra = " AND project_id=?" if project_id else ""
        live: set[str] = set()
        for chunk in _chunks(ids):
            live.update(r[0] for r in self.db.conn.execute(
                f"SELECT id FROM sessions WHERE id IN ({','.join('?' * len(chunk))}) AND status<>'exited'{extra}",
                [*chunk, project_id] if project_id else list(chunk)))
        return [s for s in ids if s in live]

    def has_work(self, sid: str) -> bool:
        """Whether the session has workers or tasks (a worker gets context injected only then)."""
        return bool(self.db.conn.execute(
            "SELECT EXISTS(SELECT 1 FROM sessions WHERE parent_id=?) OR "
            "EXISTS(SELECT 1 FROM session_tasks WHERE session_id=?)", (sid, sid)).fetchone()[0])

    def task_ids(self, sid: str) -> list[str]:
        return [r[0] for r in self.db.conn.execute(
            "SELECT task_id FROM session_tasks WHERE session_id=? ORDER BY updated_at, task_id", (sid,))]

    # -- the family tree (policy's rules read it) -----------------------------------------------------

    def ancestors(self, sid: str) -> list[str]:
        """The coordinator chain of ``sid``, nearest first."""
        return [r[0] for r in self.db.conn.execute(
            "WITH RECURSIVE a(id, depth) AS ("
            " SELECT parent_id, 1 FROM sessions WHERE id=? AND parent_id IS NOT NULL"
            " UNION ALL SELECT s.parent_id, a.depth+1 FROM sessions s JOIN a ON s.id=a.id"
            " WHERE s.parent_id IS NOT NULL AND a.depth < ?)"
            " SELECT id FROM a ORDER BY depth", (sid, _MAX_DEPTH))]

    def descendants(self, sid: str, *, live_only: bool = False) -> list[str]:
        """Every session below ``sid`` (its workers, their workers, ...), shallowest first."""
        sql = ("WITH RECURSIVE d(id, depth) AS ("
               " SELECT id, 1 FROM sessions WHERE parent_id=?"
               " UNION ALL SELECT s.id, d.depth+1 FROM sessions s JOIN d ON s.parent_id=d.id WHERE d.depth < ?)"
               " SELECT d.id FROM d JOIN sessions s ON s.id=d.id")
        if live_only:
            sql += " WHERE s.status<>'exited'"
        sql += " ORDER BY d.depth, s.created_at, s.rowid"
        return [r[0] for r in self.db.conn.execute(sql, (sid, _MAX_DEPTH))]

    def children(self, parent: str | None, *, project_id: str | None = None, live_only: bool = False) -> list[str]:
        """Sessions whose parent is ``parent``; ``None`` means the top-level ones (of ``project_id``)."""
        where = ["parent_id=?"] if parent is not None else ["parent_id IS NULL"]
        args: list[str] = [parent] if parent is not None else []
        if parent is None and project_id is not None:
            where.append("project_id=?")
            args.append(project_id)
        if live_only:
            where.append("status<>'exited'")
        return [r[0] for r in self.db.conn.execute(
            f"SELECT id FROM sessions WHERE {' AND '.join(where)} ORDER BY created_at, rowid", args)]

    def siblings(self, sid: str, *, live_only: bool = False) -> list[str]:
        """Sessions with the same coordinator as ``sid`` (not ``sid`` itself)."""
        row = self.row(sid)
        return [s for s in self.children(row["parent_id"], project_id=row["project_id"], live_only=live_only)
                if s != sid]

    def live_ids(self, project_id: str | None = None) -> list[str]:
        where, args = ["status<>'exited'"], []
        if project_id:
            where.append("project_id=?")
            args.append(project_id)
        return [r[0] for r in self.db.conn.execute(
            f"SELECT id FROM sessions WHERE {' AND '.join(where)} ORDER BY created_at, rowid", args)]

    # -- creating --------------------------------------------------------------------------------------

    def check_name_free(self, project_id: str, name: str) -> None:
        """Names are unique among the live sessions of a project (an exited session's name may be reused)."""
        holder = self.db.conn.execute(
            "SELECT id, status FROM sessions WHERE project_id=? AND name=? AND status<>'exited'",
            (project_id, name)).fetchone()
        if holder is not None:
            raise errors.conflict(
                f"session name {name!r} is taken by live session {holder['id']} ({holder['status']}) in "
                f"project {project_id}; pick another name or stop that session first",
                {"name": name, "holder": holder["id"]})

    def insert(self, c: sqlite3.Connection, new: NewSession, stored_env: dict[str, str], actor: str,
               spawned: dict[str, Any], *, status: str = "spawning") -> None:
        """The session row, its task links and its ``session.spawned`` row, inside the caller's transaction
        (so the first prompt and the directive mail land with it)."""
        self.check_name_free(new.project_id, new.name)
        now = utcnow()
        c.execute(
            "INSERT INTO sessions(id, project_id, name, role, parent_id, root_id, agent, argv, cwd, env, "
            "token_hash, claude_session_id, transcript_path, status, rows, cols, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (new.id, new.project_id, new.name, new.role, new.parent_id, new.root_id, new.agent,
             json.dumps(new.argv), new.cwd, json.dumps(stored_env), new.token_hash, new.claude_session_id,
             new.transcript_path, status, new.rows, new.cols, now, now))
        c.executemany("INSERT INTO session_tasks(session_id, task_id, status, updated_at) VALUES (?,?,?,?)",
                      [(new.id, tid, "assigned", now) for tid in new.task_ids])
        self.recorder.record(actor, "session", new.id, "session.spawned", spawned,
                             event={"actor": actor, "session": unstructure(self.get(new.id))})

    def set_pid(self, sid: str, pid: int, start: int | None = None) -> None:
        """The session's process and its start time (``/proc/<pid>/stat`` field 22: a recycled pid differs)."""
        with self.db.transaction() as c:
            c.execute("UPDATE sessions SET pid=?, pid_start=? WHERE id=?", (pid, start, sid))

    def set_token(self, sid: str, hashed: str | None) -> None:
        """A relaunched process's fresh token (its hash); None: the session has no token (its process is gone,
        e.g. hibernated), so the old one is refused from now on."""
        with self.db.transaction() as c:
            c.execute("UPDATE sessions SET token_hash=? WHERE id=?", (hashed, sid))

    def set_transcript(self, sid: str, claude_session_id: str | None, path: str | None) -> None:
        with self.db.transaction() as c:
            if claude_session_id is not None:
                c.execute("UPDATE sessions SET claude_session_id=? WHERE id=?", (claude_session_id, sid))
            if path is not None:
                c.execute("UPDATE sessions SET transcript_path=? WHERE id=?", (path, sid))

    def set_size(self, sid: str, rows: int, cols: int, actor: str) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE sessions SET rows=?, cols=?, updated_at=? WHERE id=?", (rows, cols, utcnow(), sid))
            self.recorder.record(actor, "session", sid, "session.resized", {"rows": rows, "cols": cols})

    # -- status and attention --------------------------------------------------------------------------

    def write_status(self, sid: str, cur: str, to: str, actor: str, extra: dict[str, Any]) -> None:
        """The status change, its timeline row and its ``session.status`` event; an exited session's queued
        prompts fail with it and its attention is cleared."""
        now = utcnow()
        with self.db.transaction() as c:
            if to == "exited":
                c.execute("UPDATE sessions SET status='exited', exit_reason=?, exit_code=?, exited_at=?, "
                          "updated_at=?, needs_attention=NULL WHERE id=?",
                          (extra.get("exit_reason"), extra.get("exit_code"), now, now, sid))
                c.execute("UPDATE session_prompts SET state='failed' WHERE session_id=? AND state='queued'",
                          (sid,))
            else:
                c.execute("UPDATE sessions SET status=?, updated_at=? WHERE id=?", (to, now, sid))
            r = c.execute("SELECT name, project_id FROM sessions WHERE id=?", (sid,)).fetchone()
            data = {"from": cur, "to": to, **extra}
            self.recorder.record(actor, "session", sid, "session.status", data,
                                 event={"actor": actor, "session_id": sid, "name": r["name"],
                                        "project_id": r["project_id"], **data})

    def attention(self, sid: str) -> str | None:
        row = self.db.conn.execute("SELECT needs_attention FROM sessions WHERE id=?", (sid,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def set_attention(self, sid: str, reason: str | None, actor: str, source: str,
                      extra: dict[str, Any] | None = None) -> bool:
        """``needs_attention`` (None clears it), a timeline row and a ``session.needs_attention`` event;
        nothing when it already says that.  Whether it changed."""
        with self.db.transaction() as c:
            row = c.execute("SELECT needs_attention, name, status FROM sessions WHERE id=?", (sid,)).fetchone()
            if row is None or row["needs_attention"] == reason or (row["status"] == "exited" and reason):
                return False
            c.execute("UPDATE sessions SET needs_attention=?, updated_at=? WHERE id=?", (reason, utcnow(), sid))
            data = {"reason": reason, "needs_attention": reason is not None, "source": source, **(extra or {})}
            self.recorder.record(actor, "session", sid, "session.needs_attention", data,
                                 event={"actor": actor, "session_id": sid, "name": row["name"], **data})
        return True

    # -- prompts ---------------------------------------------------------------------------------------

    def queue_prompt(self, c: sqlite3.Connection, sid: str, text: str, mode: str, source: str, actor: str,
                     now: bool) -> int:
        cur = c.execute(
            "INSERT INTO session_prompts(session_id, sender, text, mode, state, created_at) "
            "VALUES (?,?,?,?, 'queued', ?)", (sid, source, text, mode, utcnow()))
        pid = int(cur.lastrowid or 0)
        self.recorder.record(actor, "session", sid, "session.prompt",
                             {"prompt_id": pid, "source": source, "mode": mode, "chars": len(text), "now": now,
                              "text": text[:200]})
        return pid

    def queued_ahead(self, sid: str, prompt_id: int) -> int:
        return int(self.db.conn.execute(
            "SELECT COUNT(*) FROM session_prompts WHERE session_id=? AND state='queued' AND id<?",
            (sid, prompt_id)).fetchone()[0])

    def queued_count(self, sid: str) -> int:
        return int(self.db.conn.execute(
            "SELECT COUNT(*) FROM session_prompts WHERE session_id=? AND state='queued'", (sid,)).fetchone()[0])

    def next_queued(self, sid: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.conn.execute(
            "SELECT id, text, mode, sender FROM session_prompts WHERE session_id=? AND state='queued' "
            "ORDER BY id LIMIT 1",
            (sid,)).fetchone()
        return row

    def prompt_state(self, prompt_id: int) -> str | None:
        row = self.db.conn.execute("SELECT state FROM session_prompts WHERE id=?", (prompt_id,)).fetchone()
        return None if row is None else str(row[0])

    def set_prompt_held(self, sid: str, why: str | None) -> None:
        """Why the queue's head waits (shown by ``session history`` and ``explain``); no event."""
        with self.db.transaction() as c:
            c.execute("UPDATE session_prompts SET held=? WHERE session_id=? AND state='queued'", (why, sid))

    def mark_delivered(self, prompt_id: int) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE session_prompts SET state='delivered', delivered_at=?, held=NULL WHERE id=?",
                      (utcnow(), prompt_id))

    def mark_failed(self, prompt_id: int) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE session_prompts SET state='failed' WHERE id=?", (prompt_id,))

    def unconfirmed(self, sid: str) -> list[sqlite3.Row]:
        return list(self.db.conn.execute(
            "SELECT id, sender, text FROM session_prompts WHERE session_id=? AND state='delivered' ORDER BY id",
            (sid,)).fetchall())

    def confirm(self, sid: str, prompt_id: int, sender: str, witness: str) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE session_prompts SET state='confirmed', confirmed_at=? WHERE id=? AND state='delivered'",
                      (utcnow(), prompt_id))
            self.recorder.record(sid, "session", sid, "session.prompt_delivered",
                                 {"prompt_id": prompt_id, "source": sender, "witness": witness})

    def prompts(self, sid: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT id, sender, mode, state, held, created_at, delivered_at, confirmed_at, substr(text, 1, 200) "
            "AS text FROM session_prompts WHERE session_id=? ORDER BY id DESC LIMIT ?", (sid, limit)).fetchall()
        return [dict(r) for r in reversed(rows)]

    # -- timeline --------------------------------------------------------------------------------------

    def record(self, actor: str, sid: str, type_: str, data: dict[str, Any] | None = None, *,
               event: dict[str, Any] | None = None) -> None:
        self.recorder.record(actor, "session", sid, type_, data, event=event)

    def history(self, sid: str, limit: int) -> list[dict[str, Any]]:
        return self.recorder.timeline.for_subject("session", sid, limit)

    # -- removing --------------------------------------------------------------------------------------

    def delete(self, c: sqlite3.Connection, sids: Sequence[str]) -> None:
        """Remove exited sessions with their rows (prompts, task links, transcript checkpoints, their
        timeline rows); children keep existing with no parent.  Inside the caller's transaction."""
        for chunk in _chunks(list(sids)):
            q = ",".join("?" * len(chunk))
            c.execute(f"UPDATE sessions SET parent_id=NULL WHERE parent_id IN ({q})", chunk)
            c.execute(f"DELETE FROM transcript_checkpoints WHERE session_id IN ({q})", chunk)
            c.execute(f"DELETE FROM timeline WHERE subject_kind='session' AND subject_id IN ({q})", chunk)
            c.execute(f"DELETE FROM sessions WHERE id IN ({q})", chunk)

    def prunable(self, project_id: str | None, exited_before: str | None) -> list[str]:
        where, args = ["status='exited'"], []
        if project_id:
            where.append("project_id=?")
            args.append(project_id)
        if exited_before:
            where.append("exited_at < ?")
            args.append(exited_before)
        return [r[0] for r in self.db.conn.execute(
            f"SELECT id FROM sessions WHERE {' AND '.join(where)} ORDER BY exited_at, id", args)]

    # -- added for mail/transcripts --------------------------------------------------------------------

    def names(self, sids: Iterable[str]) -> dict[str, str]:
        """{session id: name} of those of ``sids`` that are sessions (mail shows its senders by name)."""
        ids = list(dict.fromkeys(sids))
        out: dict[str, str] = {}
        for chunk in _chunks(ids):
            out.update((r[0], r[1]) for r in self.db.conn.execute(
                f"SELECT id, name FROM sessions WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def task_links(self, sids: Sequence[str]) -> list[tuple[str, str]]:
        """``(session id, task id)`` of every task held by one of ``sids``, by ``updated_at`` then task id."""
        if not sids:
            return []
        q = ",".join("?" * len(sids))
        return [(r[0], r[1]) for r in self.db.conn.execute(
            f"SELECT session_id, task_id FROM session_tasks WHERE session_id IN ({q}) "
            "ORDER BY updated_at, task_id", list(sids))]

    def task_part_statuses(self, tid: str) -> list[str]:
        """The status of every session's part of task ``tid`` (its ``session_tasks`` rows)."""
        return [r[0] for r in self.db.conn.execute("SELECT status FROM session_tasks WHERE task_id=?",
                                                   (tid,))]

    def set_task_part(self, c: sqlite3.Connection, sid: str, tid: str, status: str) -> None:
        """The session's part of task ``tid`` takes ``status`` (the link is made if there was none), inside
        the caller's transaction."""
        c.execute("INSERT INTO session_tasks(session_id, task_id, status, updated_at) VALUES (?,?,?,?) "
                  "ON CONFLICT(session_id, task_id) DO UPDATE SET status=excluded.status, "
                  "updated_at=excluded.updated_at", (sid, tid, status, utcnow()))

    def set_transcript_attention(self, c: sqlite3.Connection, sid: str, reason: str | None, kind: str | None,
                                 previously_written: str | None, *, needs_attention: bool,
                                 actor: str = "system") -> str | None:
        """The transcript's escalation verdict, inside the caller's transaction: ``needs_attention`` takes
        ``reason`` when it says something else; ``reason`` None clears it only while it still holds
        ``previously_written`` (what the transcript wrote last), so a reason someone else wrote (a permission
        prompt, via the hooks) is never cleared here; an exited session's column is left alone.  Either way
        a timeline row and a ``session.needs_attention`` event (source ``transcript``, with the session's
        name).  Returns what the transcript has written now: the next call's ``previously_written``."""
        row = c.execute("SELECT needs_attention, status, name FROM sessions WHERE id=?", (sid,)).fetchone()
        if row is not None and row["status"] != "exited":
            current = row["needs_attention"]
            if reason is not None and current != reason:
                c.execute("UPDATE sessions SET needs_attention=?, updated_at=? WHERE id=?",
                          (reason, utcnow(), sid))
            elif reason is None and current is not None and current == previously_written:
                c.execute("UPDATE sessions SET needs_attention=NULL, updated_at=? WHERE id=?",
                          (utcnow(), sid))
        data = {"reason": reason, "kind": kind, "needs_attention": needs_attention, "source": "transcript"}
        self.recorder.record(actor, "session", sid, "session.needs_attention", data,
                             event={"actor": actor, "session_id": sid,
                                    "name": row["name"] if row is not None else None, **data})
        return reason
