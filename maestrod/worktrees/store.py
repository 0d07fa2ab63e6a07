"""The worktree tables' one owner: which worktree each session works in, and its last known state."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from maestrod.store.db import Database, utcnow
from shared import errors
from shared.convert import structure_params, unstructure
from shared.messages.worktree import Worktree, WorktreeState


class WorktreeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, session_id: str, repo: str, path: str, branch: str, base: str, base_commit: str) -> str:
        wid = self.db.new_id("worktrees", "w")
        now = utcnow()
        with self.db.transaction() as c:
            c.execute("INSERT INTO worktrees (id, session_id, repo, path, branch, base, base_commit, state, "
                      "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (wid, session_id, repo, path, branch, base, base_commit, "{}", now, now))
            c.execute("INSERT INTO worktree_sessions (session_id, worktree_id, created_at) VALUES (?,?,?)",
                      (session_id, wid, now))
        return wid

    def hand_on(self, wid: str, session_id: str) -> None:
        """``--worktree-of``: the worktree's current session becomes ``session_id``."""
        now = utcnow()
        with self.db.transaction() as c:
            c.execute("UPDATE worktrees SET session_id=?, updated_at=? WHERE id=?", (session_id, now, wid))
            c.execute("INSERT INTO worktree_sessions (session_id, worktree_id, created_at) VALUES (?,?,?)",
                      (session_id, wid, now))

    def forget_session(self, session_id: str) -> None:
        """A session that never started (its spawn failed after the worktree was handed on) is not a
        worker of it; the worktree goes back to its previous session."""
        with self.db.transaction() as c:
            row = c.execute("SELECT worktree_id FROM worktree_sessions WHERE session_id=?",
                            (session_id,)).fetchone()
            if row is None:
                return
            c.execute("DELETE FROM worktree_sessions WHERE session_id=?", (session_id,))
            prev = c.execute("SELECT session_id FROM worktree_sessions WHERE worktree_id=? "
                             "ORDER BY created_at DESC, rowid DESC LIMIT 1", (row[0],)).fetchone()
            if prev is None:
                c.execute("DELETE FROM worktrees WHERE id=?", (row[0],))
            else:
                c.execute("UPDATE worktrees SET session_id=? WHERE id=?", (prev[0], row[0]))

    def set_state(self, wid: str, state: WorktreeState) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE worktrees SET state=? WHERE id=?", (json.dumps(unstructure(state)), wid))

    def mark_removed(self, wid: str) -> None:
        now = utcnow()
        with self.db.transaction() as c:
            c.execute("UPDATE worktrees SET removed_at=?, updated_at=? WHERE id=?", (now, now, wid))

    # -- reads ----------------------------------------------------------------------------------------

    def for_session(self, session_id: str) -> Worktree | None:
        row = self.db.conn.execute(
            "SELECT w.* FROM worktree_sessions s JOIN worktrees w ON w.id = s.worktree_id WHERE s.session_id=?",
            (session_id,)).fetchone()
        return None if row is None else self._worktree(row)

    def current_for(self, session_ids: list[str]) -> dict[str, sqlite3.Row]:
        """session id -> the row of the worktree it works in, for many sessions in one query per 500."""
        out: dict[str, sqlite3.Row] = {}
        for i in range(0, len(session_ids), 500):
            chunk = session_ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.conn.execute(
                    "SELECT s.session_id AS sid, w.* FROM worktree_sessions s JOIN worktrees w ON w.id = s.worktree_id"
                    f" WHERE s.session_id IN ({marks})", chunk):
                out[row["sid"]] = row
        return out

    def by_branch(self, repo: str | None, branch: str) -> list[Worktree]:
        rows = self.db.conn.execute(
            "SELECT * FROM worktrees WHERE branch=? AND removed_at IS NULL" + (" AND repo=?" if repo else ""),
            (branch, repo) if repo else (branch,)).fetchall()
        return [self._worktree(r) for r in rows]

    def get(self, wid: str) -> Worktree:
        row = self.db.conn.execute("SELECT * FROM worktrees WHERE id=?", (wid,)).fetchone()
        if row is None:
            raise errors.not_found("worktree", wid)
        return self._worktree(row)

    def list(self, include_removed: bool) -> list[Worktree]:
        rows = self.db.conn.execute(
            "SELECT * FROM worktrees" + ("" if include_removed else " WHERE removed_at IS NULL")
            + " ORDER BY created_at, id").fetchall()
        return [self._worktree(r) for r in rows]

    def live_paths(self) -> set[str]:
        return {r[0] for r in self.db.conn.execute("SELECT path FROM worktrees WHERE removed_at IS NULL")}

    def _worktree(self, r: sqlite3.Row) -> Worktree:
        sids = [s[0] for s in self.db.conn.execute(
            "SELECT session_id FROM worktree_sessions WHERE worktree_id=? ORDER BY created_at, rowid",
            (r["id"],))]
        return Worktree(id=r["id"], session_id=r["session_id"], session_ids=sids, repo=r["repo"], path=r["path"],
                        branch=r["branch"], base=r["base"], base_commit=r["base_commit"],
                        created_at=r["created_at"], removed_at=r["removed_at"],
                        state=state_of(r))


def state_of(row: sqlite3.Row) -> WorktreeState:
    """The cached git state a worktree row holds (JSON; ``{}`` before git was first asked)."""
    raw: dict[str, Any] = json.loads(row["state"] or "{}")
    return structure_params(raw, WorktreeState) if raw else WorktreeState()
