"""Sessions you can trust, housekeeping: unique live names, `session delete|prune`, `project delete --cascade`
with sessions, `session history`, `session explain` (policy and rendering), `session output --tail`.

The daemon side runs in-process over the real socket (``daemon``/``client`` fixtures); the CLI is the real
``maestroctl``.  The renderings of ``history`` and ``explain`` are also checked on canned results.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from maestroctl.commands import session_admin
from maestroctl.commands.session_admin import (plain_text, read_tail, render_explain, render_history,
                                               tail_start)
from shared import errors
from shared.convert import structure_params
from shared.messages.session import SessionHistory, SessionPrune, parse_duration
from tests.conftest import (Daemon, EventLog, RawClient, add_project, insert_session, maestroctl_env,
                            wait_screen)
from tests.session_support import _agent, _ctl, _error, _project, _spawn


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _clock(ts: str) -> str:
    return datetime.fromisoformat(ts).astimezone().strftime("%H:%M:%S")


async def _exited(client: RawClient, events: EventLog, name: str, **kw: Any) -> dict[str, Any]:
    """A session whose program exits at once (status 0), once it has exited."""
    s = await _spawn(client, ["sh", "-c", "exit 0"], name=name, **kw)
    await events.status(s["id"], "exited")
    return s


# -- names are unique among the live sessions of a project ---------------------------------------------


async def test_check_name_free_counts_only_live_sessions_of_the_project(daemon: Daemon) -> None:
    app = daemon.app
    p, q = add_project(app, "p"), add_project(app, "q")
    insert_session(app, "s-aaaaaa", p, name="w", status="idle")
    insert_session(app, "s-bbbbbb", p, name="old", status="exited")
    store = app.session_store
    with pytest.raises(errors.RpcError) as exc:
        store.check_name_free(p, "w")
    assert exc.value.code == errors.CONFLICT
    assert "'w' is taken by live session s-aaaaaa (idle)" in exc.value.message
    assert exc.value.data == {"name": "w", "holder": "s-aaaaaa"}
    store.check_name_free(p, "old")  # an exited session's name may be reused
    store.check_name_free(q, "w")  # another project's live names do not count
    store.check_name_free(p, "new")


async def test_spawn_refuses_a_name_a_live_session_of_the_project_holds(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    await client.call("project.create", {"name": "q", "dir": str(short_tmp)})
    first = await _spawn(client, ["cat"], name="w")
    err = await _error(client, "session.spawn",
                       {"project": "p", "name": "w", "agent": "command", "argv": ["cat"]})
    assert err["code"] == errors.CONFLICT and f"live session {first['id']} (idle)" in err["message"]
    assert err["data"] == {"name": "w", "holder": first["id"]}
    assert [s["id"] for s in await client.call("session.list", {"project": "p"})] == [first["id"]]
    elsewhere = await _spawn(client, ["cat"], name="w", project="q")
    assert elsewhere["name"] == "w"
    await client.call("session.kill", {"id": first["id"]})
    again = await _spawn(client, ["cat"], name="w")  # the holder exited: the name is free
    assert again["id"] != first["id"] and again["status"] != "exited"


# -- session.delete ------------------------------------------------------------------------------------


async def test_delete_removes_an_exited_session_with_its_rows(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    app = daemon.app
    pid = await _project(client, short_tmp)
    task = await client.call("task.create", {"project": "p", "title": "t"})
    done = await _exited(client, events, "done", role="coordinator", task_ids=[task["id"]])
    sid = done["id"]
    child = insert_session(app, "s-c0ffee", pid, name="child", parent=sid, status="working")
    with app.db.transaction() as c:
        app.session_store.queue_prompt(c, sid, "left over", "send", "human", "human", False)
        c.execute("INSERT INTO transcript_checkpoints(session_id, path, checkpoint, updated_at) "
                  "VALUES (?,?,?,?)", (sid, "/x.jsonl", "{}", "2026-01-01T00:00:00.000Z"))
    assert app.session_store.history(sid, 100)

    mark = len(events.items)
    got = await client.call("session.delete", {"id": "done"})
    assert got["count"] == 1 and [(x["id"], x["name"], x["exit_reason"]) for x in got["deleted"]] == [
        (sid, "done", "completed")]
    err = await _error(client, "session.get", {"id": sid})
    assert err["code"] == errors.NOT_FOUND
    conn = app.db.conn
    for table in ("session_tasks", "session_prompts", "transcript_checkpoints"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id=?", (sid,)).fetchone()[0] == 0
    assert app.session_store.history(sid, 100) == []
    assert (await client.call("task.get", {"id": task["id"]}))["id"] == task["id"]  # tasks stay
    assert app.session_store.get(child).parent_id is None  # its worker stays, with no parent
    rows = [r for r in app.timeline.for_subject("project", pid) if r["type"] == "session.deleted"]
    assert [r["data"]["sessions"] for r in rows] == [[{"id": sid, "name": "done"}]]
    ev = await events.wait_for(lambda e: e["topic"] == "session.deleted", start=mark)
    assert ev["data"]["project_id"] == pid and ev["data"]["sessions"] == [{"id": sid, "name": "done"}]


async def test_delete_refuses_a_live_session_naming_it_and_its_status(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    live = await _spawn(client, ["cat"], name="busy")
    err = await _error(client, "session.delete", {"id": "busy"})
    assert err["code"] == errors.CONFLICT
    assert f"session {live['id']} (busy) is idle" in err["message"] and "stop it first" in err["message"]
    assert err["data"] == {"session": live["id"], "name": "busy", "status": "idle"}
    assert (await client.call("session.get", {"id": live["id"]}))["status"] == "idle"
    err = await _error(client, "session.delete", {"id": "s-nothere"})
    assert err["code"] == errors.NOT_FOUND
    err = await _error(client, "session.delete", {"id": live["id"], "force": True})
    assert err["code"] == errors.INVALID_PARAMS and "force: unknown field" in err["message"]

    env = maestroctl_env(daemon.socket_path)
    out = await _ctl(env, "session", "delete", live["id"], code=1)
    assert f"error {errors.CONFLICT}" in out and "(busy) is idle" in out
    await client.call("session.kill", {"id": live["id"]})
    assert await _ctl(env, "session", "delete", live["id"]) == f"deleted {live['id']} (busy)\n"


async def test_an_agent_deletes_and_prunes_only_below_itself(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    coord_id, coord, _ = await _agent(daemon, client, "coord", role="coordinator")
    mine = await _exited(coord, events, "mine")
    assert mine["parent_id"] == coord_id
    sibling = await _exited(client, events, "sibling")  # top-level, like coord: its sibling
    err = await _error(coord, "session.delete", {"id": sibling["id"]})
    assert err["code"] == errors.FORBIDDEN
    assert f"may not delete session {sibling['id']} (sibling)" in err["message"]
    assert "its own subtree" in err["message"] and "is its sibling" in err["message"]
    got = await coord.call("session.prune")
    assert [x["id"] for x in got["deleted"]] == [mine["id"]]
    assert (await client.call("session.get", {"id": sibling["id"]}))["status"] == "exited"
    got = await client.call("session.prune")  # the human prunes everything exited
    assert [x["id"] for x in got["deleted"]] == [sibling["id"]]


# -- session.prune --------------------------------------------------------------------------------------


def test_durations() -> None:
    assert [parse_duration(t) for t in ("30m", "2h", "7d", "1w", "1d12h", "45s", " 2 h ")] == [
        1800, 7200, 7 * 86400, 7 * 86400, 36 * 3600, 45, 7200]
    for bad in ("", "7", "7x", "d", "1.5h", "-1d", "7d x", "1e3m"):
        with pytest.raises(ValueError, match="expected a duration such as 30m, 2h, 7d or 1w"):
            parse_duration(bad)
    with pytest.raises(ValueError, match="at most"):
        parse_duration("100000w")
    with pytest.raises(errors.RpcError) as exc:
        structure_params({"older_than": "7x"}, SessionPrune)
    assert exc.value.code == errors.INVALID_PARAMS
    assert "older_than: expected a duration such as 30m, 2h, 7d or 1w" in exc.value.message
    with pytest.raises(errors.RpcError) as exc:
        structure_params({"older_than": 7}, SessionPrune)
    assert "older_than: expected string, got number" in exc.value.message
    assert structure_params({"project": "p", "older_than": "2h"}, SessionPrune) == SessionPrune("p", "2h")
    with pytest.raises(errors.RpcError) as exc:
        structure_params({"id": "x", "limit": 0}, SessionHistory)
    assert "limit: must be between 1 and 10000, got 0" in exc.value.message


async def test_prune_by_project_and_age_leaves_live_sessions(
    daemon: Daemon, client: RawClient, short_tmp: Path
) -> None:
    app = daemon.app
    p, q = add_project(app, "p", str(short_tmp)), add_project(app, "q", str(short_tmp))
    old_p = insert_session(app, "s-a00001", p, name="old-p", status="exited")
    new_p = insert_session(app, "s-a00002", p, name="new-p", status="exited")
    old_q = insert_session(app, "s-a00003", q, name="old-q", status="exited")
    live = insert_session(app, "s-a00004", p, name="live", status="working")
    ten_days_ago = _iso(datetime.now(timezone.utc) - timedelta(days=10))
    with app.db.transaction() as c:  # test setup: sessions that exited long ago
        c.execute("UPDATE sessions SET exited_at=? WHERE id IN (?, ?)", (ten_days_ago, old_p, old_q))

    err = await _error(client, "session.prune", {"older_than": "7 days"})
    assert err["code"] == errors.INVALID_PARAMS
    assert "older_than: expected a duration" in err["data"]["errors"][0]
    err = await _error(client, "session.prune", {"project": "nope"})
    assert err["code"] == errors.NOT_FOUND

    got = await client.call("session.prune", {"project": "p", "older_than": "7d"})
    assert [x["id"] for x in got["deleted"]] == [old_p] and got["count"] == 1
    assert got["project_id"] == p and got["older_than"] == "7d"
    assert got["exited_before"] < _iso(datetime.now(timezone.utc) - timedelta(days=7, seconds=-5))
    got = await client.call("session.prune", {"older_than": "1w"})
    assert [x["id"] for x in got["deleted"]] == [old_q]
    got = await client.call("session.prune", {})
    assert [x["id"] for x in got["deleted"]] == [new_p]
    assert await client.call("session.prune", {}) == {
        "count": 0, "deleted": [], "kept": [], "project_id": None, "older_than": None, "exited_before": None}
    assert [s["id"] for s in await client.call("session.list")] == [live]
    for project, expected in ((p, [[old_p], [new_p]]), (q, [[old_q]])):
        rows = [r for r in app.timeline.for_subject("project", project) if r["type"] == "session.deleted"]
        assert [[s["id"] for s in r["data"]["sessions"]] for r in rows] == expected
        assert all(r["data"]["how"] == "prune" for r in rows)


async def test_prune_cli(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    app = daemon.app
    p = add_project(app, "p", str(short_tmp))
    gone = insert_session(app, "s-b00001", p, name="gone", status="exited")
    env = maestroctl_env(daemon.socket_path)
    out = await _ctl(env, "session", "prune", "--older-than", "7x", code=2)  # a usage error, in flags
    assert f"error {errors.INVALID_PARAMS}" in out and "--older-than: expected a duration such as 30m" in out
    assert await _ctl(env, "session", "prune", "--project", "p", "--older-than", "1h") == (
        "no exited sessions to remove\n")
    out = await _ctl(env, "session", "prune", "--project", "p")
    lines = out.splitlines()
    assert lines[0] == "removed 1 exited session(s):" and lines[1].split() == [
        "ID", "NAME", "PROJECT", "EXIT", "CODE", "EXITED"]
    assert lines[2].split()[:3] == [gone, "gone", p] and len(lines) == 3
    raw = json.loads(await _ctl(env, "--json", "session", "prune"))
    assert raw["count"] == 0 and raw["deleted"] == []


# -- project.delete with sessions --------------------------------------------------------------------------


async def test_project_delete_with_sessions(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    app = daemon.app
    pid = await _project(client, short_tmp)
    other = await client.call("project.create", {"name": "q", "dir": str(short_tmp)})
    parent_task = await client.call("task.create", {"project": "p", "title": "parent"})
    await client.call("task.create", {"project": "p", "title": "child", "parent": parent_task["id"]})
    done = await _exited(client, events, "done", role="coordinator", task_ids=[parent_task["id"]])
    worker = insert_session(app, "s-d00001", pid, name="worker", parent=done["id"], status="exited")
    elsewhere = insert_session(app, "s-d00002", other["id"], name="elsewhere", parent=done["id"],
                               status="exited")
    live = await _spawn(client, ["cat"], name="live")

    for cascade in (False, True):  # a live session stops the delete, cascade or not
        err = await _error(client, "project.delete", {"id": "p", "cascade": cascade})
        assert err["code"] == errors.CONFLICT
        assert f"1 live session(s): {live['id']} (live, idle)" in err["message"]
        assert err["data"] == {"live_sessions": [{"id": live["id"], "name": "live", "status": "idle"}]}
    await client.call("session.kill", {"id": live["id"]})
    err = await _error(client, "project.delete", {"id": "p"})
    assert err["code"] == errors.CONFLICT and "2 task(s) and 3 exited session(s)" in err["message"]
    assert err["data"] == {"tasks": 2, "sessions": 3}

    env = maestroctl_env(daemon.socket_path)
    raw = json.loads(await _ctl(env, "--json", "project", "delete", "p", "--cascade"))
    assert raw == {"deleted": pid, "tasks_deleted": 2, "sessions_deleted": 3}
    for sid in (done["id"], worker, live["id"]):
        assert (await _error(client, "session.get", {"id": sid}))["code"] == errors.NOT_FOUND
    assert (await _error(client, "project.get", {"id": pid}))["code"] == errors.NOT_FOUND
    assert app.session_store.get(elsewhere).parent_id is None  # another project's session stays
    row = next(r for r in app.timeline.for_subject("project", pid) if r["type"] == "project.deleted")
    assert row["data"]["sessions_deleted"] == 3
    assert sorted(row["data"]["sessions"]) == sorted([done["id"], worker, live["id"]])


async def test_project_with_only_exited_sessions_deletes_with_cascade(
    daemon: Daemon, client: RawClient
) -> None:
    """It used to fail with -32603 (a foreign key) once the project had ever had a session."""
    app = daemon.app
    pid = add_project(app, "p")
    insert_session(app, "s-e00001", pid, name="x", status="exited")
    err = await _error(client, "project.delete", {"id": pid})
    assert err["code"] == errors.CONFLICT and "0 task(s) and 1 exited session(s)" in err["message"]
    got = await client.call("project.delete", {"id": pid, "cascade": True})
    assert got == {"deleted": pid, "tasks_deleted": 0, "sessions_deleted": 1}
    assert app.db.conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0


# -- session.history ------------------------------------------------------------------------------------


async def test_history_lists_the_timeline_and_the_prompts(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _spawn(client, ["cat"], name="h")
    sid = s["id"]
    sent = await client.call("session.prompt", {"id": sid, "message": "hello there"})
    await client.call("session.input", {"id": sid, "text": "x"})
    got = await client.call("session.history", {"id": "h"})
    assert got["id"] == sid and got["name"] == "h"
    types = [e["type"] for e in got["entries"]]
    assert types[0] == "session.spawned" and "session.status" in types
    assert types.index("session.prompt") < types.index("session.input")
    status = next(e for e in got["entries"] if e["type"] == "session.status")
    assert status["data"]["to"] == "idle"
    [prompt] = got["prompts"]
    assert prompt["id"] == sent["prompt_id"] and prompt["text"] == "hello there"
    assert prompt["state"] in ("delivered", "confirmed") and prompt["sender"] == "human"
    last_two = await client.call("session.history", {"id": sid, "limit": 2})
    assert last_two["entries"] == got["entries"][-2:]
    err = await _error(client, "session.history", {"id": sid, "limit": 0})
    assert err["code"] == errors.INVALID_PARAMS and "limit: must be between 1 and 10000" in err["message"]

    env = maestroctl_env(daemon.socket_path)
    out = (await _ctl(env, "session", "history", sid)).splitlines()
    assert out[0] == f"# {sid} (h): {len(types)} timeline row(s)"
    assert len(out) == 1 + len(types)
    assert all(re.match(r"\d\d:\d\d:\d\d  \S+  \S", line) for line in out[1:]), out
    assert out[1].startswith(_clock(got["entries"][0]["at"]) + "  spawned  command worker \"h\"")
    assert any(re.search(r"  status  \S+ -> idle", line) for line in out)
    prompt_line = next(line for line in out if "  prompt  " in line)
    assert prompt_line.endswith(f"#{prompt['id']} from human, 11 chars: \"hello there\"  [{prompt['state']}]")
    assert any(line.endswith('  input  1 byte(s): "x"  by human') for line in out)
    raw = json.loads(await _ctl(env, "--json", "session", "history", sid, "--limit", "1"))
    assert raw["entries"] == got["entries"][-1:] and raw["prompts"] == got["prompts"]


async def test_history_and_explain_need_read(
    daemon: Daemon, client: RawClient, short_tmp: Path
) -> None:
    await _project(client, short_tmp)
    await client.call("project.create", {"name": "q", "dir": str(short_tmp)})
    target = await _spawn(client, ["cat"], name="target")
    _, stranger, _ = await _agent(daemon, client, "stranger", project="q")  # another project: unrelated
    for method in ("session.history", "session.explain"):
        err = await _error(stranger, method, {"id": target["id"]})
        assert err["code"] == errors.FORBIDDEN and "may not read" in err["message"], err
        err = await _error(client, method, {"id": "s-nothere"})
        assert err["code"] == errors.NOT_FOUND


async def test_explain_cli_renders_the_daemons_answer(
    daemon: Daemon, client: RawClient, short_tmp: Path
) -> None:
    """Only that the human form fits the real answer (what explain decides is the status machine's test)."""
    await _project(client, short_tmp)
    s = await _spawn(client, ["cat"], name="plain")
    env = maestroctl_env(daemon.socket_path)
    raw = json.loads(await _ctl(env, "--json", "session", "explain", "plain"))
    assert raw["id"] == s["id"] and raw["screen_rules"] is None and raw["queued_prompts"] == 0
    out = (await _ctl(env, "session", "explain", "plain")).splitlines()
    assert out[0] == f"{s['id']} (plain)"
    assert "  screen rules  no screen rules apply to this program" in out
    assert any(line.startswith("    process     ProcessStarted  (") for line in out)


HISTORY: dict[str, Any] = {
    "id": "s-4f2a9c",
    "name": "worker-1",
    "entries": [
        {"id": 1, "at": "2026-01-01T12:00:00.000Z", "actor": "human", "type": "session.spawned",
         "data": {"name": "worker-1", "role": "worker", "agent": "claude", "cwd": "/w", "parent_id": None}},
        {"id": 2, "at": "2026-01-01T12:00:03.250Z", "actor": "system", "type": "session.status",
         "data": {"from": "idle", "to": "waiting_input", "source": "screen",
                  "reason": "Claude Code asks whether to trust /w"}},
        {"id": 3, "at": "2026-01-01T12:00:04.000Z", "actor": "system", "type": "session.needs_attention",
         "data": {"reason": "Claude Code asks whether to trust /w", "needs_attention": True,
                  "source": "screen"}},
        {"id": 4, "at": "2026-01-01T12:00:05.000Z", "actor": "human", "type": "session.prompt",
         "data": {"prompt_id": 7, "source": "human", "mode": "send", "chars": 9, "now": False,
                  "text": "fix\nthe bug"}},
        {"id": 5, "at": "2026-01-01T12:00:06.000Z", "actor": "s-4f2a9c", "type": "session.hook",
         "data": {"event": "PreToolUse", "tool_name": "Bash"}},
        {"id": 6, "at": "2026-01-01T12:00:07.000Z", "actor": "human", "type": "session.input",
         "data": {"bytes": 1, "key": "escape", "interrupt": True}},
        {"id": 7, "at": "2026-01-01T12:00:08.000Z", "actor": "human", "type": "session.attach",
         "data": {"attached": False, "reason": "detached", "viewers": 0}},
        {"id": 8, "at": "2026-01-01T12:00:09.000Z", "actor": "s-4f2a9c", "type": "session.prompt_delivered",
         "data": {"prompt_id": 6, "source": "agent:s-1", "witness": "hook"}},
        {"id": 9, "at": "2026-01-01T12:00:10.000Z", "actor": "system", "type": "session.status",
         "data": {"from": "idle", "to": "exited", "source": "process", "exit_reason": "completed",
                  "exit_code": 0, "reason": "the process exited (completed, code 0)"}},
    ],
    "prompts": [
        {"id": 7, "sender": "human", "mode": "send", "state": "queued",
         "held": "a dialog is open: trust-folder",
         "created_at": "2026-01-01T12:00:05.000Z", "delivered_at": None, "confirmed_at": None, "text": "fix"},
    ],
}


def test_history_rendering() -> None:
    lines = render_history(HISTORY).splitlines()
    c = [_clock(e["at"]) for e in HISTORY["entries"]]
    assert lines == [
        "# s-4f2a9c (worker-1): 9 timeline row(s)",
        f'{c[0]}  spawned  claude worker "worker-1" in /w  by human',
        f"{c[1]}  status  idle -> waiting_input  (screen: Claude Code asks whether to trust /w)",
        f'{c[2]}  needs_attention  "Claude Code asks whether to trust /w"  (screen)',
        f'{c[3]}  prompt  #7 from human, 9 chars: "fix the bug"'
        "  [queued, held: a dialog is open: trust-folder]",
        f"{c[4]}  hook  PreToolUse tool_name=Bash",
        f"{c[5]}  input  key escape (interrupt)  by human",
        f"{c[6]}  attach  a viewer detached: detached (0 viewing)  by human",
        f"{c[7]}  prompt_delivered  #6 confirmed by hook (from agent:s-1)",
        f"{c[8]}  status  idle -> exited (completed, code 0)"
        "  (process: the process exited (completed, code 0))",
        "queued prompts: #7 from human (held: a dialog is open: trust-folder)",
    ]


# -- session explain: the rendering (the end-to-end test is the lead's) ------------------------------------

EXPLAIN: dict[str, Any] = {
    "id": "s-4f2a9c",
    "name": "worker-1",
    "status": "waiting_input",
    "reason": "Claude Code asks whether to trust /w",
    "source": "screen",
    "witness": "screen:trust-folder",
    "needs_attention": "Claude Code asks whether to trust /w",
    "attention_source": "screen",
    "gate": {"open": False, "reason": "a dialog is open: trust-folder"},
    "witnesses": {
        "process": {"observation": "ProcessStarted", "age_s": 12.5},
        "hooks": {"observation": "HookSeen", "event": "SessionStart", "age_s": 3700.0},
        "transcript": None,
        "screen": {"observation": "ScreenSeen", "kind": "dialog", "rule": "trust-folder",
                   "reason": "Claude Code asks whether to trust /w", "age_s": 0.4},
        "person": None,
    },
    "screen_rules": "claude v1 (/etc/maestro/screens/claude.toml)",
    "queued_prompts": 2,
    "held": "a dialog is open: trust-folder",
}


def test_explain_rendering_with_screen_rules() -> None:
    assert render_explain(EXPLAIN).splitlines() == [
        "s-4f2a9c (worker-1)",
        "  status        waiting_input: Claude Code asks whether to trust /w",
        "  decided by    screen:trust-folder",
        "  attention     Claude Code asks whether to trust /w  (from screen)",
        "  prompt gate   closed: a dialog is open: trust-folder",
        "  queued        2 prompt(s); the first waits: a dialog is open: trust-folder",
        "  screen rules  claude v1 (/etc/maestro/screens/claude.toml)",
        "  rule matched  trust-folder (dialog): Claude Code asks whether to trust /w",
        "  witnesses (each source's latest observation):",
        "    process     ProcessStarted  (12.5 s ago)",
        "    hooks       HookSeen event=SessionStart  (1h 1m ago)",
        "    transcript  nothing seen yet",
        "    screen      ScreenSeen kind=dialog rule=trust-folder"
        ' reason="Claude Code asks whether to trust /w"  (0.4 s ago)',
        "    person      nothing seen yet",
    ]


NO_RULES_GATE = "no screen rules apply to this program: it takes input while it runs"


def test_explain_rendering_without_screen_rules() -> None:
    plain = {
        **EXPLAIN, "name": "shell", "status": "idle",
        "reason": "the process runs (no witness reports its turns)",
        "source": "process", "witness": "process",
        "needs_attention": None, "attention_source": None, "queued_prompts": 0, "held": None,
        "gate": {"open": True, "reason": NO_RULES_GATE},
        "witnesses": {"process": {"observation": "ProcessStarted", "age_s": 75.0}, "hooks": None,
                      "transcript": None, "screen": None,
                      "person": {"observation": "PersonTyped", "age_s": 1.0}},
        "screen_rules": None,
    }
    lines = render_explain(plain).splitlines()
    assert "  screen rules  no screen rules apply to this program" in lines
    assert not any("rule matched" in line for line in lines)
    assert "  attention     none" in lines and "  queued        0 prompt(s)" in lines
    assert "  decided by    process" in lines
    assert f"  prompt gate   open: {NO_RULES_GATE}" in lines
    assert "    process     ProcessStarted  (1m 15s ago)" in lines
    assert "    person      PersonTyped  (1.0 s ago)" in lines


# -- session output --tail -----------------------------------------------------------------------------


class FakeOutput:
    """``session.output`` over bytes ``start..start+len(held)``, giving at most ``most`` bytes per call."""

    def __init__(self, held: bytes, start: int = 0, most: int = 1 << 20) -> None:
        self.held, self.start, self.most = held, start, most
        self.calls = 0

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert method == "session.output" and 1 <= params["limit"] <= 1 << 20
        self.calls += 1
        total = self.start + len(self.held)
        offset = min(max(params["offset"], self.start), total)
        chunk = self.held[offset - self.start:][: min(params["limit"], self.most)]
        return {"id": "s-1", "offset": offset, "next_offset": offset + len(chunk), "total": total,
                "start": self.start, "truncated": offset > params["offset"],
                "data": base64.b64encode(chunk).decode()}


def _lines(r: dict[str, Any]) -> bytes:
    return base64.b64decode(r["data"])


def test_tail_start() -> None:
    assert tail_start(b"a\nb\nc\n", 2) == 2 and tail_start(b"a\nb\nc", 2) == 2
    assert tail_start(b"a\nb\nc\n", 3) is None and tail_start(b"", 1) is None
    assert tail_start(b"\nx", 1) == 1


def test_read_tail_grows_its_window_until_it_has_the_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_admin, "OUTPUT_MAX", 4096)  # several calls per window
    held = b"".join(b"line %d\r\n" % i for i in range(1, 20001)) + b"prompt$ "
    fake = FakeOutput(held, most=3000)
    r = read_tail(fake, "x", 3)
    assert _lines(r) == b"line 19999\r\nline 20000\r\nprompt$ " and r["lines"] == 3
    assert r["next_offset"] == r["total"] == len(held) and r["offset"] == len(held) - len(_lines(r))
    assert not r["truncated"]
    r = read_tail(fake, "x", 15000)
    assert _lines(r).startswith(b"line 5002\r\n") and r["lines"] == 15000
    r = read_tail(fake, "x", 10**6)
    assert _lines(r) == held and r["lines"] == 20001 and not r["truncated"]


def test_read_tail_when_the_scrollback_dropped_the_beginning() -> None:
    held = b"ne 1\r\nline 2\r\nline 3\r\n"
    r = read_tail(FakeOutput(held, start=1000), "x", 10)
    assert _lines(r) == held and r["lines"] == 3 and r["truncated"]
    assert r["offset"] == 1000 and r["start"] == 1000
    assert read_tail(FakeOutput(b""), "x", 5)["lines"] == 0


def test_plain_text_strips_escapes_and_applies_carriage_returns() -> None:
    raw = (b"\x1b[?2004h\x1b]0;title\x07\x1b[1;31mred\x1b[0m \xe2\x9c\x93\r\n50%\r100%\r\n"
           b"\x1b(Bok\x1b[K\x07\r\nbad \xff byte\r\n")
    assert plain_text(raw) == "red \u2713\n100%\nok\nbad \ufffd byte\n"


async def test_output_tail_cli(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    script = "seq -f 'line %g' 1 3000; printf '\\033[31mred\\033[0m\\n50%%\\r100%%\\n'; exec cat"
    s = await _spawn(client, ["sh", "-c", script], name="out")
    await wait_screen(daemon.app, s["id"], lambda t: "100%" in t)
    env = maestroctl_env(daemon.socket_path)
    assert await _ctl(env, "session", "output", "out", "--tail", "4") == "line 2999\nline 3000\nred\n100%\n"
    r = json.loads(await _ctl(env, "--json", "session", "output", "out", "--tail", "2"))
    assert base64.b64decode(r["data"]) == b"\x1b[31mred\x1b[0m\r\n50%\r100%\r\n"
    assert r["lines"] == 2 and r["id"] == s["id"] and r["next_offset"] == r["total"]
    everything = await _ctl(env, "session", "output", "out", "--tail", "100000")
    assert everything.startswith("line 1\nline 2\n") and everything.count("\n") == 3002
    err = await _ctl(env, "session", "output", "out", "--tail", "0", code=2)
    assert "--tail must be at least 1" in err
    err = await _ctl(env, "session", "output", "out", "--tail", "2", "--offset", "5", code=2)
    assert "give --tail or --offset, not both" in err
