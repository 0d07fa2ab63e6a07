"""Live digests in the daemon: events, escalation, the turn-state hook, the RPC methods over a real socket,
and the coordinator context (rendering, budget, hook injection)."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import trio

from maestrod.transcripts.context import estimate_tokens
from shared.transcript.events import parse_timestamp
from tests.conftest import Daemon, RawClient
from tests.test_digest_service_support import (
    FAILING,
    Events,
    add_project,
    add_session,
    append,
    appended,
    bash,
    failing_bash,
    make_app,
    prompt,
    say,
    ts,
)

ATTENTION = "session.needs_attention"


async def watched_worker(daemon: Daemon, tmp_path: Path, data: bytes = b"", **session: Any) -> tuple[Events, Path]:
    """Session ``s-w`` with the transcript ``w.jsonl`` holding ``data``, watched and read; the events from
    before the watch on."""
    events = Events(daemon.app)
    path = tmp_path / "w.jsonl"
    path.write_bytes(data)
    add_session(daemon.app, "s-w", path, **session)
    daemon.app.transcripts.watch("s-w", str(path))
    assert await daemon.app.transcripts.sync("s-w")
    return events, path


# --------------------------------------------------------------------------------------------------------
# Events and escalation


async def test_three_failed_bash_calls_raise_needs_attention_at_once(daemon: Daemon, tmp_path: Path) -> None:
    app = daemon.app
    events, path = await watched_worker(daemon, tmp_path, name="worker")

    append(path, prompt("run the tests", 0) + failing_bash(2, 1))
    assert await app.transcripts.sync("s-w")
    assert events.of(ATTENTION, "s-w") == []
    mark = len(events.items)
    append(path, failing_bash(1, 10))
    raised = await events.wait_data(ATTENTION, sid="s-w", start=mark)
    assert raised["needs_attention"] is True and raised["kind"] == "failures"
    assert raised["reason"].startswith("3 consecutive failed tool calls (last: Bash: npm test ✗ exit 1")
    assert raised["name"] == "worker" and raised["source"] == "transcript"
    # the same poll published the entries; the urgent event went first
    topics = [e["topic"] for e in events.items[mark:]]
    assert topics.index(ATTENTION) < topics.index("session.digest")
    row = app.db.conn.execute("SELECT needs_attention FROM sessions WHERE id='s-w'").fetchone()
    assert row[0] == raised["reason"]
    timeline = app.timeline.for_subject("session", "s-w")
    assert any(t["type"] == ATTENTION and t["data"]["reason"] == raised["reason"] for t in timeline)
    failures = [e for e in appended(events, "s-w") if e["is_error"]]
    assert failures and all("✗ exit 1" in e["summary"] for e in failures)

    mark = len(events.items)
    append(path, bash("ok1", "npm test", "all green", False, 20))
    cleared = await events.wait_data(ATTENTION, sid="s-w", start=mark)
    assert cleared["needs_attention"] is False and cleared["reason"] is None
    assert app.db.conn.execute("SELECT needs_attention FROM sessions WHERE id='s-w'").fetchone()[0] is None


async def test_a_reason_set_by_the_hooks_is_not_cleared_by_the_transcript(daemon: Daemon, tmp_path: Path) -> None:
    app = daemon.app
    events, path = await watched_worker(daemon, tmp_path, prompt("go", 0) + failing_bash(3, 1))
    await events.wait_data(ATTENTION, lambda d: d["needs_attention"], sid="s-w")
    with app.db.transaction() as c:
        c.execute("UPDATE sessions SET needs_attention='Claude needs your permission' WHERE id='s-w'")
    mark = len(events.items)
    append(path, bash("ok", "ls", "a b", False, 9))
    await events.wait_data(ATTENTION, lambda d: not d["needs_attention"], sid="s-w", start=mark)
    row = app.db.conn.execute("SELECT needs_attention FROM sessions WHERE id='s-w'").fetchone()
    assert row[0] == "Claude needs your permission"


async def test_every_change_is_pushed_with_its_entries(daemon: Daemon, tmp_path: Path) -> None:
    events, path = await watched_worker(daemon, tmp_path)
    lines = [prompt("hello", 0), say("I found the bug in the parser. Then I fixed it.", 1), bash("b1", "false", "Exit code 1", True, 2),
             bash("b2", "false", "Exit code 1", True, 3)]
    for line in lines:
        mark = len(events.items)
        append(path, line)
        await events.wait_data("session.digest", sid="s-w", start=mark)
    got = appended(events, "s-w")
    assert [e["summary"] for e in got] == ["[PROMPT] hello", "I found the bug in the parser.", "Bash: false ✗ exit 1"]
    grown = [e for d in events.of("session.digest", "s-w") for e in d["updated"]["tools"]]
    assert grown and grown[-1]["count"] == 2 and grown[-1]["seq"] == 2, "a repeat grows the entry (×2)"
    last = events.of("session.digest", "s-w")[-1]
    assert last["total_entries"] == {"tools": 3, "text": 2}
    assert last["usage"]["output_tokens"] > 0 and last["state"] == "working"
    text = [e["summary"] for d in events.of("session.digest", "s-w") for e in d["appended"]["text"]]
    assert text == ["[PROMPT] hello", "I found the bug in the parser."]


async def test_turn_state_reaches_the_session_manager(daemon: Daemon, tmp_path: Path) -> None:
    app = daemon.app
    states: list[tuple[str, str, float | None]] = []
    assert app.transcripts.transcript_state == app.sessions.transcript_state  # wired at start-up
    app.transcripts.transcript_state = lambda sid, state, age: states.append((sid, state, age))
    # Each state comes with the age of the newest record it rests on (the wall clock pinned at 14:00:10).
    app.transcripts.clock = lambda: parse_timestamp(ts(10)) or 0.0
    try:
        _events, path = await watched_worker(daemon, tmp_path)
        append(path, prompt("go", 0))
        assert await app.transcripts.sync("s-w")
        assert states == [("s-w", "working", 10.0)]
        ask = (b'{"type":"assistant","uuid":"q1","timestamp":"2026-01-01T14:00:03.000Z","isSidechain":false,'
               b'"requestId":"rq","message":{"id":"mq","model":"claude-sonnet-4-5","content":[{"type":"tool_use",'
               b'"id":"ask1","name":"AskUserQuestion","input":{"questions":[{"question":"Which DB?"}]}}]}}\n')
        append(path, ask)
        assert await app.transcripts.sync("s-w")
        assert states == [("s-w", "working", 10.0), ("s-w", "waiting_input", 7.0)]
    finally:
        app.transcripts.transcript_state = app.sessions.transcript_state
        app.transcripts.clock = time.time


async def test_prompts_read_from_the_transcript_reach_the_session_manager(daemon: Daemon, tmp_path: Path) -> None:
    """A prompt's ``user`` record is a witness of delivery, like the UserPromptSubmit hook."""
    app = daemon.app
    got: list[tuple[str, str]] = []
    assert app.transcripts.transcript_prompt == app.sessions.transcript_prompt  # wired at start-up
    app.transcripts.transcript_prompt = lambda sid, text: got.append((sid, text))
    try:
        _events, path = await watched_worker(daemon, tmp_path)
        append(path, prompt("fix the parser\nand the tests", 0) + say("On it.", 1))
        assert await app.transcripts.sync("s-w")
        assert got == [("s-w", "fix the parser\nand the tests")]
    finally:
        app.transcripts.transcript_prompt = app.sessions.transcript_prompt


async def test_exit_unwatches_and_keeps_the_digest(daemon: Daemon, tmp_path: Path) -> None:
    app = daemon.app
    data = prompt("go", 0) + say("Finished the job.", 1)
    # the last line lacks its newline, as in many captured files
    _events, path = await watched_worker(daemon, tmp_path, data[:-1])
    assert [e.summary for e in app.transcripts.digest("s-w").entries()] == ["[PROMPT] go"]  # type: ignore[union-attr]
    app.record("system", "session", "s-w", "session.status", {"to": "exited"},
               event={"session_id": "s-w", "to": "exited"})
    with trio.fail_after(5):
        while "s-w" in app.transcripts.watched():
            await trio.sleep(0.01)
    digest = app.transcripts.digest("s-w")
    assert digest is not None
    assert [e.summary for e in digest.entries()] == ["[PROMPT] go", "Finished the job."], \
        "a closed file's unterminated last line counts"
    saved = app.db.conn.execute("SELECT path FROM transcript_checkpoints WHERE session_id='s-w'").fetchone()
    assert saved[0] == str(path)


# --------------------------------------------------------------------------------------------------------
# The methods, over the socket


async def test_session_digest_method(daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    app = daemon.app
    path = tmp_path / "w.jsonl"
    path.write_bytes(FAILING.read_bytes())
    add_session(app, "s-w1", path, name="api")
    # not watched by anyone yet: the call starts watching it (the row says it is running)
    r = await client.call("session.digest", {"id": "api"})
    assert r["id"] == r["session_id"] == "s-w1" and r["name"] == "api" and r["status"] == "working"
    assert r["mode"] == "tools" and r["total_entries"] == 12 and len(r["entries"]) == 12
    assert r["claude_session_id"] and r["stats"]["lines"] > 0
    assert any(e["is_error"] and e["summary"].startswith("Bash: false ✗ exit 1") for e in r["entries"])
    assert "s-w1" in app.transcripts.watched()
    r = await client.call("session.digest", {"id": "s-w1", "mode": "text", "last": 2})
    assert [e["kind"] for e in r["entries"]] == ["text", "text"] and r["total_entries"] == 4
    r = await client.call("session.digest", {"id": "s-w1", "last": 0})
    assert r["entries"] == [] and r["usage"]["input_tokens"] > 0

    bad = await client.request("session.digest", {"id": "s-nope"})
    assert bad["error"]["code"] == -32001
    bad = await client.request("session.digest", {"id": "s-w1", "mode": "words"})
    assert bad["error"]["code"] == -32602
    add_session(app, "s-cmd", None, name="sh", agent="command")
    bad = await client.request("session.digest", {"id": "s-cmd"})
    assert bad["error"]["code"] == -32002 and "runs a command" in bad["error"]["message"]


async def test_an_exited_sessions_digest_is_read_from_its_file(daemon: Daemon, client: RawClient,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_bytes(FAILING.read_bytes())
    add_session(daemon.app, "s-old", path, status="exited")
    r = await client.call("session.digest", {"id": "s-old", "last": 3})
    assert r["status"] == "exited" and r["state"] == "idle" and r["total_entries"] == 12
    assert "s-old" not in daemon.app.transcripts.watched()
    row = daemon.app.db.conn.execute("SELECT COUNT(*) FROM transcript_checkpoints").fetchone()
    assert row[0] == 1, "the digest is kept for next time"


async def test_session_usage_method(daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_bytes(FAILING.read_bytes())
    add_session(daemon.app, "s-w1", path)
    r = await client.call("session.usage", {"id": "s-w1"})
    assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0
    assert r["cost_usd"] > 0 and r["by_model"]
    assert sum(m["output_tokens"] for m in r["by_model"].values()) == r["usage"]["output_tokens"]


async def _as_session(daemon: Daemon, sid: str) -> RawClient:
    token = f"tok-{sid}"
    with daemon.app.db.transaction() as c:
        c.execute("UPDATE sessions SET token_hash=? WHERE id=?", (hashlib.sha256(token.encode()).hexdigest(), sid))
    c = await daemon.connect()
    assert (await c.call("system.auth", {"token": token}))["session_id"] == sid
    return c


async def test_session_digests_for_my_workers(daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    app = daemon.app
    add_session(app, "s-boss", None, role="coordinator", name="boss")
    for i in range(2):
        path = tmp_path / f"w{i}.jsonl"
        path.write_bytes(prompt(f"job {i}", 0) + say(f"Doing job {i}.", 1))
        add_session(app, f"s-w{i}", path, parent="s-boss", name=f"w{i}")
    add_session(app, "s-cmd", None, parent="s-boss", name="shell", agent="command")
    add_session(app, "s-other", tmp_path / "x.jsonl", name="other")
    boss = await _as_session(daemon, "s-boss")
    r = await boss.call("session.digests", {"my_workers": True, "last": 5})
    by_id = {s["id"]: s for s in r["sessions"]}
    assert sorted(by_id) == ["s-cmd", "s-w0", "s-w1"]
    assert by_id["s-w0"]["entries"][-1]["summary"] == "Doing job 0."
    assert by_id["s-cmd"]["digest"] is None
    r = await client.call("session.digests", {"ids": ["s-w1", "w0"], "mode": "text"})
    assert [s["name"] for s in r["sessions"]] == ["w1", "w0"]
    bad = await client.request("session.digests", {"my_workers": True})
    assert bad["error"]["code"] == -32602, "a human has no workers of its own"
    w0 = await _as_session(daemon, "s-w0")
    bad = await w0.request("session.digest", {"id": "s-boss"})
    assert bad["error"]["code"] == -32003, "a worker may not read its coordinator (policy: read)"
    bad = await w0.request("session.digest", {"id": "s-other"})
    assert bad["error"]["code"] == -32003


async def test_following_with_events_subscribe(daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_bytes(prompt("go", 0))
    add_session(daemon.app, "s-w", path)
    await client.call("events.subscribe", {"topics": ["session.digest"]})
    window = await client.call("session.digest", {"id": "s-w"})
    last_seq = window["entries"][-1]["seq"]
    append(path, say("Now something new.", 3))
    with trio.fail_after(10):
        while True:
            note = await client.next_notification()
            data = note["params"]["data"]
            new = [e for e in data["appended"]["tools"] if e["seq"] > last_seq]
            if new:
                break
    assert data["session_id"] == "s-w" and new[0]["summary"] == "Now something new."


# --------------------------------------------------------------------------------------------------------
# Coordinator context


def _team(app: Any, tmp_path: Path, workers: int = 3, steps: int = 30) -> None:
    pid = add_project(app)
    add_session(app, "s-boss", None, role="coordinator", name="boss")
    t1 = app.tasks.create(pid, "Build the API", "", "high", "in_progress", None, [])
    t2 = app.tasks.create(pid, "Write the schema", "", "medium", "todo", None, [])
    t3 = app.tasks.create(pid, "Old chore", "", "low", "completed", None, [])
    app.tasks.create(pid, "Someone else's task", "", "low", "todo", None, [])
    with app.db.transaction() as c:
        c.execute("INSERT INTO session_tasks VALUES ('s-boss', ?, 'assigned', '2026')", (t1.id,))
        c.execute("INSERT INTO session_tasks VALUES ('s-boss', ?, 'assigned', '2026')", (t3.id,))
    for i in range(workers):
        path = tmp_path / f"w{i}.jsonl"
        body = prompt(f"task for worker {i}", 0) + b"".join(
            say(f"Worker {i} step {n:02d} is done.", 1 + n * 2 + i * 0.1) for n in range(steps))
        if i == 0:
            body += failing_bash(3, 200)
        path.write_bytes(body)
        add_session(app, f"s-w{i}", path, parent="s-boss", name=f"worker-{i}")
        with app.db.transaction() as c:
            c.execute("INSERT INTO session_tasks VALUES (?, ?, 'assigned', '2026')", (f"s-w{i}", t2.id if i else t1.id))


async def _watch_team(app: Any, workers: int = 3) -> None:
    for i in range(workers):
        await app.transcripts.ensure(f"s-w{i}")


async def test_coordinator_context_within_budget(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    _team(app, tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        await _watch_team(app)
        big = app.transcripts.context.render("s-boss", 20_000)
        small = app.transcripts.context.render("s-boss", 400)
        nursery.cancel_scope.cancel()
    app.close()
    for ctx in (big, small):
        text = ctx.text
        assert text.startswith("<coordinator_context>\n<task_board>") and text.endswith("</coordinator_context>")
        assert "</task_board>\n<live_activity>" in text and "</live_activity>" in text
        assert ctx.tokens == estimate_tokens(text) and ctx.workers == 3
    assert small.tokens <= 400 < big.tokens
    assert big.trimmed_entries == 0 and small.trimmed_entries > 0
    # the worker in trouble comes first, with its reason
    first_worker = re.search(r"^## (\S+) \((s-\S+)\)", small.text, re.MULTILINE)
    assert first_worker is not None and first_worker.group(1) == "worker-0"
    assert "⚠ NEEDS ATTENTION: 3 consecutive failed tool calls" in small.text
    # oldest entries go first: every worker keeps its newest step
    assert "Bash: npm test ✗ exit 1" in small.text
    assert "Worker 1 step 29 is done." in small.text and "Worker 2 step 29 is done." in small.text
    assert "Worker 1 step 10 is done." not in small.text and "Worker 1 step 10 is done." in big.text
    assert "Worker 1 step 09 is done." not in big.text, "at most [digest] window entries per worker"
    # the board: the coordinator's tasks and its workers', most urgent first; other tasks left out
    board = big.text.split("<task_board>\n")[1].split("\n</task_board>")[0].splitlines()
    assert board[0] == "3 tasks: 1 in_progress, 1 todo, 1 completed"
    assert "[in_progress] !high Build the API — worker-0" in board[1]
    assert "[todo] Write the schema — worker-1, worker-2" in board[2]
    assert "[completed] Old chore" in board[3]
    assert "Someone else's task" not in big.text


async def test_context_coordinator_method(daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    app = daemon.app
    _team(app, tmp_path, workers=2, steps=3)
    r = await client.call("context.coordinator", {"id": "boss", "budget_tokens": 300})
    assert r["id"] == "s-boss" and r["workers"] == 2 and r["tokens"] <= 300
    assert "<live_activity>" in r["text"] and "worker-1" in r["text"]
    boss = await _as_session(daemon, "s-boss")
    mine = await boss.call("context.coordinator", {})
    assert mine["id"] == "s-boss"
    bad = await client.request("context.coordinator", {})
    assert bad["error"]["code"] == -32602
    bad = await client.request("context.coordinator", {"id": "boss", "budget_tokens": 1})
    assert bad["error"]["code"] == -32602


async def test_hooks_inject_the_context_into_coordinators_only(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    _team(app, tmp_path, workers=2, steps=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        await _watch_team(app, 2)
        # through the session manager's hook path, as `maestroctl hook UserPromptSubmit` reaches it
        out = await app.sessions.hook("s-boss", "UserPromptSubmit", {"prompt": "status?"})
        assert out["stdout"].startswith("<coordinator_context>")
        assert "Worker 1 step 01 is done." in out["stdout"]
        assert app.transcripts.context.user_prompt_context("s-w0") == "", "workers get nothing by default"
        assert app.transcripts.context.post_tool_context("s-boss") == "", "nothing new since the prompt"
        out = await app.sessions.hook("s-boss", "PostToolUse", {"tool_name": "Bash"})
        assert out["stdout"] == ""
        append(tmp_path / "w1.jsonl", say("Worker 1 found the bug.", 500))
        assert await app.transcripts.sync("s-w1")
        out = await app.sessions.hook("s-boss", "PostToolUse", {"tool_name": "Bash"})
        assert "Worker 1 found the bug." in out["stdout"]
        assert '"additionalContext"' in out["stdout"]
        assert app.transcripts.context.post_tool_context("s-boss") == "", "injected once per change"
        app.config.context.inject_workers = True
        injected = app.transcripts.context.user_prompt_context("s-w0")
        assert injected.startswith("<coordinator_context>"), "it has tasks"
        nursery.cancel_scope.cancel()
    app.close()
