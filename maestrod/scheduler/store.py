"""The run tables' one owner (``task_runs``, ``task_run_assignments``): what each run was asked to do, and
every task it gave a worker, so a run goes on after a daemon restart."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from maestrod.store.db import Database, utcnow
from maestrod.scheduler.core import Assignment
from shared import errors

#: A run that is still doing something.
ACTIVE = ("running", "stopping")


class RunStore:
    def __init__(self, db: Database, runs_dir: Path) -> None:
        self.db = db
        #: ``<runs_dir>/<run id>/env.json`` (0600): the workers' ``--env`` values, which may be secrets, are
        #: kept out of the database (as a session's are).
        self.runs_dir = runs_dir

    def create(self, project_id: str, root_task_id: str | None, workers: int, options: dict[str, Any],
               started_by: str) -> str:
        rid = self.db.new_id("task_runs", "r")
        now = utcnow()
        with self.db.transaction() as c:
            c.execute("INSERT INTO task_runs (id, project_id, root_task_id, workers, options, state, started_by, "
                      "reason, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (rid, project_id, root_task_id, workers, json.dumps(options), "running", started_by, "",
                       now, now))
        return rid

    def save_env(self, rid: str, env: dict[str, str]) -> None:
        folder = self.runs_dir / rid
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(folder / "env.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(env, f)

    def env(self, rid: str) -> dict[str, str]:
        try:
            data = json.loads((self.runs_dir / rid / "env.json").read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def row(self, rid: str) -> sqlite3.Row:
        r = self.db.conn.execute("SELECT * FROM task_runs WHERE id=?", (rid,)).fetchone()
        if r is None:
            raise errors.RpcError(errors.NOT_FOUND, f"no run {rid}", {"run": rid})
        return r  # type: ignore[no-any-return]

    def resolve(self, ident: str) -> str:
        rows = self.db.conn.execute("SELECT id FROM task_runs WHERE id=? OR id LIKE ? ESCAPE '\\' LIMIT 2",
                                    (ident, ident.replace("\\", "\\\\").replace("%", "\\%")
                                     .replace("_", "\\_") + "%")).fetchall()
        exact = [r[0] for r in rows if r[0] == ident]
        if exact:
            return str(exact[0])
        if len(rows) == 1:
            return str(rows[0][0])
        if not rows:
            raise errors.RpcError(errors.NOT_FOUND, f"no run {ident!r}", {"run": ident})
        raise errors.invalid_params([f"run: {ident!r} is ambiguous: give more of the id"])

    def active(self, project_id: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM task_runs WHERE state IN ('running','stopping')"
        args: tuple[Any, ...] = ()
        if project_id is not None:
            sql += " AND project_id=?"
            args = (project_id,)
        return list(self.db.conn.execute(sql + " ORDER BY created_at, rowid", args).fetchall())

    def recent(self, project_id: str | None, limit: int) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM task_runs", []
        if project_id is not None:
            sql += " WHERE project_id=?"
            args.append(project_id)
        return list(self.db.conn.execute(sql + " ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                          (*args, limit)).fetchall())

    def set_state(self, rid: str, state: str, reason: str) -> None:
        now = utcnow()
        with self.db.transaction() as c:
            c.execute("UPDATE task_runs SET state=?, reason=?, updated_at=?, finished_at=? WHERE id=?",
                      (state, reason, now, None if state in ACTIVE else now, rid))

    # -- assignments ----------------------------------------------------------------------------------

    def assign(self, rid: str, task_id: str, session_id: str, attempt: int) -> None:
        now = utcnow()
        with self.db.transaction() as c:
            c.execute("INSERT INTO task_run_assignments (run_id, task_id, attempt, session_id, state, reason, "
                      "started_at) VALUES (?,?,?,?,?,?,?)", (rid, task_id, attempt, session_id, "running", "", now))

    def settle(self, rid: str, a: Assignment, state: str, reason: str) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE task_run_assignments SET state=?, reason=?, ended_at=? WHERE run_id=? AND "
                      "task_id=? AND attempt=?", (state, reason, utcnow(), rid, a.task_id, a.attempt))

    def hand_over(self, rid: str, a: Assignment, successor: str, reason: str) -> int:
        """The assignment moves to ``successor`` (a context hand-off): the old row is ``handed_off`` with whom
        to, a new attempt row is running; its attempt number."""
        attempt = self.next_attempt(rid, a.task_id)
        with self.db.transaction() as c:
            c.execute("UPDATE task_run_assignments SET state='handed_off', reason=?, handed_to=?, ended_at=? "
                      "WHERE run_id=? AND task_id=? AND attempt=?",
                      (reason, successor, utcnow(), rid, a.task_id, a.attempt))
            self.assign(rid, a.task_id, successor, attempt)
        return attempt

    def successor_of(self, session_id: str) -> str | None:
        r = self.db.conn.execute("SELECT handed_to FROM task_run_assignments WHERE session_id=? AND "
                                 "handed_to IS NOT NULL LIMIT 1", (session_id,)).fetchone()
        return None if r is None else str(r[0])

    def assignment_of(self, session_id: str) -> tuple[str, Assignment] | None:
        """The running assignment of a worker of an active run."""
        r = self.db.conn.execute(
            "SELECT a.run_id, a.task_id, a.attempt FROM task_run_assignments a JOIN task_runs r ON r.id=a.run_id "
            "WHERE a.session_id=? AND a.state='running' AND r.state IN ('running','stopping') LIMIT 1",
            (session_id,)).fetchone()
        return None if r is None else (str(r[0]), Assignment(str(r[1]), session_id, int(r[2])))

    def running(self, rid: str) -> list[Assignment]:
        return [Assignment(r[0], r[1], r[2]) for r in self.db.conn.execute(
            "SELECT task_id, session_id, attempt FROM task_run_assignments WHERE run_id=? AND state='running' "
            "ORDER BY started_at, rowid", (rid,))]

    def assignments(self, rid: str) -> list[sqlite3.Row]:
        return list(self.db.conn.execute("SELECT * FROM task_run_assignments WHERE run_id=? "
                                         "ORDER BY started_at, rowid", (rid,)).fetchall())

    def failures(self, rid: str) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.conn.execute(
            "SELECT task_id, count(*) FROM task_run_assignments WHERE run_id=? AND state='failed' "
            "GROUP BY task_id", (rid,))}

    def next_attempt(self, rid: str, task_id: str) -> int:
        r = self.db.conn.execute("SELECT max(attempt) FROM task_run_assignments WHERE run_id=? AND task_id=?",
                                 (rid, task_id)).fetchone()
        return 1 if r is None or r[0] is None else int(r[0]) + 1

    def sessions(self, rid: str) -> list[str]:
        """Every session the run spawned, oldest first."""
        return [r[0] for r in self.db.conn.execute(
            "SELECT session_id FROM task_run_assignments WHERE run_id=? GROUP BY session_id "
            "ORDER BY min(started_at), min(rowid)", (rid,))]

    def run_of_session(self, session_id: str) -> str | None:
        r = self.db.conn.execute("SELECT run_id FROM task_run_assignments WHERE session_id=? LIMIT 1",
                                 (session_id,)).fetchone()
        return None if r is None else str(r[0])
