"""Projects: a name, a working directory, a description."""

from __future__ import annotations

import builtins
import sqlite3
from typing import Any

from maestrod.store.db import Database, utcnow
from shared import errors
from shared.messages.project import Project


def _row(r: sqlite3.Row) -> Project:
    return Project(id=r["id"], name=r["name"], dir=r["dir"], description=r["description"],
                   created_at=r["created_at"], updated_at=r["updated_at"])


class ProjectStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def resolve(self, ident: str) -> str:
        return self.db.resolve("projects", "project", ident, "p", name_column="name")

    def create(self, name: str, dir_: str, description: str) -> Project:
        if not name.strip():
            raise errors.invalid_params(["name: must not be empty"])
        with self.db.transaction() as c:
            if c.execute("SELECT 1 FROM projects WHERE name=?", (name,)).fetchone():
                raise errors.conflict(f"a project named {name!r} already exists")
            pid = self.db.new_id("projects", "p")
            now = utcnow()
            c.execute("INSERT INTO projects VALUES (?,?,?,?,?,?)", (pid, name, dir_, description, now, now))
        return self.get(pid)

    def get(self, pid: str) -> Project:
        r = self.db.conn.execute("SELECT * FROM projects WHERE id=?", (pid,)).fetchone()
        if r is None:
            raise errors.not_found("project", pid)
        return _row(r)

    def list(self) -> list[Project]:
        return [_row(r) for r in self.db.conn.execute("SELECT * FROM projects ORDER BY name")]

    def update(self, pid: str, changes: dict[str, Any]) -> Project:
        if not changes:
            return self.get(pid)
        with self.db.transaction() as c:
            if "name" in changes:
                clash = c.execute("SELECT id FROM projects WHERE name=? AND id<>?",
                                  (changes["name"], pid)).fetchone()
                if clash:
                    raise errors.conflict(f"a project named {changes['name']!r} already exists")
            sets = ", ".join(f"{k}=?" for k in changes)
            c.execute(f"UPDATE projects SET {sets}, updated_at=? WHERE id=?",
                      (*changes.values(), utcnow(), pid))
        return self.get(pid)

    def task_count(self, pid: str) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM tasks WHERE project_id=?", (pid,)).fetchone()[0])

    def task_ids_deepest_first(self, pid: str) -> builtins.list[str]:
        """The project's tasks, children before their parents (the order a delete must take)."""
        return [r[0] for r in self.db.conn.execute(
            "WITH RECURSIVE d(id, depth) AS ("
            "SELECT id, 0 FROM tasks WHERE project_id=? AND parent_id IS NULL "
            "UNION ALL SELECT t.id, d.depth+1 FROM tasks t JOIN d ON t.parent_id=d.id) "
            "SELECT id FROM d ORDER BY depth DESC", (pid,))]

    def delete(self, pid: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM projects WHERE id=?", (pid,))
