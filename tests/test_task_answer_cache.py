"""Whole task lists kept between changes (TaskStore._encoded, docs/performance.md).

``task.list`` / ``task.ready`` without paging answer the same bytes again while the database is unchanged,
and after a change read again only the rows that changed.
What must never happen is an answer older than the data: after every kind of write (each TaskStore write,
trigger-maintained columns, foreign-key cascades, a REPLACE, raw SQL, another connection's commit, a
rolled-back transaction) the kept answer equals the rows read again, and nothing read inside an open
transaction is kept.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from maestrod.store import tasks as tasks_module
from maestrod.store.db import Database
from maestrod.store.projects import ProjectStore
from maestrod.store.tasks import TaskStore
from shared.convert import unstructure
from shared.errors import RpcError

Stores = tuple[Database, TaskStore, ProjectStore, list[str]]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    db = Database(tmp_path / "t.db")
    projects = ProjectStore(db)
    pids = [projects.create(name, "/tmp", "").id for name in ("p", "q")]
    tasks = TaskStore(db)
    ids: list[str] = []
    rng = random.Random(3)
    for i in range(24):
        parent = rng.choice(ids) if ids and i % 4 == 0 else None
        deps = rng.sample(ids, 2) if len(ids) > 3 and i % 3 == 0 else []
        status = "completed" if i % 5 == 1 and not deps else "todo"
        ids.append(tasks.create(pids[0], f"t{i}", "d" * i, rng.choice(["low", "medium", "high", "critical"]),
                                status, parent, deps).id)
    tasks.create(pids[1], "other", "", "medium", "todo", None, [])
    yield db, tasks, projects, pids
    db.close()


def queries(tasks: TaskStore, pids: list[str]) -> list[Callable[[], orjson.Fragment]]:
    pid = pids[0]
    return [lambda: tasks.list_encoded(pid), lambda: tasks.list_encoded(None),
            lambda: tasks.list_encoded(pid, ["todo"], ["high", "critical"]),
            lambda: tasks.list_encoded(pid, roots_only=True), lambda: tasks.ready_encoded(pid),
            lambda: tasks.ready_encoded(None)]


def truth(tasks: TaskStore, pids: list[str]) -> list[Any]:
    """The answers read afresh: the Task objects of ``list``/``ready``, unstructured as the RPC sends them."""
    pid = pids[0]
    return [unstructure(x) for x in (tasks.list(pid), tasks.list(None), tasks.list(pid, ["todo"], ["high", "critical"]),
                                     tasks.list(pid, roots_only=True), tasks.ready(pid), tasks.ready(None))]


def answers(tasks: TaskStore, pids: list[str]) -> list[Any]:
    return [orjson.loads(orjson.dumps(query())) for query in queries(tasks, pids)]


def assert_kept(tasks: TaskStore, pids: list[str]) -> None:
    """Every query answered twice: the second time from memory (the same object), and right."""
    for query in queries(tasks, pids):
        assert query() is query()
    assert answers(tasks, pids) == truth(tasks, pids)


def some_task(db: Database, rng: random.Random, status: str | None = None) -> str:
    # tasks of the first project (a parent or dependency from another project is refused); task ids are
    # random, so the order is by title and rowid
    sql = ("SELECT t.id FROM tasks t JOIN projects p ON p.id=t.project_id WHERE p.name='p'"
           + (" AND t.status=?" if status else "") + " ORDER BY t.title, t.rowid")
    rows = [r[0] for r in db.conn.execute(sql, (status,) if status else ())]
    if not rows:
        raise NoCandidate(status)
    return rng.choice(rows)


class NoCandidate(Exception):
    """No task to write to (random sequences may use them all up): that write is skipped."""


def writes(stores: Stores, tmp_path: Path) -> dict[str, Callable[[random.Random], None]]:
    db, tasks, projects, pids = stores

    def create(rng: random.Random) -> None:
        tasks.create(pids[0], f"new {rng.random()}", "", rng.choice(["low", "critical"]), "todo",
                     some_task(db, rng) if rng.random() < 0.5 else None, [some_task(db, rng)])

    def status(rng: random.Random) -> None:
        tid = some_task(db, rng, "todo")
        if not tasks.blocking(tid):
            tasks.set_status(tid, rng.choice(["completed", "in_progress", "blocked"]))
        else:
            tasks.set_status(tid, "blocked")

    def reopen(rng: random.Random) -> None:  # a completed dependency reopened: ready lists shrink
        tasks.set_status(some_task(db, rng, "completed"), "todo")

    def fields(rng: random.Random) -> None:
        tasks.update_fields(some_task(db, rng), {"title": f"renamed {rng.random()}", "priority": "critical"})

    def deps(rng: random.Random) -> None:  # task_deps rows; the tasks.deps copy follows by trigger
        tid = some_task(db, rng)
        current = tasks.get(tid).depends_on
        candidates = [t for t in (some_task(db, rng) for _ in range(4)) if not tasks._would_cycle(tid, t)]
        tasks.change_deps(tid, candidates[:1], current[:1])

    def delete(rng: random.Random) -> None:  # dependents lose it through the ON DELETE CASCADE of task_deps
        leaves = [r[0] for r in db.conn.execute(
            "SELECT id FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id=t.id)"
            " ORDER BY t.title, t.rowid")]
        tasks.delete([rng.choice(leaves)])

    def raw_sql(rng: random.Random) -> None:  # a statement no TaskStore method makes
        db.conn.execute("UPDATE tasks SET description=description || 'x' WHERE rowid % 3 = ?", (rng.randrange(3),))

    def replace(rng: random.Random) -> None:  # REPLACE deletes the old row without a delete trigger
        row = db.conn.execute("SELECT * FROM tasks WHERE id=?", (some_task(db, rng),)).fetchone()
        values = {**dict(row), "title": "replaced"}
        db.conn.execute(f"INSERT OR REPLACE INTO tasks({','.join(values)}) VALUES ({','.join('?' * len(values))})",
                        list(values.values()))

    def other_connection(rng: random.Random) -> None:  # another process writing the same file
        other = sqlite3.connect(db.path, isolation_level=None)
        other.execute("UPDATE tasks SET title='from elsewhere', priority='low' WHERE id=?", (some_task(db, rng),))
        other.close()

    def rolled_back(rng: random.Random) -> None:  # read inside the transaction: never kept
        tid = some_task(db, rng)
        with pytest.raises(RuntimeError), db.transaction():
            tasks.update_fields(tid, {"title": "never committed"})
            assert any(t["title"] == "never committed" for t in orjson.loads(orjson.dumps(tasks.list_encoded(None))))
            raise RuntimeError("roll back")

    def other_table(rng: random.Random) -> None:  # a project row: lists do not change, kept answers may go
        projects.update(pids[1], {"description": f"d {rng.random()}"})

    def vacuum(rng: random.Random) -> None:  # may renumber rowids: rows are kept by task id
        db.conn.execute("VACUUM")

    return {f.__name__: f for f in (create, status, reopen, fields, deps, delete, raw_sql, replace,
                                     other_connection, rolled_back, other_table, vacuum)}


def test_every_kind_of_write_is_seen(stores: Stores, tmp_path: Path) -> None:
    db, tasks, _projects, pids = stores
    rng = random.Random(11)
    for name, write in writes(stores, tmp_path).items():
        assert_kept(tasks, pids)
        write(rng)
        assert answers(tasks, pids) == truth(tasks, pids), name


@pytest.mark.parametrize("seed", range(4))
def test_random_writes_between_reads(stores: Stores, tmp_path: Path, seed: int) -> None:
    db, tasks, _projects, pids = stores
    rng = random.Random(seed)
    kinds = list(writes(stores, tmp_path).values())
    for _ in range(60):
        if rng.random() < 0.6:
            with contextlib.suppress(NoCandidate, RpcError):  # a refused write changes nothing
                rng.choice(kinds)(rng)
        assert answers(tasks, pids) == truth(tasks, pids)


def test_nothing_read_in_a_transaction_is_kept(stores: Stores) -> None:
    db, tasks, _projects, pids = stores
    before = tasks.list_encoded(pids[0])
    with db.transaction():
        inside = tasks.list_encoded(pids[0])
        assert inside is not before and inside is not tasks.list_encoded(pids[0])  # read, not kept
    assert tasks.list_encoded(pids[0]) is tasks.list_encoded(pids[0])


def test_kept_answers_are_bounded(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    _db, tasks, _projects, pids = stores
    monkeypatch.setattr(tasks_module, "ANSWER_CACHE_ENTRIES", 3)
    for query in queries(tasks, pids):
        query()
        assert len(tasks._answers) <= 3
    monkeypatch.setattr(tasks_module, "ANSWER_CACHE_BYTES", 100)
    tasks.list_encoded(pids[0], ["todo"])
    assert tasks._answers_bytes <= 100


def test_after_a_change_only_the_changed_rows_are_read(stores: Stores) -> None:
    db, tasks, _projects, pids = stores
    listed = orjson.loads(orjson.dumps(tasks.list_encoded(pids[0])))
    tasks.update_fields(listed[3]["id"], {"title": "changed"})
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    after = orjson.loads(orjson.dumps(tasks.list_encoded(pids[0])))
    db.conn.set_trace_callback(None)
    rows_read = [sql for sql in seen if "t.title" in sql]  # statements that read whole rows
    assert len(rows_read) == 1 and rows_read[0].endswith(f"WHERE t.id IN ('{listed[3]['id']}')"), seen
    assert after == [*listed[:3], {**listed[3], "title": "changed", "updated_at": after[3]["updated_at"]}, *listed[4:]]
