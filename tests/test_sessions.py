"""Sessions in-process, over the real socket: plain programs and a scripted stand-in for Claude Code
(``FAKE_CLAUDE`` in conftest) that runs the real hook path (``maestroctl hook EVENT``).

Helpers shared by the session test modules are in ``tests/session_support.py``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from maestrod.app import App
from maestrod.sessions import claude, hook_intake
from maestrod.sessions.hooks import CONTEXT_EVENTS
from maestrod.sessions.manager import SessionManager
from shared import errors
from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient, maestroctl_env, wait_screen
from tests.session_support import _agent, _as, _ctl, _error, _fake_claude, _project, _spawn

# -- spawning, environment, family -------------------------------------------------------------------


async def test_spawn_env_and_family(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    task = await client.call("task.create", {"project": "p", "title": "t"})
    script = (
        "for v in SESSION_ID SESSION_TOKEN SOCKET PROJECT_ID TASK_IDS COORDINATOR_SESSION_ID "
        "ROOT_SESSION_ID; do eval echo $v=\\$MAESTRO_$v; done; echo CC=${CLAUDECODE-unset}; "
        "echo TERM=$TERM; exec cat"
    )
    os.environ["CLAUDECODE"] = "1"  # a daemon started from inside an agent must not pass this on
    try:
        s = await _spawn(
            client,
            ["sh", "-c", script],
            role="coordinator",
            task_ids=[task["id"]],
            env={"MAESTRO_SESSION_ID": "forged", "EXTRA": "x"},
        )
    finally:
        del os.environ["CLAUDECODE"]
    sid = s["id"]
    assert s["status"] == "idle" and s["root_id"] == sid and s["parent_id"] is None
    assert s["task_ids"] == [task["id"]] and s["pid"] > 0 and s["agent"] == "command"
    text = await wait_screen(daemon.app, sid, lambda t: "TERM=" in t)
    env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert env["SESSION_ID"] == sid and env["SOCKET"] == str(daemon.socket_path)
    assert env["PROJECT_ID"] == s["project_id"] and env["TASK_IDS"] == task["id"]
    assert env["COORDINATOR_SESSION_ID"] == "" and env["ROOT_SESSION_ID"] == sid
    assert env["CC"] == "unset" and env["TERM"] == "xterm-256color"
    token = env["SESSION_TOKEN"]
    # Only a hash of the token is stored.
    row = daemon.app.db.conn.execute("SELECT token_hash, env FROM sessions WHERE id=?", (sid,)).fetchone()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest() and token not in row["env"]
    assert daemon.app.token_lookup(token) == sid and daemon.app.token_lookup("nope") is None

    # An agent authenticated with its token spawns a worker: parent and root follow.
    agent = await _as(daemon, token)
    assert (await agent.call("system.whoami"))["session_id"] == sid
    child = await _spawn(agent, ["cat"], name="w1")
    assert child["parent_id"] == sid and child["root_id"] == sid
    grandchild = await _spawn(client, ["cat"], name="w2", parent=child["id"])
    assert grandchild["parent_id"] == child["id"] and grandchild["root_id"] == sid
    sibling = await _spawn(agent, ["cat"], name="w3")
    mine = await agent.call("session.list", {"my_workers": True})
    assert [x["id"] for x in mine] == [child["id"], sibling["id"]]
    assert await client.call("session.list", {"parent": sid}) == mine
    err = await _error(client, "session.list", {"my_workers": True})
    assert err["code"] == errors.INVALID_PARAMS and "inside" in err["message"]
    worker, worker_conn, _ = await _agent(daemon, agent, "w4")
    assert (await client.call("session.get", {"id": worker}))["parent_id"] == sid
    sibs = await worker_conn.call("session.list", {"siblings": True})
    assert [x["id"] for x in sibs] == [child["id"], sibling["id"]]
    spawned = next(
        e for e in events.items if e["topic"] == "session.spawned" and e["data"]["session"]["id"] == sid
    )
    assert spawned["data"]["actor"] == "human"


async def test_spawn_refusals(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    err = await _error(
        client,
        "session.spawn",
        {"project": "p", "name": "x", "cwd": str(short_tmp / "nope"), "agent": "command", "argv": ["cat"]},
    )
    assert err["code"] == errors.INVALID_PARAMS and "no such directory" in err["message"]
    err = await _error(client, "session.spawn", {"project": "p", "name": "x", "agent": "command", "argv": []})
    assert "a command is needed" in err["message"]
    err = await _error(
        client,
        "session.spawn",
        {"project": "p", "name": "x", "agent": "command", "argv": ["no-such-program-xyz"]},
    )
    assert "no such program" in err["message"]
    daemon.app.config.claude.bin = str(short_tmp / "missing-claude")
    err = await _error(client, "session.spawn", {"project": "p", "name": "x"})
    assert err["code"] == errors.UNAVAILABLE and "Claude Code not found" in err["message"]
    err = await _error(client, "session.spawn", {"project": "p", "name": "x", "rows": 0})
    assert err["code"] == errors.INVALID_PARAMS
    assert await client.call("session.list") == []


# -- the terminal: screen, input, resize, output ----------------------------------------------------


async def test_screen_input_resize_output(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    s = await _spawn(
        client, ["bash", "--norc", "--noprofile", "-i"], rows=24, cols=80, env={"PS1": "READY$ "}
    )
    sid = s["id"]
    await wait_screen(daemon.app, sid, lambda t: "READY$" in t)
    await client.call("session.input", {"id": sid, "text": "stty size; echo $((6*7))\r"})
    await wait_screen(daemon.app, sid, lambda t: "24 80" in t and "42" in t)
    await client.call("session.resize", {"id": "sh", "rows": 30, "cols": 100})
    await client.call("session.input", {"id": sid, "data": base64.b64encode(b"stty size\r").decode()})
    text = await wait_screen(daemon.app, sid, lambda t: "30 100" in t)
    screen = await client.call("session.screen", {"id": sid})
    assert screen["rows"] == 30 and screen["cols"] == 100 and len(screen["lines"]) == 30
    assert screen["text"] == text and screen["cursor"]["row"] == text.count("\n")
    got = await client.call("session.get", {"id": sid})
    assert (got["rows"], got["cols"]) == (30, 100)
    out = await client.call("session.output", {"id": sid, "offset": 0, "limit": 1 << 20})
    raw = base64.b64decode(out["data"])
    assert b"24 80" in raw and b"30 100" in raw and out["next_offset"] == out["total"] == len(raw)
    part = await client.call("session.output", {"id": sid, "offset": 5, "limit": 10})
    assert base64.b64decode(part["data"]) == raw[5:15] and part["next_offset"] == 15
    err = await _error(client, "session.input", {"id": sid})
    assert err["code"] == errors.INVALID_PARAMS
    hist = daemon.app.timeline.for_subject("session", sid)
    assert [h["type"] for h in hist].count("session.input") == 2
    assert any(h["type"] == "session.resized" and h["data"] == {"rows": 30, "cols": 100} for h in hist)


async def test_interrupt_plain_program_is_ctrl_c(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _spawn(
        client, ["sh", "-c", "trap 'echo got-INT; exit 4' INT; echo armed; while :; do sleep 0.05; done"]
    )
    await wait_screen(daemon.app, s["id"], lambda t: "armed" in t)
    assert (await client.call("session.interrupt", {"id": s["id"]}))["sent"] == "ctrl-c"
    ev = await events.status(s["id"], "exited")
    assert ev["data"]["exit_code"] == 4 and ev["data"]["exit_reason"] == "failed"
    assert "got-INT" in (await client.call("session.screen", {"id": s["id"]}))["text"]


async def test_a_query_answer_nobody_reads_does_not_break_the_daemon(
    daemon: Daemon, client: RawClient, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A program that asks the terminal (DA1) but does not read its input: the answer is given up on, quietly."""
    from maestrod.sessions import terminal_io

    monkeypatch.setattr(terminal_io, "WRITE_TIMEOUT", 0.3)
    await _project(client, short_tmp)
    script = "stty -icanon -echo; echo up; head -c 1 >/dev/null; printf '\\033[c'; exec sleep 30"
    s = await _spawn(client, ["sh", "-c", script])
    await wait_screen(daemon.app, s["id"], lambda t: "up" in t)
    # The first key makes it ask (DA1) while the rest fills the tty input and holds the write lock.
    err = await _error(client, "session.input", {"id": s["id"], "text": "x" * 200_000})
    assert err["code"] == errors.UNAVAILABLE and "not reading its input" in err["message"]
    await trio.sleep(0.6)  # the DA1 answer waited for the lock, then gave up too
    assert (await client.call("session.get", {"id": s["id"]}))["status"] == "idle"


# -- exit: codes, reasons, stop, kill ------------------------------------------------------------------


async def test_transcript_state_reaches_the_status_machine(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    """The third witness: the transcript's turn state moves the status where the hooks are blind (a lost
    UserPromptSubmit hook; an interrupted turn fires no Stop hook). The rules and races themselves are
    tested without I/O in test_status_machine.py."""
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, name="t")
    manager = daemon.app.sessions
    manager.transcript_state(s["id"], "working")
    ev = await events.status(s["id"], "working")
    assert ev["data"]["source"] == "transcript:working"
    mark = len(events.items)
    manager.transcript_state(s["id"], "interrupted")
    ev = await events.status(s["id"], "idle", start=mark)
    assert ev["data"]["source"] == "transcript:interrupted"
    # A plain program has no transcript witness: its status is the process's.
    cat = await _spawn(client, ["cat"], name="c")
    await events.status(cat["id"], "idle")
    manager.transcript_state(cat["id"], "working")
    assert (await client.call("session.explain", {"id": cat["id"]}))["status"] == "idle"


async def test_a_transcript_record_read_late_is_dated_when_it_was_written(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    """Claude Code flushes its transcript in batches: a turn's prompt record may be read after that turn's
    Stop hook started.  Dated when it was written, it is older than the hook and does not reopen the turn;
    a record written after the last hook is a turn whose hook was lost."""
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, name="late")
    why = await client.call("session.explain", {"id": s["id"]})
    assert why["witnesses"]["hooks"]["event"] == "SessionStart" and why["status"] == "idle"
    manager = daemon.app.sessions
    manager.transcript_state(s["id"], "working", 60.0)  # read now, written a minute ago: before that hook
    why = await client.call("session.explain", {"id": s["id"]})
    assert why["status"] == "idle" and why["source"] == "hook"
    assert why["witnesses"]["transcript"]["state"] == "working"
    assert why["witnesses"]["transcript"]["written_age_s"] >= 60.0
    manager.transcript_state(s["id"], "working", 0.0)  # written now, after the hook: its hook was lost
    ev = await events.status(s["id"], "working")
    assert ev["data"]["source"] == "transcript:working"


async def test_the_transcript_confirms_a_prompt_whose_hook_was_lost(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, env={"FAKE_NO_PROMPT_HOOK": "1"})
    sid = s["id"]
    first = await client.call("session.prompt", {"id": sid, "message": "one\ntwo"})
    assert first["state"] == "delivered", (first["held"], first["status"])
    await wait_screen(daemon.app, sid, lambda t: "prompt: one|two" in t)
    mark = len(events.items)
    await client.call("session.input", {"id": sid, "text": "\x07"})  # the turn ends: Stop
    await events.status(sid, "idle", start=mark)
    # No hook said the first prompt arrived: the next one waits for a confirmation.
    second = await client.call("session.prompt", {"id": sid, "message": "again"})
    assert second["state"] == "queued" and "confirm" in second["held"]
    mark = len(events.items)
    daemon.app.sessions.transcript_prompt(sid, "one\ntwo")  # what the transcript tailer reports
    ack = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered", start=mark)
    assert ack["data"]["prompt_id"] == first["prompt_id"] and ack["data"]["witness"] == "transcript"
    # ... and the queue moves on.
    await wait_screen(daemon.app, sid, lambda t: "prompt: again" in t)


async def test_a_person_typing_holds_other_prompts_back(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    target = await _spawn(client, ["cat"], name="cat")
    sid = target["id"]
    await events.status(sid, "idle")
    _worker, agent, _ = await _agent(daemon, client, "sender")
    await client.call("session.input", {"id": sid, "text": "typed by a person "})
    held = await agent.call("session.prompt", {"id": sid, "message": "from an agent"})
    assert held["state"] == "queued" and "person is typing" in held["held"]
    history = await client.call("session.history", {"id": sid})
    assert [p["held"] for p in history["prompts"]] == [held["held"]]
    await wait_screen(daemon.app, sid, lambda t: "from an agent" in t)  # typed once the person paused
    # A person's own prompt is not held back by their own typing.
    await client.call("session.input", {"id": sid, "text": "more "})
    mine = await client.call("session.prompt", {"id": sid, "message": "mine"})
    assert mine["state"] == "delivered"


def test_screen_rules_override_from_the_config_directory(short_tmp: Path) -> None:
    """A rule can be changed without a release: ``<config dir>/screens/<agent>.toml`` is read at start-up."""
    screens = short_tmp / "screens"
    screens.mkdir()
    (screens / "claude.toml").write_text(
        '[[rule]]\nname = "fake-banner"\nkind = "dialog"\nreason = "the fake asks"\n'
        "patterns = ['^fake claude$']\ntriggers = ['fake']\n")
    app = App(short_tmp / "data", short_tmp / "s.sock", screens_dir=screens)
    try:
        rules = app.sessions.screen_rules.get("claude")
        assert rules is not None and rules.sources[-1] == str(screens / "claude.toml")
        found = rules.match(["fake claude", "more"])
        assert found is not None and (found.rule, found.reason) == ("fake-banner", "the fake asks")
        assert rules.rule("trust-folder") is not None  # the built-in rules stay
    finally:
        app.close()


async def test_exit_codes_and_reasons(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    ok = await _spawn(client, ["sh", "-c", "echo bye"], name="ok")
    bad = await _spawn(client, ["sh", "-c", "exit 3"], name="bad")
    for sid, code, reason in ((ok["id"], 0, "completed"), (bad["id"], 3, "failed")):
        ev = await events.status(sid, "exited")
        assert ev["data"]["exit_code"] == code and ev["data"]["exit_reason"] == reason
        got = await client.call("session.get", {"id": sid})
        assert got["status"] == "exited" and got["exit_code"] == code and got["exited_at"]
    assert "bye" in (await client.call("session.screen", {"id": ok["id"]}))["text"]
    assert events.statuses(ok["id"]) == ["idle", "exited"]
    hist = [h["type"] for h in daemon.app.timeline.for_subject("session", ok["id"])]
    assert hist[0] == "session.spawned" and hist.count("session.status") == 2

    # Refused once exited.
    for method, params in (
        ("session.prompt", {"message": "hi"}),
        ("session.input", {"text": "x"}),
        ("session.resize", {"rows": 5, "cols": 5}),
    ):
        err = await _error(client, method, {"id": bad["id"], **params})
        assert err["code"] == errors.CONFLICT and "exited" in err["message"]


async def test_stop_escalates_hup_term_kill(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    daemon.app.config.sessions.stop_timeout = 0.2
    stubborn = await _spawn(
        client, ["sh", "-c", "trap '' HUP TERM; echo ready; while :; do sleep 0.05; done"], name="stubborn"
    )
    polite = await _spawn(client, ["sleep", "100"], name="polite")
    await wait_screen(daemon.app, stubborn["id"], lambda t: "ready" in t)
    start = trio.current_time()
    got = await client.call("session.stop", {"id": "stubborn"})
    assert got["status"] == "exited" and got["exit_reason"] == "stopped" and got["exit_code"] == -9
    assert 0.4 <= trio.current_time() - start < 3
    got = await client.call("session.stop", {"id": polite["id"]})
    assert got["exit_code"] == -1 and got["exit_reason"] == "stopped"  # SIGHUP was enough
    again = await client.call("session.stop", {"id": polite["id"]})
    assert again["status"] == "exited"  # idempotent
    hist = daemon.app.timeline.for_subject("session", stubborn["id"])
    stop = next(h for h in hist if h["type"] == "session.stop")
    assert stop["actor"] == "human" and stop["data"]["signals"] == ["HUP", "TERM", "KILL"]


async def test_kill_and_exit_within_a_second_whatever_hooks_said(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events)
    sid = s["id"]
    await client.call("session.prompt", {"id": sid, "message": "work"})
    await events.status(sid, "working")
    os.killpg(s["pid"], 9)  # dies mid-turn: no Stop, no SessionEnd
    start = trio.current_time()
    ev = await events.status(sid, "exited", timeout=1.0)
    assert trio.current_time() - start < 1.0
    assert ev["data"]["from"] == "working" and ev["data"]["exit_code"] == -9
    assert ev["data"]["exit_reason"] == "failed"
    k = await _spawn(client, ["cat"], name="k")
    got = await client.call("session.kill", {"id": k["id"]})
    assert got["exit_code"] == -9 and got["exit_reason"] == "stopped"


# -- prompts: cap, rate limit, queueing, confirmation -----------------------------------------------


async def test_prompt_cap_and_rate_limit(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    s = await _spawn(client, ["cat"])
    err = await _error(client, "session.prompt", {"id": s["id"], "message": "x" * 10_001})
    assert err["code"] == errors.TOO_LARGE and "10001" in err["message"] and err["data"]["limit"] == 10_000
    for i in range(10):
        r = await client.call("session.prompt", {"id": s["id"], "message": f"p{i}"})
        assert r["state"] == "delivered" and r["source"] == "human"
    err = await _error(client, "session.prompt", {"id": s["id"], "message": "one too many"})
    assert err["code"] == errors.RATE_LIMITED and 1 <= err["data"]["retry_after"] <= 60
    assert f"retry in {err['data']['retry_after']} s" in err["message"]
    # Per (sender, target): another target is fine.
    other = await _spawn(client, ["cat"], name="other")
    assert (await client.call("session.prompt", {"id": other["id"], "message": "hi"}))["state"] == "delivered"
    await wait_screen(daemon.app, s["id"], lambda t: "p9" in t)
    raw = base64.b64decode((await client.call("session.output", {"id": s["id"]}))["data"])
    assert b"p0\r\n" in raw  # no bracketed paste (cat never enabled it): the text, then Enter


async def test_prompt_queued_while_working_then_delivered_and_confirmed(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events)
    sid = s["id"]
    screen = await wait_screen(daemon.app, sid, lambda t: "cpr=" in t)
    # The fake asked for DA1 and the cursor position and got real answers.
    assert "da1=b'\\x1b[?62;22c'" in screen and "cpr=b'\\x1b[2;1R'" in screen
    assert events.statuses(sid) == ["idle"]
    first = await client.call("session.prompt", {"id": sid, "message": "line one\nline two"})
    assert first["state"] == "delivered"
    confirmed = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered")
    assert confirmed["data"]["prompt_id"] == first["prompt_id"] and confirmed["data"]["source"] == "human"
    await events.status(sid, "working")
    await wait_screen(daemon.app, sid, lambda t: "prompt: line one|line two" in t)

    # Busy: the next prompt waits in the queue (an agent sends it: source agent:<id>).
    worker, agent, _ = await _agent(daemon, client, "sender")
    second = await agent.call("session.prompt", {"id": sid, "message": "second"})
    assert second["state"] == "queued" and second["status"] == "working"
    assert (await client.call("session.get", {"id": sid}))["queued_prompts"] == 1
    mark = len(events.items)
    await client.call("session.input", {"id": sid, "text": "\x07"})  # the fake ends its turn: Stop
    ev = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered", start=mark)
    assert ev["data"]["prompt_id"] == second["prompt_id"] and ev["data"]["source"] == f"agent:{worker}"
    await wait_screen(daemon.app, sid, lambda t: "prompt: second" in t)
    assert events.statuses(sid) == ["idle", "working", "idle", "working"]
    rows = daemon.app.db.conn.execute(
        "SELECT sender, state FROM session_prompts WHERE session_id=? ORDER BY id", (sid,)
    ).fetchall()
    assert [tuple(r) for r in rows] == [("human", "confirmed"), (f"agent:{worker}", "confirmed")]
    hist = daemon.app.timeline.for_subject("session", sid)
    sources = [h["data"]["source"] for h in hist if h["type"] == "session.prompt"]
    assert sources == ["human", f"agent:{worker}"]

    # --now skips the queue even while working.
    now = await client.call("session.prompt", {"id": sid, "message": "urgent", "now": True})
    assert now["state"] == "delivered"
    raw = base64.b64decode((await client.call("session.output", {"id": sid}))["data"])
    assert b"prompt: line one|line two" in raw


async def test_a_first_prompt_is_typed_when_the_input_box_appears_not_at_the_next_poll(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent is up (its SessionStart hook) before its input box is drawn; the queued first prompt waits
    for the box, and the screen showing it wakes the delivery at once (the poll would take a minute here)."""
    from maestrod.sessions import prompts

    monkeypatch.setattr(prompts, "GATE_POLL", 60.0)
    await _project(client, short_tmp)
    daemon.app.config.claude.bin = str(fake_claude)
    s = await client.call("session.spawn", {"project": "p", "name": "first", "prompt": "hello there",
                                            "env": {"FAKE_BOX_DELAY": "0.3"}})
    with trio.fail_after(20):
        ev = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered"
                                   and e["data"]["session_id"] == s["id"])
    assert ev["data"]["witness"] == "hook"
    await wait_screen(daemon.app, s["id"], lambda t: "prompt: hello there" in t)


async def test_initial_prompt_paste_mode_and_interrupt(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, prompt="kick off")
    sid = s["id"]
    await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered")
    await events.status(sid, "working")
    mark = len(events.items)
    assert (await client.call("session.interrupt", {"id": sid}))["sent"] == "escape"
    await events.status(sid, "idle", start=mark)
    await wait_screen(daemon.app, sid, lambda t: "interrupted" in t)
    r = await client.call("session.prompt", {"id": sid, "message": "typed, not sent", "mode": "paste"})
    assert r["state"] == "delivered"
    out = base64.b64decode((await client.call("session.output", {"id": sid}))["data"])
    assert out.count(b"prompt:") == 1  # no Enter: the paste was not submitted
    # Notification(permission) -> waiting_input + needs_attention; prompts wait (a dialog is open).
    await client.call("session.input", {"id": sid, "text": "\x01"})
    await events.status(sid, "waiting_input")
    got = await client.call("session.get", {"id": sid})
    assert got["needs_attention"] == "Claude needs your permission"
    r = await client.call("session.prompt", {"id": sid, "message": "later"})
    assert r["state"] == "queued"


# -- hooks -------------------------------------------------------------------------------------------


async def test_hook_extensions_context_and_stop_decider(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    app = daemon.app
    seen: list[tuple[str, str]] = []
    blocks = {"n": 0}

    async def digest(sid: str, payload: dict[str, Any]) -> str:
        return f"digest for {sid}: {payload['prompt']!r}"

    def decider(sid: str, payload: dict[str, Any]) -> dict[str, str] | None:
        blocks["n"] += 1
        return {"decision": "block", "reason": "read your mail"} if blocks["n"] == 1 else None

    def broken(sid: str, payload: dict[str, Any]) -> str:
        raise RuntimeError("a broken plug-in must not break the agent")

    app.hook_extensions.add_context_provider("UserPromptSubmit", digest)
    app.hook_extensions.add_context_provider("UserPromptSubmit", broken)
    app.hook_extensions.add_stop_decider(decider)
    app.hook_extensions.add_listener(None, lambda sid, ev, p: seen.append((sid, ev)))
    with pytest.raises(ValueError):
        app.hook_extensions.add_context_provider("Stop", digest)
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events)
    sid = s["id"]
    await client.call("session.prompt", {"id": sid, "message": "hello"})
    await wait_screen(app, sid, lambda t: f"context: digest for {sid}: 'hello'" in t)
    await client.call("session.input", {"id": sid, "text": "\x07"})
    await wait_screen(app, sid, lambda t: 'stop: {"decision": "block", "reason": "read your mail"}' in t)
    assert (await client.call("session.get", {"id": sid}))["status"] == "working"  # blocked: goes on
    mark = len(events.items)
    await client.call("session.input", {"id": sid, "text": "\x07"})
    await events.status(sid, "idle", start=mark)
    assert (sid, "SessionStart") in seen and (sid, "Stop") in seen
    hooks = [
        h["data"]["event"] for h in app.timeline.for_subject("session", sid) if h["type"] == "session.hook"
    ]
    assert hooks[:4] == ["SessionStart", "UserPromptSubmit", "PreToolUse", "Stop"]
    row = app.db.conn.execute(
        "SELECT claude_session_id, transcript_path FROM sessions WHERE id=?", (sid,)
    ).fetchone()
    assert row["transcript_path"].endswith(row["claude_session_id"] + ".jsonl")


async def test_hook_event_needs_a_session_token(client: RawClient) -> None:
    err = await _error(client, "hook.event", {"event": "Stop", "payload": {}})
    assert err["code"] == errors.FORBIDDEN and "MAESTRO_SESSION_TOKEN" in err["message"]


async def test_maestroctl_hook_never_fails_the_agent(short_tmp: Path) -> None:
    payload = b'{"hook_event_name": "Stop"}'
    cases = [
        (maestroctl_env(short_tmp / "nobody.sock", MAESTRO_SESSION_TOKEN="tok"), "not reported"),
        (maestroctl_env(short_tmp / "nobody.sock"), "not inside a maestro session"),
    ]
    for env, note in cases:
        start = trio.current_time()
        r = await trio.run_process(
            [MAESTROCTL, "hook", "Stop"],
            stdin=payload,
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            check=False,
        )
        assert r.returncode == 0 and r.stdout == b"" and note in r.stderr.decode()
        assert trio.current_time() - start < 2.5


async def test_maestroctl_hook_times_out_on_a_silent_daemon(short_tmp: Path) -> None:
    import socket

    path = short_tmp / "silent.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)  # accepts (in the backlog) but never answers
    try:
        start = trio.current_time()
        r = await trio.run_process(
            [MAESTROCTL, "hook", "UserPromptSubmit"],
            stdin=b"{}",
            capture_stdout=True,
            capture_stderr=True,
            env=maestroctl_env(path, MAESTRO_SESSION_TOKEN="tok"),
            check=False,
        )
        assert r.returncode == 0 and b"did not answer" in r.stderr
        assert trio.current_time() - start < 3.5
    finally:
        srv.close()


async def test_maestroctl_hook_sends_when_it_started(short_tmp: Path) -> None:
    """``maestroctl hook`` sends its start time (the monotonic clock, read first thing); a daemon older than
    the field (it refuses unknown params) gets the report again without it, and the hook's answer is printed."""
    path = short_tmp / "old.sock"
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await listener.bind(str(path))
    listener.listen(2)
    seen: list[dict[str, Any]] = []

    async def serve(refuse_first: bool) -> None:
        conn, _ = await listener.accept()
        buf = b""
        with conn:
            while True:
                while b"\n" not in buf:
                    chunk = await conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if "id" not in msg:
                    continue  # system.auth, pipelined as a notification
                seen.append(msg["params"])
                if refuse_first and len(seen) == 1:
                    answer = {"error": {"code": errors.INVALID_PARAMS,
                                        "message": "invalid params: started_monotonic: unknown field"}}
                else:
                    answer = {"result": {"stdout": "context from the daemon"}}
                await conn.send(json.dumps({"jsonrpc": "2.0", "id": msg["id"], **answer}).encode() + b"\n")

    env = maestroctl_env(path, MAESTRO_SESSION_TOKEN="tok")
    try:
        for refuse_first in (False, True):
            seen.clear()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve, refuse_first)
                before = time.monotonic()
                r = await trio.run_process([MAESTROCTL, "hook", "UserPromptSubmit"], stdin=b'{"prompt": "hi"}',
                                           capture_stdout=True, capture_stderr=True, env=env, check=False)
                after = time.monotonic()
            assert r.returncode == 0 and r.stdout == b"context from the daemon\n", r.stderr
            assert before < seen[0]["started_monotonic"] < after
            assert seen[0]["event"] == "UserPromptSubmit" and seen[0]["payload"] == {"prompt": "hi"}
            if refuse_first:
                assert len(seen) == 2 and "started_monotonic" not in seen[1] and seen[1]["payload"] == {"prompt": "hi"}
            else:
                assert len(seen) == 1
    finally:
        listener.close()


async def test_a_hook_report_is_dated_when_its_process_started_within_a_bound(
    daemon: Daemon, client: RawClient, short_tmp: Path
) -> None:
    """The daemon dates a hook's observation by the start time it sends (the status machine orders hooks by
    it), moved back at most MAX_BACKDATE; a start in the future is now; a bad one is refused, naming it."""
    await _project(client, short_tmp)
    sid, conn, _token = await _agent(daemon, client, "w1")

    async def report(event: str, **extra: Any) -> tuple[float, dict[str, Any]]:
        await conn.call("hook.event", {"event": event, "payload": {"notification_type": "idle_prompt"}, **extra})
        hooks = (await client.call("session.explain", {"id": sid}))["witnesses"]["hooks"]
        rows = [e["data"] for e in (await client.call("session.history", {"id": sid}))["entries"]
                if e["type"] == "session.hook"]
        return hooks["age_s"], rows[-1]

    age, row = await report("Notification", started_monotonic=time.monotonic() - 100)  # bogus: clamped
    assert hook_intake.MAX_BACKDATE <= age < hook_intake.MAX_BACKDATE + 1
    assert row["age_ms"] == hook_intake.MAX_BACKDATE * 1000
    age, row = await report("Notification", started_monotonic=time.monotonic() - 1.0)
    assert 1.0 <= age < 2.0 and 1000 <= row["age_ms"] < 2000
    age, row = await report("Notification", started_monotonic=time.monotonic() + 100)  # in the future: now
    assert age < 1.0 and "age_ms" not in row
    age, row = await report("Notification")  # an older maestroctl: when it arrives
    assert age < 1.0 and "age_ms" not in row
    for bad in (-1, "soon", True):
        err = await _error(conn, "hook.event", {"event": "Stop", "payload": {}, "started_monotonic": bad})
        assert err["code"] == errors.INVALID_PARAMS and "started_monotonic" in err["message"], err
    assert hook_intake.started_at(50.0, 10.0, 9.75) == 49.75


def test_claude_hooks_maestro_never_answers_run_in_the_background() -> None:
    """Exactly the hooks whose output maestro never uses are async (the agent does not wait for them)."""
    settings = claude.hook_settings(["/opt/maestroctl"])
    async_events = {ev for ev, entries in settings["hooks"].items() if entries[0]["hooks"][0].get("async")}
    assert async_events == {"PreToolUse", "PostToolUseFailure", "Notification", "SessionEnd"}
    assert all(entries[0]["hooks"][0]["async"] is True for ev, entries in settings["hooks"].items()
               if ev in async_events)
    assert set(CONTEXT_EVENTS) | {"Stop", "SessionStart"} == set(claude.HOOK_EVENTS) - async_events


def test_claude_argv_settings_and_env() -> None:
    settings = claude.hook_settings(["/opt/my venv/bin/maestroctl"])
    assert set(settings["hooks"]) == set(claude.HOOK_EVENTS)
    cmd = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    assert cmd == "'/opt/my venv/bin/maestroctl' hook PreToolUse"
    assert (
        settings["hooks"]["PreToolUse"][0]["matcher"] == "*" and "matcher" not in settings["hooks"]["Stop"][0]
    )
    assert claude.maestroctl_command() == [MAESTROCTL]
    argv = claude.claude_argv(
        "/bin/claude",
        "u-1",
        "/s.json",
        allowed_tools="Bash Read",
        permission_mode="acceptEdits",
        extra_args=["--model", "x"],
    )
    assert argv == [
        "/bin/claude",
        "--session-id",
        "u-1",
        "--settings",
        "/s.json",
        "--allowedTools",
        "Bash Read",
        "--permission-mode",
        "acceptEdits",
        "--model",
        "x",
    ]
    env = claude.scrub_env(
        {
            "CLAUDECODE": "1",
            "CLAUDE_CODE_ENTRYPOINT": "cli",
            "CLAUDE_CODE_SESSION_ID": "x",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "MAESTRO_SESSION_TOKEN": "t",
            "MAESTRO_SOCKET": "/s",
            "HOME": "/h",
        }
    )
    assert env == {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "MAESTRO_SOCKET": "/s", "HOME": "/h"}
    assert claude.transcript_path({"HOME": "/h"}, "/w/a.b_c", "u") == "/h/.claude/projects/-w-a-b-c/u.jsonl"
    assert claude.transcript_path({"CLAUDE_CONFIG_DIR": "/c"}, "/w", "u") == "/c/projects/-w/u.jsonl"
    assert claude.find_claude("/nonexistent/claude", {}) is None
    assert claude.find_claude(None, {"MAESTRO_CLAUDE_BIN": sys.executable}) == sys.executable


# -- persistence -------------------------------------------------------------------------------------


async def test_orphans_become_lost_on_start(short_tmp: Path) -> None:
    app = App(short_tmp / "data", short_tmp / "x.sock")
    proj = app.projects.create("p", str(short_tmp), "")
    now = "2026-01-01T00:00:00.000Z"
    with app.db.transaction() as c:
        for sid, status, pid in (("s-aaaaaa", "working", 999_999_999), ("s-bbbbbb", "exited", None)):
            c.execute(
                "INSERT INTO sessions(id, project_id, name, role, root_id, agent, cwd, status, pid, "
                "created_at, "
                "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (sid, proj.id, sid, "worker", sid, "claude", str(short_tmp), status, pid, now, now),
            )
        c.execute(
            "INSERT INTO session_prompts(session_id, sender, text, mode, state, created_at) "
            "VALUES ('s-aaaaaa', 'human', 'hi', 'send', 'queued', ?)",
            (now,),
        )
    log = EventLog(app)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.sessions.run)
        nursery.cancel_scope.cancel()
    got = app.sessions.get("s-aaaaaa")
    assert got.status == "exited" and got.exit_reason == "lost" and got.exit_code is None and got.exited_at
    assert app.sessions.get("s-bbbbbb").exit_reason is None
    assert [e["data"]["to"] for e in log.items if e["topic"] == "session.status"] == ["exited"]
    assert app.db.conn.execute("SELECT state FROM session_prompts").fetchone()[0] == "failed"
    screen = await app.sessions.screen("s-aaaaaa")
    assert screen["lines"] == [] and "exited before this daemon started" in screen["note"]
    app.close()


async def test_shutdown_stops_live_sessions(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    a = await _spawn(client, ["sleep", "100"], name="a")
    b = await _spawn(client, ["cat"], name="b")
    await daemon.app.sessions.shutdown()
    for sid in (a["id"], b["id"]):
        got = await client.call("session.get", {"id": sid})
        assert got["status"] == "exited" and got["exit_reason"] == "stopped"
    assert isinstance(daemon.app.sessions, SessionManager)


async def test_session_cli_end_to_end(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    """The exact invocations of the issue, through the real maestroctl."""
    await _project(client, short_tmp)
    env = maestroctl_env(daemon.socket_path)
    shell = ["bash", "--norc", "--noprofile", "-i"]
    s = json.loads(await _ctl(env, "--json", "session", "spawn", "--project", "p", "--name", "N", "--cwd",
                              str(short_tmp), "--", *shell))
    sid = s["id"]
    assert s["agent"] == "command" and s["argv"] == shell
    listed = json.loads(await _ctl(env, "--json", "session", "list", "--project", "p", "--status", "idle"))
    assert [x["id"] for x in listed] == [sid]
    assert json.loads(await _ctl(env, "--json", "session", "get", sid))["name"] == "N"
    await _ctl(env, "session", "input", sid, "--text", "echo $((40+2))", "--key", "enter")
    await wait_screen(daemon.app, sid, lambda t: "\n42" in t)
    assert "42" in await _ctl(env, "session", "screen", sid)
    out = await _ctl(env, "session", "prompt", sid, "--message", "echo via-prompt")
    assert out.startswith(f"delivered to {sid}")
    await wait_screen(daemon.app, sid, lambda t: "\nvia-prompt" in t)
    stopped = await _ctl(env, "session", "stop", sid)
    assert re.match(rf"{sid} exited: stopped \(code -?\d+\)", stopped)
    assert "has exited" in await _ctl(env, "session", "prompt", sid, "--message", "x", code=1)
