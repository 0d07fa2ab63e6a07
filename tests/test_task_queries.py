"""How tasks are read: `task.get` is one SQLite statement, lists walk an index instead of sorting, and an id
too long to be anyone's prefix is "not found" (it was -32603: SQLite refuses LIKE patterns over 50,000 bytes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maestrod.store.db import Database
from maestrod.store.projects import ProjectStore
from maestrod.store.tasks import MAX_TASK_DEPTH, TaskStore
from tests.conftest import RawClient


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Database, TaskStore, str]]:
    db = Database(tmp_path / "t.db")
    pid = ProjectStore(db).create("p", "/tmp", "").id
    yield db, TaskStore(db), pid
    db.close()


def statements(db: Database) -> list[str]:
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    return seen


def test_task_get_is_one_statement(stores: tuple[Database, TaskStore, str]) -> None:
    db, tasks, pid = stores
    a = tasks.create(pid, "a", "", "medium", "completed", None, [])
    b = tasks.create(pid, "b", "", "medium", "todo", None, [])
    c = tasks.create(pid, "c", "", "high", "todo", a.id, [b.id, a.id])
    seen = statements(db)
    got = tasks.find(c.id)
    assert len(seen) == 1, seen
    assert got.depends_on == sorted([a.id, b.id]) and got.parent_id == a.id and got.title == "c"
    # A prefix still resolves (first the full-id lookup, then the prefix); a missing id is not found.
    assert tasks.find(c.id[:-1]).id == c.id
    with pytest.raises(Exception, match="not found"):
        tasks.find("t-ffffffffffff")


def test_lists_walk_the_order_index(stores: tuple[Database, TaskStore, str]) -> None:
    db, tasks, pid = stores
    for i, prio in enumerate(["low", "critical", "medium", "high", "critical", "low"]):
        tasks.create(pid, f"t{i}", "", prio, "todo", None, [])
    seen = statements(db)
    listed = tasks.list(pid)
    ready = tasks.ready(pid)
    db.conn.set_trace_callback(None)
    assert [t.title for t in listed] == ["t1", "t4", "t3", "t2", "t0", "t5"]
    assert [t.title for t in ready] == [t.title for t in listed]
    assert len(seen) == 2, seen  # one statement each: rows and dependencies together
    for sql in seen:
        plan = " ".join(str(r[3]) for r in db.conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "tasks_order" in plan and "TEMP B-TREE" not in plan, (sql, plan)


def deps_truth(db: Database) -> dict[str, str]:
    return {tid: " ".join(r[0] for r in db.conn.execute(
        "SELECT depends_on FROM task_deps WHERE task_id=? ORDER BY depends_on", (tid,)))
        for (tid,) in db.conn.execute("SELECT id FROM tasks")}


def deps_copy(db: Database) -> dict[str, str]:
    return {tid: deps for tid, deps in db.conn.execute("SELECT id, deps FROM tasks")}


def test_the_deps_column_follows_task_deps(stores: tuple[Database, TaskStore, str]) -> None:
    """tasks.deps (what reads use) is kept from task_deps (the truth) by triggers: on create, on a change,
    on a rolled-back change, and when a dependency is deleted (a cascade)."""
    db, tasks, pid = stores
    ids = [tasks.create(pid, f"t{i}", "", "medium", "todo", None, []).id for i in range(6)]
    top = tasks.create(pid, "top", "", "medium", "todo", None, ids[:4])
    assert deps_copy(db) == deps_truth(db) and tasks.get(top.id).depends_on == sorted(ids[:4])
    tasks.change_deps(top.id, [ids[5]], [ids[0]])
    assert deps_copy(db) == deps_truth(db)
    with pytest.raises(Exception, match="cycle"):
        tasks.change_deps(ids[5], [ids[4], top.id], [])  # rolled back whole
    assert deps_copy(db) == deps_truth(db) and tasks.get(ids[5]).depends_on == []
    tasks.delete([ids[1]])  # cascades to top's row in task_deps
    assert deps_copy(db) == deps_truth(db)
    assert tasks.get(top.id).depends_on == sorted([ids[2], ids[3], ids[5]])


def test_migration_fills_the_deps_column(tmp_path: Path) -> None:
    from maestrod.store.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    db = Database(path)
    pid = ProjectStore(db).create("p", "/tmp", "").id
    store = TaskStore(db)
    a, b = (store.create(pid, n, "", "low", "todo", None, []).id for n in "ab")
    store.create(pid, "c", "", "low", "todo", None, [b, a])
    version = next(i for i, m in enumerate(MIGRATIONS, 1) if "ADD COLUMN deps" in m)
    # Back to the schema before the column, its rows still in task_deps; then that one step again.
    db.conn.executescript("DROP TRIGGER task_deps_added; DROP TRIGGER task_deps_removed; "
                          "ALTER TABLE tasks DROP COLUMN deps;")
    db.conn.executescript(f"BEGIN; {MIGRATIONS[version - 1]}; COMMIT;")
    assert deps_copy(db) == deps_truth(db)
    assert sorted(v for v in deps_copy(db).values() if v) == [" ".join(sorted([a, b]))]
    db.close()


async def test_an_overlong_id_is_not_found(client: RawClient, short_tmp: Path) -> None:
    await client.call("project.create", {"name": "p", "dir": str(short_tmp)})
    for method in ("task.get", "project.get", "mail.read", "session.get"):
        resp = await client.request(method, {"id": "a" * 100_000})
        assert resp["error"]["code"] != -32603, resp
        assert len(resp["error"]["message"]) < 200, resp["error"]["message"][:300]


async def test_tasks_nest_at_most_64_levels(client: RawClient, short_tmp: Path) -> None:
    """A tree listing nests two JSON levels per task: a chain of 300 went past the encoder (orjson stops at
    255) and task.list --tree answered -32603. The hierarchy is capped where it is built instead."""
    await client.call("project.create", {"name": "p", "dir": str(short_tmp)})
    chain: list[str] = []
    for i in range(MAX_TASK_DEPTH):
        params = {"project": "p", "title": f"level {i}", **({"parent": chain[-1]} if chain else {})}
        chain.append((await client.call("task.create", params))["id"])
    resp = await client.request("task.create", {"project": "p", "title": "too deep", "parent": chain[-1]})
    assert resp["error"]["code"] == -32602 and "parent: " in resp["error"]["message"], resp
    assert f"at most {MAX_TASK_DEPTH} levels" in resp["error"]["message"]
    # Moving a subtree under a deep task counts the subtree's own height too.
    top = (await client.call("task.create", {"project": "p", "title": "top"}))["id"]
    await client.call("task.create", {"project": "p", "title": "below", "parent": top})
    resp = await client.request("task.update", {"id": top, "parent": chain[-2]})
    assert resp["error"]["code"] == -32602, resp
    await client.call("task.update", {"id": top, "parent": chain[-3]})  # 62 + 2 levels: fits
    tree = await client.call("task.list", {"project": "p", "tree": True})
    depth, node = 1, next(t for t in tree if t["id"] == chain[0])
    while node["children"]:
        depth, node = depth + 1, node["children"][0]
    assert depth == MAX_TASK_DEPTH


def test_encoded_lists_are_the_tasks_wire_form(stores: tuple[Database, TaskStore, str]) -> None:
    """task.list and task.ready answer from ``*_encoded`` (rows straight to JSON): byte for byte what the
    tasks themselves unstructure and encode to."""
    import orjson

    from shared.convert import unstructure

    db, tasks, pid = stores
    a = tasks.create(pid, "a", "é \u2028 \"q\"", "high", "completed", None, [])
    b = tasks.create(pid, "b", "", "low", "todo", a.id, [a.id])
    tasks.create(pid, "c", "", "critical", "todo", None, [a.id, b.id])
    tasks.create(pid, "d", "", "medium", "todo", b.id, [b.id])
    for encoded, built in ((tasks.list_encoded(pid), tasks.list(pid)),
                           (tasks.list_encoded(pid, ["todo"], ["low"]), tasks.list(pid, ["todo"], ["low"])),
                           (tasks.list_encoded(pid, roots_only=True), tasks.list(pid, roots_only=True)),
                           (tasks.list_encoded(parent_id=b.id), tasks.list(parent_id=b.id)),
                           (tasks.ready_encoded(pid), tasks.ready(pid)), (tasks.ready_encoded(None), tasks.ready(None))):
        assert orjson.dumps(encoded) == orjson.dumps(unstructure(built))
    assert [t["title"] for t in orjson.loads(orjson.dumps(tasks.ready_encoded(pid)))] == ["b"]
