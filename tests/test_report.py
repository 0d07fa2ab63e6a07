"""task.report: the session's part, the task's status, the timeline, and the coordinator's mail."""

from __future__ import annotations

from maestrod.app import App
from shared import errors
from shared.timeline import TIMELINE_TYPES
from tests.test_mail_support import (
    add_session,
    assign,
    call,
    call_err,
    family_app,  # noqa: F401  (the `app` fixture)
)


def task(app: App, title: str = "T", status: str = "todo", deps: list[str] | None = None,
         project: str = "proj") -> str:
    return app.tasks.create(app.projects.resolve(project), title, "", "medium", status, None, deps or []).id


def part(app: App, sid: str, tid: str) -> str:
    return app.db.conn.execute("SELECT status FROM session_tasks WHERE session_id=? AND task_id=?",
                               (sid, tid)).fetchone()[0]


async def report(app: App, sid: str, tid: str, status: str, message: str = "msg") -> dict:
    return await call(app, sid, "task.report", {"task": tid, "status": status, "message": message})


async def test_progress_starts_a_todo_task_and_mails_the_coordinator(app: App) -> None:
    tid = task(app, "Write the parser")
    assign(app, "s-w1", tid)
    r = await report(app, "s-w1", tid[:5], "progress", "starting with the lexer")
    assert r["task"]["status"] == "in_progress" and r["status_change"] == {"from": "todo", "to": "in_progress"}
    assert r["session_task_status"] == "in_progress" and part(app, "s-w1", tid) == "in_progress"
    assert r["mailed_to"] == "s-coord" and r["note"] is None
    [m] = await call(app, "s-coord", "mail.inbox")
    assert m["id"] == r["mail_id"] and m["type"] == "status_update" and m["priority"] == "normal"
    assert m["from"] == "s-w1" and m["task_id"] == tid and m["subject"] == "progress: Write the parser"
    assert "starting with the lexer" in m["body"] and "todo -> in_progress" in m["body"]
    # a second progress report changes nothing but is recorded and mailed
    r2 = await report(app, "s-w1", tid, "progress", "lexer done")
    assert r2["status_change"] is None and r2["task"]["status"] == "in_progress"
    assert len(await call(app, "s-coord", "mail.inbox")) == 2


async def test_blocked_and_error_are_high_priority(app: App) -> None:
    tid = task(app)
    r = await report(app, "s-w2a", tid, "blocked", "the db is down")
    assert r["task"]["status"] == "blocked" and r["mailed_to"] == "s-w2"
    assert part(app, "s-w2a", tid) == "blocked"  # an unassigned reporter becomes assigned
    r = await report(app, "s-w2a", tid, "error", "migration failed")
    assert r["task"]["status"] == "blocked" and r["status_change"] is None  # error keeps the status
    assert part(app, "s-w2a", tid) == "error"
    inbox = await call(app, "s-w2", "mail.inbox")
    assert [(m["subject"].split(":")[0], m["priority"]) for m in inbox] == [("error", "high"), ("blocked", "high")]


async def test_progress_after_blocked_resumes_once_nobody_is_blocked(app: App) -> None:
    tid = task(app)
    assign(app, "s-w1", tid)
    assign(app, "s-w2", tid)
    await report(app, "s-w1", tid, "blocked", "waiting for schema")
    await report(app, "s-w2", tid, "blocked", "me too")
    r = await report(app, "s-w1", tid, "progress", "schema arrived")
    assert r["task"]["status"] == "blocked"  # s-w2 is still blocked
    r = await report(app, "s-w2", tid, "progress", "going again")
    assert r["task"]["status"] == "in_progress" and r["status_change"] == {"from": "blocked", "to": "in_progress"}


async def test_complete_waits_for_every_assigned_session(app: App) -> None:
    tid = task(app, status="in_progress")
    assign(app, "s-w1", tid)
    assign(app, "s-w2", tid)
    r = await report(app, "s-w1", tid, "complete", "my half is done")
    assert r["task"]["status"] == "in_progress" and r["session_task_status"] == "completed"
    r = await report(app, "s-w2", tid, "complete", "my half too")
    assert r["task"]["status"] == "completed" and r["status_change"] == {"from": "in_progress", "to": "completed"}
    assert r["task"]["completed_at"]


async def test_a_move_refused_by_dependencies_is_explained(app: App) -> None:
    dep = task(app, "Dependency")
    tid = task(app, "Dependent", deps=[dep])
    r = await report(app, "s-w1", tid, "complete", "done early")
    assert r["task"]["status"] == "todo" and r["status_change"] is None
    assert r["note"].startswith("task status left at todo") and dep in r["note"]
    [m] = await call(app, "s-coord", "mail.inbox")
    assert "note: task status left at todo" in m["body"]
    assert part(app, "s-w1", tid) == "completed"  # the session's own part is still recorded


async def test_final_tasks_keep_their_status(app: App) -> None:
    tid = task(app, status="cancelled")
    r = await report(app, "s-w1", tid, "progress", "hm")
    assert r["task"]["status"] == "cancelled" and r["status_change"] is None


async def test_timeline_and_events(app: App) -> None:
    tid = task(app)
    before = app.bus.last_seq
    await report(app, "s-w1", tid, "progress", "go")
    history = await call(app, None, "task.history", {"id": tid})
    types = [h["type"] for h in history]
    assert types == ["task.status_changed", "task.report"]  # (the task was made through the store)
    rep = history[-1]
    assert rep["actor"] == "s-w1" and rep["data"]["status"] == "progress" and rep["data"]["message"] == "go"
    assert all(t in TIMELINE_TYPES for t in types)
    topics = [e["topic"] for e in app.bus.replay(before, [], 100)["events"]]
    assert topics == ["task.status_changed", "task.report", "mail.received"]


async def test_top_level_session_reports_to_the_human(app: App) -> None:
    tid = task(app)
    r = await report(app, "s-solo", tid, "blocked", "need credentials")
    assert r["mailed_to"] == "human"
    [m] = await call(app, None, "mail.inbox")
    assert m["priority"] == "high" and m["from_name"] == "solo"


async def test_exited_coordinator_gets_no_mail(app: App) -> None:
    pid = app.projects.resolve("proj")
    add_session(app, "s-orphan", pid, name="orphan", parent="s-gone")
    tid = task(app)
    r = await report(app, "s-orphan", tid, "progress", "still going")
    assert r["mail_id"] is None and r["mailed_to"] is None and "has exited" in r["note"]
    assert r["task"]["status"] == "in_progress"


async def test_refusals(app: App) -> None:
    tid = task(app)
    err = await call_err(app, None, "task.report", {"task": tid, "status": "progress", "message": "x"})
    assert err.code == errors.FORBIDDEN and "task update" in err.message
    other = task(app, project="other")
    err = await call_err(app, "s-w1", "task.report", {"task": other, "status": "progress", "message": "x"})
    assert err.code == errors.FORBIDDEN and "project" in err.message
    err = await call_err(app, "s-w1", "task.report", {"task": tid, "status": "done", "message": "x"})
    assert err.code == errors.INVALID_PARAMS and "progress|blocked|complete|error" in err.message
    err = await call_err(app, "s-w1", "task.report", {"task": tid, "status": "progress", "message": " "})
    assert err.code == errors.INVALID_PARAMS
    err = await call_err(app, "s-w1", "task.report", {"task": "t-nope", "status": "progress", "message": "x"})
    assert err.code == errors.NOT_FOUND
    err = await call_err(app, "s-w1", "task.report", {"task": tid, "status": "progress",
                                                       "message": "x" * (70 * 1024)})
    assert err.code == errors.TOO_LARGE
    # a refused report changed nothing
    assert app.tasks.get(tid).status == "todo"
    assert app.db.conn.execute("SELECT COUNT(*) FROM session_tasks WHERE task_id=?", (tid,)).fetchone()[0] == 0
