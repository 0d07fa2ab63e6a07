"""Tasks: hierarchy (parent/children), dependencies with enforcement, status times."""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Sequence
from typing import Any

import orjson

from maestrod.paging import Page
from maestrod.store.db import Database, utcnow
from shared import errors
from shared.messages.task import Task

#: Entering these statuses requires every dependency to be completed.
GATED_STATUSES = frozenset({"in_progress", "completed"})

#: How deep tasks nest (a root is level 1). A tree listing nests two JSON levels per task, and neither
#: the daemon's encoder (orjson stops at 255) nor a client's parser should meet a chain of thousands.
MAX_TASK_DEPTH = 64

#: A task row in ``Task``'s field order; ``deps`` is its dependencies joined by spaces (ids never hold one),
#: kept from ``task_deps`` by triggers (migration 9).
_SELECT = ("SELECT t.id, t.project_id, t.title, t.description, t.status, t.priority, t.parent_id, t.deps, "
           "t.created_at, t.updated_at, t.started_at, t.completed_at FROM tasks t ")
_BY_PRIORITY = (" ORDER BY CASE t.priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2"
                " ELSE 3 END, t.created_at, t.rowid")
#: A task's place in ``_BY_PRIORITY`` order, for keyset pages: (priority rank, created_at, rowid).
_PRIORITY_KEY = "(CASE t.priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, " \
    "t.created_at, t.rowid)"
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2}
#: The types in a task list cursor's key.
PAGE_KEY = (int, str, int)


#: Bounds of the whole-list answers kept between changes (``TaskStore._encoded``).
ANSWER_CACHE_ENTRIES = 32
ANSWER_CACHE_BYTES = 32 << 20
#: Bound of the encoded rows kept for them (``TaskStore._encode_rows``): all are dropped beyond it.
ROW_CACHE_ROWS = 200_000
#: Each TaskStore has its own temp table of changed rows (tests open several on one database).
_stores = itertools.count()


def _wire(row: Sequence[Any]) -> dict[str, Any]:
    """A ``_SELECT`` row in the tasks' wire form (``shared.convert.unstructure_task``)."""
    i, proj, title, desc, status, prio, parent, deps, created, updated, started, completed = row
    return {"id": i, "project_id": proj, "title": title, "description": desc, "status": status, "priority": prio,
            "parent_id": parent, "depends_on": deps.split(" ") if deps else [], "created_at": created,
            "updated_at": updated, "started_at": started, "completed_at": completed, "children": None}


class TaskStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: Encoded whole-list answers (``_encoded``) by query, valid for the database state ``_answers_of``.
        self._answers: dict[tuple[str, tuple[Any, ...]], orjson.Fragment] = {}
        self._answers_bytes = 0
        self._answers_of: tuple[int, int] | None = None
        #: Each task row in its wire form by task id (not rowid: a VACUUM may renumber those), as read when
        #: ``data_version`` was ``_rows_of``; a row changed since is named in the temp table ``_touched``
        #: (filled by temp triggers on ``tasks``).
        self._rows: dict[str, bytes] = {}
        self._rows_of: int | None = None
        self._touched = touched = f"tasks_touched_{next(_stores)}"
        conn = db.conn
        conn.execute(f"CREATE TEMP TABLE {touched}(id TEXT PRIMARY KEY)")
        conn.execute(f"CREATE TEMP TRIGGER {touched}_insert AFTER INSERT ON main.tasks "
                     f"BEGIN INSERT OR IGNORE INTO {touched} VALUES (new.id); END")
        conn.execute(f"CREATE TEMP TRIGGER {touched}_update AFTER UPDATE ON main.tasks "
                     f"BEGIN INSERT OR IGNORE INTO {touched} VALUES (old.id), (new.id); END")
        conn.execute(f"CREATE TEMP TRIGGER {touched}_delete AFTER DELETE ON main.tasks "
                     f"BEGIN INSERT OR IGNORE INTO {touched} VALUES (old.id); END")

    def resolve(self, ident: str) -> str:
        return self.db.resolve("tasks", "task", ident, "t")

    # -- reads -------------------------------------------------------------------------------

    def _select(self, tail: str, args: Sequence[Any] = ()) -> builtins.list[Task]:
        """Tasks from ``SELECT <columns> FROM tasks t <tail>``: one statement, rows and dependencies together.

        Under load most of a list's time went to a second query for the dependencies, ``sqlite3.Row``
        lookups by name and cattrs: tuples in ``Task``'s field order are built straight into tasks.
        """
        cur = self.db.conn.cursor()
        cur.row_factory = None
        return [Task(i, proj, title, desc, status, prio, parent, deps.split(" ") if deps else [],
                     created, updated, started, completed)
                for i, proj, title, desc, status, prio, parent, deps, created, updated, started, completed
                in cur.execute(_SELECT + tail, args)]

    def _encoded(self, tail: str, args: Sequence[Any] = ()) -> orjson.Fragment:
        """The tasks ``_select`` would build, as one encoded JSON array in their wire form
        (``shared.convert.unstructure_task``): a whole list answered as it is read skips building a ``Task``
        and unstructuring it again for each row -- a third of a 300-task ``task.list`` under load.

        The same query is answered again from memory while the database is unchanged (under 50 clients,
        reading the rows was most of a 300-task list's time), and after a change only the changed rows are
        read again (``_encode_rows``).  Unchanged means: no row changed on this
        connection (``total_changes`` counts every row an INSERT, UPDATE or DELETE changes, those of
        triggers included, and a foreign-key cascade or REPLACE only runs from a statement that changes a
        row itself; a rolled-back change still counted), no other connection committed (``PRAGMA
        data_version``), and no transaction open (so nothing kept was read uncommitted).  docs/performance.md,
        'Whole task lists kept between changes'.
        """
        conn = self.db.conn
        state: tuple[int, int] | None = None
        key = (tail, tuple(args))
        if not conn.in_transaction:
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            self._forget_changed_rows(version)  # first: it writes the temp table (total_changes moves)
            state = (conn.total_changes, version)
            if state == self._answers_of:
                kept = self._answers.get(key)
                if kept is not None:
                    return kept
            else:
                self._answers.clear()
                self._answers_bytes = 0
                self._answers_of = state
        encoded = self._encode_rows(tail, args)
        if state is not None:
            if (len(self._answers) >= ANSWER_CACHE_ENTRIES
                    or self._answers_bytes + len(encoded) > ANSWER_CACHE_BYTES):
                self._answers.clear()
                self._answers_bytes = 0
            if len(encoded) <= ANSWER_CACHE_BYTES:
                self._answers[key] = fragment = orjson.Fragment(encoded)
                self._answers_bytes += len(encoded)
                return fragment
        return orjson.Fragment(encoded)

    def _forget_changed_rows(self, version: int) -> None:
        """Drop the kept rows changed since they were read: those the temp triggers named (every INSERT,
        UPDATE and DELETE on ``tasks`` through this connection, those of triggers and cascades included),
        or all of them if another connection committed (``version``, its ``PRAGMA data_version``)."""
        conn = self.db.conn
        touched = [r[0] for r in conn.execute(f"SELECT id FROM temp.{self._touched}")]
        if touched:
            conn.execute(f"DELETE FROM temp.{self._touched}")
        if version != self._rows_of or len(self._rows) > ROW_CACHE_ROWS:
            self._rows.clear()
            self._rows_of = version
        else:
            rows = self._rows
            for tid in touched:
                rows.pop(tid, None)

    def _encode_rows(self, tail: str, args: Sequence[Any]) -> bytes:
        """The tasks ``tail`` selects as one JSON array: in a transaction read whole, else from the rows kept
        (``_rows``, after ``_forget_changed_rows``) and those read now -- under load most of a list's time
        was SQLite handing over a dozen values per task; the ids in order are much cheaper."""
        conn = self.db.conn
        cur = conn.cursor()
        cur.row_factory = None
        if conn.in_transaction:  # what is read here may be rolled back: nothing is kept
            return orjson.dumps([_wire(row) for row in cur.execute(_SELECT + tail, args)])
        ids = [r[0] for r in cur.execute("SELECT t.id FROM tasks t " + tail, args)]
        rows = self._rows
        missing = [tid for tid in ids if tid not in rows]
        for at in range(0, len(missing), 500):
            chunk = missing[at:at + 500]
            for row in cur.execute(_SELECT + f"WHERE t.id IN ({','.join('?' * len(chunk))})", chunk):
                rows[row[0]] = orjson.dumps(_wire(row))
        return b"[" + b",".join([rows[tid] for tid in ids]) + b"]"

    def get(self, tid: str) -> Task:
        tasks = self._select("WHERE t.id=?", (tid,))
        if not tasks:
            raise errors.not_found("task", tid)
        return tasks[0]

    def find(self, ident: str) -> Task:
        """The task ``ident`` names: a full id costs one query; a prefix is resolved first."""
        tasks = self._select("WHERE t.id=?", (ident,)) if ident else []
        return tasks[0] if tasks else self.get(self.resolve(ident))

    def get_many(self, ids: list[str]) -> list[Task]:
        if not ids:
            return []
        by_id = {t.id: t for t in self._select(f"WHERE t.id IN ({','.join('?' * len(ids))})", ids)}
        return [by_id[i] for i in ids if i in by_id]

    # Below this method, ``list`` in an annotation means this method (class scope), so the methods
    # after it spell the builtin ``builtins.list``; the name stays because it is the RPC's verb.
    def list(self, project_id: str | None = None, statuses: Sequence[str] | None = None,
             priorities: Sequence[str] | None = None, parent_id: str | None = None,
             roots_only: bool = False, page: Page | None = None) -> list[Task]:
        sql, args = self._list_where(project_id, statuses, priorities, parent_id, roots_only)
        if page is not None:
            return self._page(sql, args, page)
        return self._select(sql + _BY_PRIORITY, args)

    def list_encoded(self, project_id: str | None = None, statuses: Sequence[str] | None = None,
                     priorities: Sequence[str] | None = None, parent_id: str | None = None,
                     roots_only: bool = False) -> orjson.Fragment:
        """``list``'s tasks, whole, as an encoded JSON array (see ``_encoded``)."""
        sql, args = self._list_where(project_id, statuses, priorities, parent_id, roots_only)
        return self._encoded(sql + _BY_PRIORITY, args)

    @staticmethod
    def _list_where(project_id: str | None, statuses: Sequence[str] | None, priorities: Sequence[str] | None,
                    parent_id: str | None, roots_only: bool) -> tuple[str, builtins.list[Any]]:
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
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
        return (" WHERE " + " AND ".join(where) if where else ""), args

    def _page(self, where: str, args: builtins.list[Any], page: Page) -> builtins.list[Task]:
        """One keyset page of the tasks ``where`` selects in ``_BY_PRIORITY`` order; fills in ``page``."""
        page.total = int(self.db.conn.execute("SELECT COUNT(*) FROM tasks t " + where, args).fetchone()[0])
        if page.after is not None:
            where = (where + " AND " if where else " WHERE ") + _PRIORITY_KEY + " > (?, ?, ?)"
            args = [*args, *page.after]
        tasks = self._select(where + _BY_PRIORITY + " LIMIT ?", [*args, page.limit + 1])
        return page.cut(tasks, lambda t: (PRIORITY_RANK.get(t.priority, 3), t.created_at, int(
            self.db.conn.execute("SELECT rowid FROM tasks WHERE id=?", (t.id,)).fetchone()[0])))

    def rowids(self, ids: builtins.list[str]) -> dict[str, int]:
        """Each task's rowid: the tie-breaker of the list orders, for keyset pages."""
        out: dict[str, int] = {}
        for at in range(0, len(ids), 500):
            chunk = ids[at:at + 500]
            out.update(self.db.conn.execute(
                f"SELECT id, rowid FROM tasks WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall())
        return out

    def descendants(self, tid: str) -> builtins.list[Task]:
        """Every task below ``tid``, shallowest first (so reversed is safe deletion order)."""
        return self._select(
            "JOIN (WITH RECURSIVE d(id, depth) AS (SELECT id, 1 FROM tasks WHERE parent_id=? "
            "UNION ALL SELECT c.id, d.depth+1 FROM tasks c JOIN d ON c.parent_id=d.id) SELECT * FROM d) d "
            "ON d.id=t.id ORDER BY d.depth, t.created_at, t.rowid", (tid,))

    def children(self, tid: str) -> builtins.list[Task]:
        return self._select("WHERE t.parent_id=? ORDER BY t.created_at, t.rowid", (tid,))

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

    def ready(self, project_id: str | None, page: Page | None = None) -> builtins.list[Task]:
        sql, args = self._ready_where(project_id)
        if page is not None:
            return self._page(sql, args, page)
        return self._select(sql + _BY_PRIORITY, args)

    def ready_encoded(self, project_id: str | None) -> orjson.Fragment:
        """``ready``'s tasks, whole, as an encoded JSON array (see ``_encoded``)."""
        sql, args = self._ready_where(project_id)
        return self._encoded(sql + _BY_PRIORITY, args)

    @staticmethod
    def _ready_where(project_id: str | None) -> tuple[str, builtins.list[Any]]:
        sql = ("WHERE t.status='todo' AND NOT EXISTS ("
               "SELECT 1 FROM task_deps d JOIN tasks u ON u.id=d.depends_on "
               "WHERE d.task_id=t.id AND u.status<>'completed')")
        args: builtins.list[Any] = []
        if project_id:
            sql += " AND t.project_id=?"
            args.append(project_id)
        return sql, args

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

    def _level(self, tid: str) -> int:
        """How deep ``tid`` sits: 1 for a root."""
        return int(self.db.conn.execute(
            "WITH RECURSIVE a(id, n) AS (SELECT ?, 1 UNION ALL SELECT t.parent_id, a.n+1 FROM tasks t JOIN a "
            "ON t.id=a.id WHERE t.parent_id IS NOT NULL AND a.n <= ?) SELECT max(n) FROM a",
            (tid, MAX_TASK_DEPTH)).fetchone()[0])

    def _height(self, tid: str) -> int:
        """Levels in the subtree rooted at ``tid``: 1 for a task without children."""
        return int(self.db.conn.execute(
            "WITH RECURSIVE d(id, n) AS (SELECT ?, 1 UNION ALL SELECT t.id, d.n+1 FROM tasks t JOIN d "
            "ON t.parent_id=d.id WHERE d.n <= ?) SELECT max(n) FROM d", (tid, MAX_TASK_DEPTH)).fetchone()[0])

    def _check_depth(self, parent_id: str, height: int) -> None:
        level = self._level(parent_id) + height
        if level > MAX_TASK_DEPTH:
            raise errors.invalid_params([f"parent: {parent_id} is {level - height} levels deep; tasks nest at "
                                         f"most {MAX_TASK_DEPTH} levels"])

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
                self._check_depth(parent_id, 1)
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
                self._check_depth(parent, self._height(tid))
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
