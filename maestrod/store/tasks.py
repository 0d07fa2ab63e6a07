"""Tasks: hierarchy (parent/children), dependencies with enforcement, status times."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence
from typing import Any

from maestrod.store.db import Database, utcnow
from shared import errors
from shared.messages.task import Task

#: Entering these statuses requires every dependency to be completed.
GATED_STATUSES = frozenset({"in_progress", "completed"})


class TaskStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def resolve(self, ident: str) -> str:
        return self.db.resolve("tasks", "task", ident, "t")

    # -- reads -------------------------------------------------------------------------------

    def _deps(self, ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i: [] for i in ids}
        if not ids:
            return out
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start:chunk_start + 500]
            q = ",".join("?" * len(chunk))
            for r in self.db.conn.execute(
                    f"SELECT task_id, depends_on FROM task_deps WHERE task_id IN ({q}) ORDER BY depends_on",
                    chunk):
                out[r[0]].append(r[1])
        return out

    def _build(self, rows: list[sqlite3.Row]) -> list[Task]:
        deps = self._deps([r["id"] for r in rows])
        return [Task(id=r["id"], project_id=r["project_id"], title=r["title"], description=r["description"],
                     status=r["status"], priority=r["priority"], parent_id=r["parent_id"],
                     depends_on=deps[r["id"]], created_at=r["created_at"], updated_at=r["updated_at"],
                     started_at=r["started_at"], completed_at=r["completed_at"]) for r in rows]

    def get(self, tid: str) -> Task:
        rows = self.db.conn.execute("SELECT * FROM tasks WHERE id=?", (tid,)).fetchall()
        if not rows:
            raise errors.not_found("task", tid)
        return self._build(rows)[0]

    def get_many(self, ids: list[str]) -> list[Task]:
        if not ids:
            return []
        q = ",".join("?" * len(ids))
        rows = self.db.conn.execute(f"SELECT * FROM tasks WHERE id IN ({q})", ids).fetchall()
        by_id = {t.id: t for t in self._build(rows)}
        return [by_id[i] for i in ids if i in by_id]

    # Below this method, ``list`` in an annotation means this method (class scope), so the methods
    # after it spell the builtin ``builtins.list``; the name stays because it is the RPC's verb.
    def list(self, project_id: str | None = None, statuses: Sequence[str] | None = None,
             priorities: Sequence[str] | None = None, parent_id: str | None = None,
             roots_only: bool = False) -> list[Task]:
        where, args = [], []
        if project_id:
            where.append("project_id=?")
            args.append(project_id)
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if priorities:
            where.append(f"priority IN ({','.join('?' * len(priorities))})")
            args.extend(priorities)
        if parent_id:
            where.append("parent_id=?")
            args.append(parent_id)
        elif roots_only:
            where.append("parent_id IS NULL")
        sql = "SELECT * FROM tasks" + (" WHERE " + " AND ".join(where) if where else "")
        sql += (" ORDER BY CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2"
                " ELSE 3 END, created_at, rowid")
        return self._build(self.db.conn.execute(sql, args).fetchall())

    def descendants(self, tid: str) -> builtins.list[Task]:
        """Every task below ``tid``, shallowest first (so reversed is safe deletion order)."""
        rows = self.db.conn.execute(
            "WITH RECURSIVE d(id, depth) AS (SELECT id, 1 FROM tasks WHERE parent_id=? "
            "UNION ALL SELECT t.id, d.depth+1 FROM tasks t JOIN d ON t.parent_id=d.id) "
            "SELECT tasks.* FROM tasks JOIN d ON d.id=tasks.id ORDER BY d.depth, tasks.created_at, tasks.rowid",
            (tid,)).fetchall()
        return self._build(rows)

    def children(self, tid: str) -> builtins.list[Task]:
        rows = self.db.conn.execute("SELECT * FROM tasks WHERE parent_id=? ORDER BY created_at, rowid",
                                    (tid,)).fetchall()
        return self._build(rows)

    @staticmethod
    def as_tree(tasks: builtins.list[Task]) -> builtins.list[Task]:
        """Nest ``tasks`` under their parents; a task whose parent is not in the list is a root."""
        by_id = {t.id: t for t in tasks}
        for t in tasks:
            t.children = []
        roots = []
        for t in tasks:
            parent = by_id.get(t.parent_id) if t.parent_id else None
            if parent is not None:
                assert parent.children is not None
                parent.children.append(t)
            else:
                roots.append(t)
        return roots

    def blocking(self, tid: str) -> builtins.list[tuple[str, str, str]]:
        """Dependencies of ``tid`` that are not completed: (id, title, status)."""
        return [(r[0], r[1], r[2]) for r in self.db.conn.execute(
            "SELECT t.id, t.title, t.status FROM task_deps d JOIN tasks t ON t.id=d.depends_on "
            "WHERE d.task_id=? AND t.status<>'completed' ORDER BY t.id", (tid,))]

    def ready(self, project_id: str | None) -> builtins.list[Task]:
        sql = ("SELECT * FROM tasks t WHERE t.status='todo' AND NOT EXISTS ("
               "SELECT 1 FROM task_deps d JOIN tasks u ON u.id=d.depends_on "
               "WHERE d.task_id=t.id AND u.status<>'completed')")
        args: list[Any] = []
        if project_id:
            sql += " AND t.project_id=?"
            args.append(project_id)
        sql += (" ORDER BY CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2"
                " ELSE 3 END, created_at, rowid")
        return self._build(self.db.conn.execute(sql, args).fetchall())

    def dependents(self, tid: str) -> builtins.list[str]:
        return [r[0] for r in self.db.conn.execute("SELECT task_id FROM task_deps WHERE depends_on=?", (tid,))]

    # -- checks ------------------------------------------------------------------------------

    def _would_cycle(self, task_id: str, dep_id: str) -> bool:
        """True if ``task_id`` is reachable from ``dep_id`` along depends-on edges."""
        if task_id == dep_id:
            return True
        row = self.db.conn.execute(
            "WITH RECURSIVE r(id) AS (SELECT ? UNION SELECT d.depends_on FROM task_deps d JOIN r "
            "ON d.task_id=r.id) SELECT 1 FROM r WHERE id=? LIMIT 1", (dep_id, task_id)).fetchone()
        return row is not None

    def _parent_would_cycle(self, task_id: str, parent_id: str) -> bool:
        row = self.db.conn.execute(
            "WITH RECURSIVE a(id) AS (SELECT ? UNION SELECT t.parent_id FROM tasks t JOIN a ON t.id=a.id "
            "WHERE t.parent_id IS NOT NULL) SELECT 1 FROM a WHERE id=? LIMIT 1",
            (parent_id, task_id)).fetchone()
        return row is not None

    def check_can_enter(self, tid: str, status: str) -> None:
        if status not in GATED_STATUSES:
            return
        blockers = self.blocking(tid)
        if blockers:
            names = ", ".join(f"{i} ({title!r}, {st})" for i, title, st in blockers)
            raise errors.conflict(
                f"task {tid} cannot enter {status}: waiting for dependencies that are not completed: {names}",
                {"blocking": [{"id": i, "title": title, "status": st} for i, title, st in blockers]})

    # -- writes ------------------------------------------------------------------------------

    def create(self, project_id: str, title: str, description: str, priority: str, status: str,
               parent_id: str | None, depends_on: builtins.list[str]) -> Task:
        with self.db.transaction() as c:
            if parent_id:
                prow = c.execute("SELECT project_id FROM tasks WHERE id=?", (parent_id,)).fetchone()
                if prow["project_id"] != project_id:
                    raise errors.conflict(f"parent {parent_id} belongs to another project")
            tid = self.db.new_id("tasks", "t")
            now = utcnow()
            c.execute("INSERT INTO tasks(id, project_id, parent_id, title, description, status, priority, "
                      "created_at, updated_at, started_at, completed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (tid, project_id, parent_id, title, description, status, priority, now, now,
                       now if status == "in_progress" else None, now if status == "completed" else None))
            for dep in dict.fromkeys(depends_on):
                c.execute("INSERT INTO task_deps VALUES (?,?)", (tid, dep))
            self.check_can_enter(tid, status)
        return self.get(tid)

    def set_status(self, tid: str, status: str) -> tuple[str, Task]:
        with self.db.transaction() as c:
            old = self.get(tid)
            if old.status == status:
                return old.status, old
            self.check_can_enter(tid, status)
            now = utcnow()
            started = old.started_at or (now if status == "in_progress" else None)
            completed = now if status == "completed" else None
            c.execute("UPDATE tasks SET status=?, started_at=?, completed_at=?, updated_at=? WHERE id=?",
                      (status, started, completed, now, tid))
        return old.status, self.get(tid)

    def update_fields(self, tid: str, changes: dict[str, Any]) -> None:
        if not changes:
            return
        with self.db.transaction() as c:
            if "parent_id" in changes and changes["parent_id"]:
                parent = changes["parent_id"]
                if self._parent_would_cycle(tid, parent):
                    raise errors.conflict(f"making {parent} the parent of {tid} would create a cycle")
                prow = c.execute("SELECT project_id FROM tasks WHERE id=?", (parent,)).fetchone()
                own = c.execute("SELECT project_id FROM tasks WHERE id=?", (tid,)).fetchone()
                if prow["project_id"] != own["project_id"]:
                    raise errors.conflict(f"parent {parent} belongs to another project")
            sets = ", ".join(f"{k}=?" for k in changes)
            c.execute(f"UPDATE tasks SET {sets}, updated_at=? WHERE id=?", (*changes.values(), utcnow(), tid))

    def change_deps(self, tid: str, add: builtins.list[str], remove: builtins.list[str]) -> None:
        with self.db.transaction() as c:
            for dep in remove:
                c.execute("DELETE FROM task_deps WHERE task_id=? AND depends_on=?", (tid, dep))
            for dep in dict.fromkeys(add):
                if self._would_cycle(tid, dep):
                    raise errors.conflict(f"{tid} depending on {dep} would create a cycle",
                                          {"task": tid, "depends_on": dep})
                c.execute("INSERT OR IGNORE INTO task_deps VALUES (?,?)", (tid, dep))
            c.execute("UPDATE tasks SET updated_at=? WHERE id=?", (utcnow(), tid))

    def delete(self, ids: builtins.list[str]) -> None:
        """Delete ``ids`` (deepest first, so parents never dangle)."""
        with self.db.transaction() as c:
            for tid in ids:
                c.execute("DELETE FROM tasks WHERE id=?", (tid,))
