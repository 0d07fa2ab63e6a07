"""Projects and tasks through the socket: hierarchy, dependency rules, prefixes, history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared import errors
from tests.conftest import RawClient


@pytest.fixture
async def proj(client: RawClient, short_tmp: Path) -> dict[str, Any]:
    return await client.call("project.create", {"name": "demo", "dir": str(short_tmp)})  # type: ignore[no-any-return]


async def mk(client: RawClient, title: str, **kw: Any) -> dict[str, Any]:
    return await client.call("task.create", {"project": "demo", "title": title, **kw})  # type: ignore[no-any-return]


async def err(client: RawClient, method: str, params: dict[str, Any]) -> dict[str, Any]:
    resp = await client.request(method, params)
    assert "error" in resp, resp
    return resp["error"]  # type: ignore[no-any-return]


async def test_project_crud(client: RawClient, short_tmp: Path) -> None:
    p = await client.call("project.create", {"name": "x", "dir": str(short_tmp), "description": "d"})
    assert p["id"].startswith("p-") and len(p["id"]) == 8
    assert (await client.call("project.get", {"id": "x"}))["id"] == p["id"]
    assert (await client.call("project.get", {"id": p["id"][:4]}))["id"] == p["id"]
    e = await err(client, "project.create", {"name": "y", "dir": str(short_tmp / "missing")})
    assert e["code"] == errors.INVALID_PARAMS and "no such directory" in e["message"]
    e = await err(client, "project.create", {"name": "y", "dir": "relative/dir"})
    assert "absolute" in e["message"]
    u = await client.call("project.update", {"id": "x", "name": "x2", "description": "new"})
    assert u["name"] == "x2" and u["description"] == "new"
    assert [q["name"] for q in await client.call("project.list")] == ["x2"]
    await client.call("task.create", {"project": "x2", "title": "t"})
    e = await err(client, "project.delete", {"id": "x2"})
    assert e["code"] == errors.CONFLICT and "1 task" in e["message"]
    r = await client.call("project.delete", {"id": "x2", "cascade": True})
    assert r["tasks_deleted"] == 1
    assert await client.call("project.list") == []


async def test_task_fields_and_times(client: RawClient, proj: dict[str, Any]) -> None:
    t = await mk(client, "write code", priority="high", description="details")
    assert t["id"].startswith("t-") and t["status"] == "todo" and t["priority"] == "high"
    assert t["started_at"] is None and t["completed_at"] is None
    t2 = await client.call("task.update", {"id": t["id"], "status": "in_progress"})
    assert t2["started_at"] and t2["completed_at"] is None
    t3 = await client.call("task.update", {"id": t["id"], "status": "completed"})
    assert t3["completed_at"] and t3["started_at"] == t2["started_at"]
    t4 = await client.call("task.update", {"id": t["id"], "status": "in_review"})
    assert t4["completed_at"] is None


async def test_dependencies_gate_progress_and_completion(client: RawClient, proj: dict[str, Any]) -> None:
    a = await mk(client, "a")
    b = await mk(client, "b")
    c = await mk(client, "c", depends_on=[a["id"], b["id"][:5]])
    assert c["depends_on"] == sorted([a["id"], b["id"]])
    for status in ("in_progress", "completed"):
        e = await err(client, "task.update", {"id": c["id"], "status": status})
        assert e["code"] == errors.CONFLICT
        assert a["id"] in e["message"] and b["id"] in e["message"]
        assert {x["id"] for x in e["data"]["blocking"]} == {a["id"], b["id"]}
    # Other statuses are not gated.
    assert (await client.call("task.update", {"id": c["id"], "status": "blocked"}))["status"] == "blocked"
    await client.call("task.update", {"id": c["id"], "status": "todo"})
    ready = [t["id"] for t in await client.call("task.ready", {"project": "demo"})]
    assert ready == [a["id"], b["id"]]
    await client.call("task.update", {"id": a["id"], "status": "completed"})
    e = await err(client, "task.update", {"id": c["id"], "status": "in_progress"})
    assert b["id"] in e["message"] and a["id"] not in e["message"]
    await client.call("task.update", {"id": b["id"], "status": "completed"})
    assert [t["id"] for t in await client.call("task.ready", {"project": "demo"})] == [c["id"]]
    assert (await client.call("task.update", {"id": c["id"], "status": "in_progress"}))["status"] == "in_progress"
    e = await err(client, "task.create", {"project": "demo", "title": "d", "status": "completed",
                                          "depends_on": [c["id"]]})
    assert e["code"] == errors.CONFLICT
    assert len(await client.call("task.list", {"project": "demo"})) == 3  # the refused create left nothing


async def test_cycles_are_refused(client: RawClient, proj: dict[str, Any]) -> None:
    a = await mk(client, "a")
    b = await mk(client, "b", depends_on=[a["id"]])
    c = await mk(client, "c", depends_on=[b["id"]])
    e = await err(client, "task.update", {"id": a["id"], "add_depends_on": [c["id"]]})
    assert e["code"] == errors.CONFLICT and "cycle" in e["message"]
    e = await err(client, "task.update", {"id": a["id"], "add_depends_on": [a["id"]]})
    assert "cycle" in e["message"]
    await client.call("task.update", {"id": c["id"], "remove_depends_on": [b["id"]]})
    ok = await client.call("task.update", {"id": a["id"], "add_depends_on": [c["id"]]})
    assert ok["depends_on"] == [c["id"]]


async def test_hierarchy_tree_children_and_cascade(client: RawClient, proj: dict[str, Any]) -> None:
    root = await mk(client, "root")
    k1 = await mk(client, "k1", parent=root["id"])
    k2 = await mk(client, "k2", parent=root["id"])
    g = await mk(client, "g", parent=k1["id"])
    assert [t["id"] for t in await client.call("task.children", {"id": root["id"]})] == [k1["id"], k2["id"]]
    rec = await client.call("task.children", {"id": root["id"], "recursive": True})
    assert [t["id"] for t in rec] == [k1["id"], k2["id"], g["id"]]
    tree = await client.call("task.list", {"project": "demo", "tree": True})
    assert [t["id"] for t in tree] == [root["id"]]
    assert [t["id"] for t in tree[0]["children"]] == [k1["id"], k2["id"]]
    assert tree[0]["children"][0]["children"][0]["id"] == g["id"]
    roots = await client.call("task.list", {"project": "demo", "parent": ""})
    assert [t["id"] for t in roots] == [root["id"]]
    e = await err(client, "task.update", {"id": root["id"], "parent": g["id"]})
    assert e["code"] == errors.CONFLICT and "cycle" in e["message"]
    e = await err(client, "task.delete", {"id": root["id"]})
    assert e["code"] == errors.CONFLICT and "descendant" in e["message"]
    # Moving g under k2 makes it deeper than a later-created sibling: deletion order must still work.
    await client.call("task.update", {"id": g["id"], "parent": k2["id"]})
    r = await client.call("task.delete", {"id": root["id"], "cascade": True})
    assert set(r["deleted"]) == {root["id"], k1["id"], k2["id"], g["id"]}
    assert await client.call("task.list", {"project": "demo"}) == []


async def test_filters(client: RawClient, proj: dict[str, Any]) -> None:
    a = await mk(client, "a", priority="low")
    b = await mk(client, "b", priority="critical")
    await client.call("task.update", {"id": a["id"], "status": "blocked"})
    assert [t["id"] for t in await client.call("task.list", {"status": ["blocked"]})] == [a["id"]]
    assert [t["id"] for t in await client.call("task.list", {"priority": ["critical", "high"]})] == [b["id"]]
    assert [t["id"] for t in await client.call("task.list", {"project": "demo"})] == [b["id"], a["id"]]


async def test_prefixes_and_ambiguity(client: RawClient, proj: dict[str, Any], daemon: Any) -> None:
    # Force two ids that share a prefix.
    db = daemon.app.db
    await mk(client, "x")
    with db.transaction() as c:
        c.execute("UPDATE tasks SET id='t-aaa111' WHERE title='x'")
    await mk(client, "y")
    with db.transaction() as c:
        c.execute("UPDATE tasks SET id='t-aaa222' WHERE title='y'")
    e = await err(client, "task.get", {"id": "t-aaa"})
    assert e["code"] == errors.CONFLICT and "ambiguous" in e["message"]
    assert set(e["data"]["candidates"]) == {"t-aaa111", "t-aaa222"}
    assert (await client.call("task.get", {"id": "aaa1"}))["title"] == "x"
    assert (await client.call("task.get", {"id": "t-aaa2"}))["title"] == "y"
    assert (await err(client, "task.get", {"id": "t-zz"}))["code"] == errors.NOT_FOUND


async def test_history_records_every_mutation(client: RawClient, proj: dict[str, Any]) -> None:
    a = await mk(client, "a")
    b = await mk(client, "b")
    await client.call("task.update", {"id": b["id"], "title": "b2", "add_depends_on": [a["id"]]})
    await client.call("task.update", {"id": a["id"], "status": "completed"})
    await client.call("task.update", {"id": b["id"], "status": "in_progress"})
    hist = await client.call("task.history", {"id": b["id"]})
    assert [h["type"] for h in hist] == ["task.created", "task.updated", "task.deps_changed",
                                         "task.status_changed"]
    assert all(h["actor"] == "human" and h["at"] for h in hist)
    assert hist[-1]["data"] == {"from": "todo", "to": "in_progress"}
    await client.call("task.delete", {"id": a["id"]})
    hist = await client.call("task.history", {"id": b["id"]})
    assert hist[-1]["type"] == "task.deps_changed" and hist[-1]["data"]["removed"] == [a["id"]]
    assert (await client.call("task.get", {"id": b["id"]}))["depends_on"] == []
    gone = await client.call("task.history", {"id": a["id"]})
    assert gone[-1]["type"] == "task.deleted"


async def test_failed_mutation_leaves_nothing(client: RawClient, proj: dict[str, Any], daemon: Any) -> None:
    before = daemon.app.bus.last_seq
    a = await mk(client, "a")
    await err(client, "task.create", {"project": "demo", "title": "z", "status": "in_progress",
                                      "depends_on": [a["id"]]})
    rep = await client.call("events.replay", {"since": before})
    assert [e["topic"] for e in rep["events"]] == ["task.created"]
