"""Issue 5 wired into sessions, in-process over the real socket: the hierarchy on spawn, what a spawned
agent is told (session context, directive, workflow), ``session.wait``, the policy on every session
method, waking an idle agent for urgent mail, and long requests ending when their client goes away."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from maestrod.mail import MailConfig, stop_hook_decision
from maestrod.sessions import briefing
from shared import errors, templates
from tests.conftest import Daemon, EventLog, RawClient, maestroctl_env, wait_screen
from tests.session_support import _agent, _as, _ctl, _error, _fake_claude, _project, _spawn


async def _until(pred: Any, timeout: float = 2.0) -> None:
    with trio.fail_after(timeout):
        while not pred():
            await trio.sleep(0.01)


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


# -- 1. the hierarchy on spawn ---------------------------------------------------------------------


async def test_only_coordinators_spawn_and_children_join_the_family(
    daemon: Daemon, client: RawClient, short_tmp: Path
) -> None:
    await _project(client, short_tmp)
    coord, coord_conn, coord_token = await _agent(daemon, client, "coord", role="coordinator")
    # A worker the coordinator spawned: parent and root follow the caller (no --parent typed).
    w1, w1_conn, w1_token = await _agent(daemon, coord_conn, "w1")
    row = await client.call("session.get", {"id": w1})
    assert (row["parent_id"], row["root_id"]) == (coord, coord)
    # A worker may not spawn: a clear FORBIDDEN, and nothing is created.
    before = len(await client.call("session.list"))
    err = await _error(w1_conn, "session.spawn", {"project": "p", "name": "x", "agent": "command", "argv": ["cat"]})
    assert err["code"] == errors.FORBIDDEN
    assert "is a worker: only coordinator sessions may spawn sessions" in err["message"]
    assert len(await client.call("session.list")) == before
    # A coordinator may place a session under one of its descendants, not beside or above itself.
    lead = await _spawn(coord_conn, ["cat"], name="lead", role="coordinator")
    grand = await _spawn(coord_conn, ["cat"], name="grand", parent=lead["id"])
    assert (grand["parent_id"], grand["root_id"]) == (lead["id"], coord)
    other = await _spawn(client, ["cat"], name="other-top")
    err = await _error(coord_conn, "session.spawn",
                       {"project": "p", "name": "x", "agent": "command", "argv": ["cat"], "parent": other["id"]})
    assert err["code"] == errors.FORBIDDEN and "may not spawn sessions under" in err["message"]
    # The human may spawn anything, anywhere (even under a worker).
    under_worker = await _spawn(client, ["cat"], name="hw", parent=w1)
    assert (under_worker["parent_id"], under_worker["root_id"]) == (w1, coord)

    # `session list --my-workers` / `--siblings` from inside an agent: only the token, no ids typed.
    await _agent(daemon, coord_conn, "w2")
    as_coord = maestroctl_env(daemon.socket_path, MAESTRO_SESSION_TOKEN=coord_token)
    mine = json.loads(await _ctl(as_coord, "--json", "session", "list", "--my-workers"))
    assert [s["name"] for s in mine] == ["w1", "lead", "w2"]
    as_w1 = maestroctl_env(daemon.socket_path, MAESTRO_SESSION_TOKEN=w1_token)
    sibs = json.loads(await _ctl(as_w1, "--json", "session", "list", "--siblings"))
    assert [s["name"] for s in sibs] == ["lead", "w2"]
    mine = json.loads(await _ctl(as_w1, "--json", "session", "list", "--my-workers"))
    assert [s["name"] for s in mine] == ["hw"]
    # From the CLI, a worker's spawn is refused with exit 1 and the reason.
    out = await _ctl(as_w1, "session", "spawn", "--project", "p", "--name", "x", "--", "cat", code=1)
    assert "only coordinator sessions may spawn" in out


# -- 2. what a spawned agent is told ---------------------------------------------------------------


async def test_command_session_gets_context_directive_and_workflow_in_its_env(
    daemon: Daemon, client: RawClient, short_tmp: Path
) -> None:
    pid = await _project(client, short_tmp)
    task = await client.call("task.create", {"project": "p", "title": "Parse <the> input"})
    coord, coord_conn, _tok = await _agent(daemon, client, "coord", role="coordinator")
    out = short_tmp / "prompt.txt"
    s = await _spawn(coord_conn, ["sh", "-c", 'printf %s "$MAESTRO_SYSTEM_PROMPT" > "$OUT"; echo WROTE; exec cat'],
                     name="w1", env={"OUT": str(out)}, task_ids=[task["id"]],
                     subject="Start with the parser", message="Keep the API stable.\nAsk if unsure.")
    sid = s["id"]
    await wait_screen(daemon.app, sid, lambda t: "WROTE" in t)
    text = out.read_text()
    prompt_file = daemon.app.data_dir / "sessions" / sid / briefing.SYSTEM_PROMPT_FILE
    assert prompt_file.read_text() == text  # also named by $MAESTRO_SYSTEM_PROMPT_FILE
    assert s["argv"][:2] == ["sh", "-c"] and len(s["argv"]) == 3  # a command's argv is not touched
    ctx = text.split("</session_context>")[0]
    assert f"<session_id>{sid}</session_id>" in ctx and "<role>worker</role>" in ctx
    assert f"<coordinator_session_id>{coord}</coordinator_session_id>" in ctx
    assert f'<project id="{pid}" name="p" dir="{short_tmp}"/>' in ctx
    assert f'<task id="{task["id"]}" status="todo">Parse &lt;the&gt; input</task>' in ctx
    assert "maestroctl session spawn" not in ctx  # not a worker's command
    directive = text.split("<coordinator_directive>")[1].split("</coordinator_directive>")[0]
    assert "<subject>Start with the parser</subject>" in directive
    assert "<message>Keep the API stable.\nAsk if unsure.</message>" in directive
    assert f"<from>{coord}</from>" in directive
    assert '<workflow name="execute-simple">' in text and text.rstrip().endswith("</workflow>")

    # The directive is also the first mail of the new session: a thread of its own, from the spawner.
    inbox = await client.call("mail.inbox", {"mailbox": sid})
    assert len(inbox) == 1
    m = inbox[0]
    assert (m["type"], m["from"], m["to"], m["subject"]) == ("directive", coord, [sid], "Start with the parser")
    assert m["body"] == "Keep the API stable.\nAsk if unsure." and m["thread_id"] == m["id"]
    assert m["task_id"] == task["id"] and m["read_at"] is None
    assert f"<mail_id>{m['id']}</mail_id>" in directive
    # A plain program gets no kick-off prompt (it would be typed into a shell).
    assert (await client.call("session.get", {"id": sid}))["queued_prompts"] == 0
    assert daemon.app.db.conn.execute("SELECT COUNT(*) FROM session_prompts WHERE session_id=?",
                                      (sid,)).fetchone()[0] == 0
    # The spawn's timeline row names the template.
    spawned = [h for h in daemon.app.timeline.for_subject("session", sid) if h["type"] == "session.spawned"]
    assert spawned[0]["data"]["template"] == "execute-simple"


async def test_templates_per_role_none_override_and_refusals(
    daemon: Daemon, client: RawClient, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _project(client, short_tmp)

    names = iter(range(1000))

    async def told(**kw: Any) -> str:
        # Live sessions of a project have unique names.
        s = await _spawn(client, ["cat"], name=kw.pop("name", f"x{next(names)}"), **kw)
        return (daemon.app.data_dir / "sessions" / s["id"] / briefing.SYSTEM_PROMPT_FILE).read_text()

    text = await told(role="coordinator")
    assert '<workflow name="coordinate-default">' in text and "\n<coordinator_directive>\n" not in text
    assert "maestroctl session spawn --project" in text and "none: you were started by the human" in text
    assert '<workflow name="execute-tree">' in await told(template="execute-tree")
    bare = await told(template="none", message="Only a message.\nSecond line.")
    assert "<workflow" not in bare and "<session_context>" in bare
    assert "<subject>Only a message.</subject>" in bare  # no --subject: the message's first line
    # A user's override in $XDG_CONFIG_HOME/maestro/templates applies to the next spawn.
    d = short_tmp / "cfg" / "maestro" / "templates"
    d.mkdir(parents=True)
    (d / "execute-simple.md").write_text("Do it the house way, then `maestroctl task report complete <TASK_ID> "
                                         "--message \"<done>\"`.\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(short_tmp / "cfg"))
    assert "Do it the house way" in await told()

    before = len(await client.call("session.list"))
    cases = [
        ({"template": "nope"}, errors.INVALID_PARAMS, "unknown template 'nope'"),
        ({"template": "../x"}, errors.INVALID_PARAMS, "invalid template name"),
        ({"template": "coordinate-dag"}, errors.INVALID_PARAMS, "is a coordinator workflow but the session's role is worker"),
        ({"role": "coordinator", "template": "execute-queue"}, errors.INVALID_PARAMS, "--role worker"),
        ({"subject": "only a subject"}, errors.INVALID_PARAMS, "a directive needs a message"),
        ({"subject": "big", "message": "x" * (64 * 1024 + 1)}, errors.TOO_LARGE, "message body too large"),
    ]
    for extra, code, words in cases:
        err = await _error(client, "session.spawn", {"project": "p", "name": "bad", "agent": "command",
                                                      "argv": ["cat"], **extra})
        assert err["code"] == code and words in err["message"], (extra, err)
    (d / "execute-tree.md").write_text("")
    err = await _error(client, "session.spawn", {"project": "p", "name": "bad", "agent": "command",
                                                  "argv": ["cat"], "template": "execute-tree"})
    assert err["code"] == errors.CONFLICT and "empty" in err["message"]
    assert len(await client.call("session.list")) == before  # nothing half-made
    directives = daemon.app.db.conn.execute("SELECT COUNT(*) FROM mail_messages WHERE type='directive'")
    assert directives.fetchone()[0] == 1  # only the `bare` spawn's


async def test_claude_gets_append_system_prompt_and_a_kickoff(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, name="w", subject="Build the parser",
                           message="Use the stdlib only.")
    sid = s["id"]
    prompt_file = daemon.app.data_dir / "sessions" / sid / briefing.SYSTEM_PROMPT_FILE
    text = prompt_file.read_text()
    # The stored (shown) argv names the file; the process got the text itself.
    i = s["argv"].index("--append-system-prompt")
    assert s["argv"][i + 1] == briefing.ARGV_PLACEHOLDER.format(path=prompt_file)
    real = _cmdline(s["pid"])
    assert real[real.index("--append-system-prompt") + 1] == text
    assert "<coordinator_directive>" in text and "<from>human</from>" in text
    # No --prompt but a directive: the agent is told to start on it (delivered and confirmed).
    mail_id = (await client.call("mail.inbox", {"mailbox": sid}))[0]["id"]
    ack = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered" and e["data"]["session_id"] == sid)
    assert ack["data"]["source"] == "human"
    screen = await wait_screen(daemon.app, sid, lambda t: "prompt: Begin." in t)
    assert "'Build the parser'" in screen.replace("\n", "") and mail_id in screen.replace("\n", "")

    # With --prompt, that prompt is the first one, as given.
    s2 = await _fake_claude(daemon, client, fake_claude, events, name="w2", subject="S", message="M",
                            prompt="Your own words.")
    await wait_screen(daemon.app, s2["id"], lambda t: "prompt: Your own words." in t)
    rows = daemon.app.db.conn.execute("SELECT text FROM session_prompts WHERE session_id=?", (s2["id"],)).fetchall()
    assert [r[0] for r in rows] == ["Your own words."]
    # Without a directive or a prompt, nothing is typed: the agent waits to be prompted.
    s3 = await _fake_claude(daemon, client, fake_claude, events, name="w3")
    assert daemon.app.db.conn.execute("SELECT COUNT(*) FROM session_prompts WHERE session_id=?",
                                      (s3["id"],)).fetchone()[0] == 0


# -- 3. session.wait --------------------------------------------------------------------------------


async def test_session_wait_counts_sessions_already_there_and_is_woken_by_their_events(
    daemon: Daemon, client: RawClient, short_tmp: Path
) -> None:
    await _project(client, short_tmp)
    a = await _spawn(client, ["cat"], name="a")
    b = await _spawn(client, ["sh", "-c", "exit 4"], name="b")
    other = await daemon.connect()
    r = await other.call("session.wait", {"ids": [b["id"]], "timeout": 10})  # exits on its own
    assert r["done"] and r["reached"] == [b["id"]] and r["sessions"][0]["exit_code"] == 4
    # Already exited, and a live `cat` (idle): both count at once for --until idle.
    with trio.fail_after(1):
        r = await client.call("session.wait", {"ids": ["a", "b", a["id"]], "until": "idle"})
    assert r == {"until": "idle", "done": True, "reached": [a["id"], b["id"]], "pending": [],
                 "sessions": r["sessions"]}
    assert [x["status"] for x in r["sessions"]] == ["idle", "exited"]
    # Until exited: woken by the stop itself (no polling), on a connection that keeps serving.
    waiter = await daemon.connect()
    await waiter.send({"jsonrpc": "2.0", "id": 7, "method": "session.wait", "params": {"ids": [a["id"], b["id"]]}})
    await _until(lambda: daemon.app.sessions.waiter_count() >= 2, timeout=5)
    assert (await waiter.call("system.ping")) is not None  # concurrent: later requests are answered
    await other.call("session.stop", {"id": a["id"]})
    with trio.fail_after(2):
        resp = await waiter.recv_response()
    assert resp["id"] == 7 and resp["result"]["done"] and resp["result"]["pending"] == []
    assert daemon.app.sessions.waiter_count() == 0
    # Unknown ids and bad params are refused.
    assert (await _error(client, "session.wait", {"ids": ["nope"]}))["code"] == errors.NOT_FOUND
    assert (await _error(client, "session.wait", {"ids": []}))["code"] == errors.INVALID_PARAMS
    assert (await _error(client, "session.wait", {"ids": ["a"], "timeout": -1}))["code"] == errors.INVALID_PARAMS
    assert (await _error(client, "session.wait", {"ids": ["a"], "until": "gone"}))["code"] == errors.INVALID_PARAMS


async def test_session_wait_timeout_lists_the_pending_and_cli_exits_0(
    daemon: Daemon, client: RawClient, short_tmp: Path
) -> None:
    await _project(client, short_tmp)
    a = await _spawn(client, ["cat"], name="a")
    b = await _spawn(client, ["cat"], name="b")
    await client.call("session.stop", {"id": b["id"]})
    start = trio.current_time()
    r = await client.call("session.wait", {"ids": [a["id"], b["id"]], "timeout": 0.3})
    assert 0.25 <= trio.current_time() - start < 2
    assert (r["done"], r["reached"], r["pending"]) == (False, [b["id"]], [a["id"]])
    assert daemon.app.sessions.waiter_count() == 0
    env = maestroctl_env(daemon.socket_path)
    out = json.loads(await _ctl(env, "--json", "session", "wait", "a", "b", "--timeout", "0.2"))
    assert out["done"] is False and out["pending"] == [a["id"]]
    human = await _ctl(env, "session", "wait", "a", "b", "--timeout", "0.1")
    assert human.startswith("timed out; not exited yet: ") and "a: idle" in human
    human = await _ctl(env, "session", "wait", "a", "--until", "idle", "--timeout", "5")
    assert human.startswith("all idle: ")
    # The global --timeout means the same, and the socket outlives the daemon's wait.
    out = json.loads(await _ctl(env, "--json", "--timeout", "0.2", "session", "wait", "a"))
    assert out["done"] is False


async def test_wait_idle_is_not_fooled_by_a_prompt_still_on_its_way(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    daemon.app.config.claude.bin = str(fake_claude)
    # Spawned with a first prompt: idle for a moment (TUI up) before the prompt lands -- not "idle".
    s = await client.call("session.spawn", {"project": "p", "name": "agent", "prompt": "work"})
    sid = s["id"]
    r = await client.call("session.wait", {"ids": [sid], "until": "idle", "timeout": 1.0})
    assert r["done"] is False and r["sessions"][0]["status"] == "working"
    assert "idle" in events.statuses(sid)  # it was idle on the way
    # Ends its turn (Stop hook): the waiter wakes.
    waiter = await daemon.connect()
    await waiter.send({"jsonrpc": "2.0", "id": 1, "method": "session.wait",
                       "params": {"ids": [sid], "until": "idle", "timeout": 20}})
    await _until(lambda: daemon.app.sessions.waiter_count() >= 1, timeout=5)
    await client.call("session.input", {"id": sid, "text": "\x07"})
    with trio.fail_after(5):
        resp = await waiter.recv_response()
    assert resp["result"]["done"] and resp["result"]["sessions"][0]["status"] == "idle"
    # A permission dialog (waiting_input with attention) counts: nothing moves until a person answers.
    mark = len(events.items)
    await client.call("session.prompt", {"id": sid, "message": "again"})
    await events.status(sid, "working", start=mark)
    await client.call("session.input", {"id": sid, "text": "\x01"})
    await events.status(sid, "waiting_input")
    r = await client.call("session.wait", {"ids": [sid], "until": "idle", "timeout": 5})
    assert r["done"] and r["sessions"][0]["needs_attention"]
    # Exited counts as idle too.
    await client.call("session.kill", {"id": sid})
    r = await client.call("session.wait", {"ids": [sid], "until": "idle", "timeout": 5})
    assert r["done"] and r["sessions"][0]["status"] == "exited"


# -- 5. the policy on every session method ----------------------------------------------------------


async def test_policy_on_session_methods(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    """coord (coordinator) -> w1, w2, lead (coordinator) -> lw; top (another top-level session)."""
    await _project(client, short_tmp)
    coord, coord_conn, _ = await _agent(daemon, client, "coord", role="coordinator")
    _w1, w1_conn, _ = await _agent(daemon, coord_conn, "w1")
    w2, _w2c, _ = await _agent(daemon, coord_conn, "w2")
    lead, lead_conn, _ = await _agent(daemon, coord_conn, "lead", role="coordinator")
    lw, _lwc, _ = await _agent(daemon, lead_conn, "lw")
    top, top_conn, _ = await _agent(daemon, client, "top")

    async def refused(conn: RawClient, method: str, target: str, **extra: Any) -> str:
        err = await _error(conn, method, {"id": target, **extra})
        assert err["code"] == errors.FORBIDDEN, (method, target, err)
        assert err["data"]["target"] == target
        return err["message"]  # type: ignore[no-any-return]

    # A sibling may be prompted, typed into and read -- but not stopped or killed.
    assert (await w1_conn.call("session.prompt", {"id": w2, "message": "hi sibling"}))["state"] == "delivered"
    await w1_conn.call("session.input", {"id": "w2", "text": "x"})
    await w1_conn.call("session.screen", {"id": w2})
    await w1_conn.call("session.output", {"id": w2})
    msg = await refused(w1_conn, "session.stop", w2)
    assert "may not stop session" in msg and "its own subtree" in msg and "is its sibling" in msg
    await refused(w1_conn, "session.kill", w2)
    # Upwards: a worker neither prompts nor stops its coordinator (it mails it instead).
    await refused(w1_conn, "session.prompt", coord, message="do this")
    await refused(w1_conn, "session.stop", coord)
    # Outside its family (a cousin's worker, another tree): nothing, not even reading.
    for method, extra in (("session.prompt", {"message": "x"}), ("session.input", {"text": "x"}),
                          ("session.interrupt", {}), ("session.resize", {"rows": 30, "cols": 90}),
                          ("session.screen", {}), ("session.output", {}), ("session.stop", {}),
                          ("session.kill", {})):
        await refused(w1_conn, method, lw, **extra)
    assert "outside its family" in await refused(top_conn, "session.screen", lw)
    # attach: the stream needs read, and a size (it resizes) needs prompt.
    await refused(w1_conn, "session.attach", lw)
    # Top-level sessions of a project are siblings: top may prompt coord but not stop it.
    await top_conn.call("session.prompt", {"id": coord, "message": "hello"})
    await refused(top_conn, "session.stop", coord)
    # Metadata stays open (like `session list`).
    assert (await w1_conn.call("session.get", {"id": lw}))["id"] == lw
    r = await w1_conn.call("session.wait", {"ids": [lw], "until": "idle", "timeout": 1})
    assert r["done"]
    # Descendants may be stopped and killed, at any depth; a session may stop itself.
    assert (await coord_conn.call("session.kill", {"id": lw}))["status"] == "exited"
    await coord_conn.call("session.resize", {"id": w2, "rows": 30, "cols": 100})
    await coord_conn.call("session.interrupt", {"id": w2})
    assert (await coord_conn.call("session.stop", {"id": w2}))["exit_reason"] == "stopped"
    assert (await lead_conn.call("session.stop", {"id": lead}))["status"] == "exited"
    # The human may do everything.
    assert (await client.call("session.stop", {"id": coord}))["status"] == "exited"
    assert (await client.call("session.kill", {"id": top}))["status"] == "exited"
    hist = daemon.app.timeline.for_subject("session", w2)
    assert any(h["type"] == "session.stop" and h["actor"] == coord for h in hist)


# -- 6. waking an idle agent -----------------------------------------------------------------------


def _prompts(daemon: Daemon, sid: str, sender: str = "system") -> list[str]:
    return [r[0] for r in daemon.app.db.conn.execute(
        "SELECT text FROM session_prompts WHERE session_id=? AND sender=? ORDER BY id", (sid, sender))]


async def _mail(client: RawClient, to: str, subject: str, priority: str = "high", type_: str = "query") -> Any:
    return await client.call("mail.send", {"to": [to], "type": type_, "subject": subject, "body": "...",
                                           "priority": priority})


async def test_urgent_mail_prompts_an_idle_agent_once_per_burst(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events)
    sid = s["id"]
    # Normal mail does not disturb an idle agent.
    await _mail(client, sid, "fyi", priority="normal", type_="notification")
    await trio.sleep(0.4)
    assert _prompts(daemon, sid) == []
    # A burst of urgent mail: one prompt, naming the urgent ones.
    for i in range(3):
        await _mail(client, sid, f"question {i}", priority="critical" if i == 2 else "high")
    ack = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered" and e["data"]["session_id"] == sid)
    assert ack["data"]["source"] == "system"
    sent = _prompts(daemon, sid)
    assert len(sent) == 1
    assert sent[0].startswith("You have 3 unread message(s): query from human 'question 2' [critical], "
                              "query from human 'question 0', query from human 'question 1'.")
    assert "`maestroctl mail wait --timeout 0`" in sent[0]
    await wait_screen(daemon.app, sid, lambda t: "prompt: You have 3 unread" in t)
    await events.status(sid, "working")
    # While it works, new urgent mail is not prompted: its Stop hook blocks instead (installed at start).
    await _mail(client, sid, "while working")
    await trio.sleep(0.3)
    assert len(_prompts(daemon, sid)) == 1
    await client.call("session.input", {"id": sid, "text": "\x07"})
    screen = await wait_screen(daemon.app, sid, lambda t: 'stop: {"decision": "block"' in t)
    assert "4 unread" in screen.replace("\n", "")
    assert (await client.call("session.get", {"id": sid}))["status"] == "working"
    # It reads its mail, then stops: idle, nothing left to announce.
    as_agent = await _as(daemon, _token_of(daemon, sid))
    assert len(await as_agent.call("mail.wait", {"timeout": 0})) == 5
    mark = len(events.items)
    await client.call("session.input", {"id": sid, "text": "\x07"})
    await events.status(sid, "idle", start=mark)
    await trio.sleep(0.3)
    assert len(_prompts(daemon, sid)) == 1


def _token_of(daemon: Daemon, sid: str) -> str:
    """The token of a session the test did not start with TOKEN_CAT: from its process environment."""
    pid = daemon.app.db.conn.execute("SELECT pid FROM sessions WHERE id=?", (sid,)).fetchone()[0]
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"MAESTRO_SESSION_TOKEN="))


async def test_mail_that_slipped_past_the_stop_hook_is_announced_when_idle(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, prompt="work")
    sid = s["id"]
    await events.status(sid, "working")
    # No Stop-hook blocks (as if the mail came while the hook was deciding): the agent goes idle...
    daemon.app.mail.config = MailConfig(wake_max_blocks=0)
    await _mail(client, sid, "late")
    await trio.sleep(0.3)
    assert _prompts(daemon, sid) == []  # working: not prompted
    mark = len(events.items)
    await client.call("session.input", {"id": sid, "text": "\x07"})
    await events.status(sid, "idle", start=mark)
    # ... and is prompted about it then.
    ack = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered" and e["data"]["source"] == "system",
                                start=mark)
    assert ack["data"]["session_id"] == sid
    assert _prompts(daemon, sid)[0].startswith("You have 1 unread message(s): query from human 'late'.")


async def test_no_prompt_when_disabled_told_already_or_not_claude(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events)
    sid = s["id"]
    nudger = daemon.app.mail_nudger
    daemon.app.mail.config = MailConfig(prompt_idle=False)
    await _mail(client, sid, "quiet please")
    await trio.sleep(0.3)
    assert _prompts(daemon, sid) == [] and await nudger.nudge(sid) is None
    # Mail the Stop hook already told it about (up to the cap) is not announced again.
    daemon.app.mail.config = MailConfig()
    for active in (False, True, True, True):
        stop_hook_decision(daemon.app.mail, sid, active)
    assert stop_hook_decision(daemon.app.mail, sid, True) is None  # capped
    assert await nudger.nudge(sid) is None
    # New urgent mail after that is announced.
    await _mail(client, sid, "new one")
    await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered" and e["data"]["source"] == "system")
    assert _prompts(daemon, sid)[0].startswith("You have 2 unread message(s)")
    # A plain program is never prompted (the text would be typed into a shell).
    cat = await _spawn(client, ["cat"], name="cat")
    await _mail(client, cat["id"], "urgent for cat")
    await trio.sleep(0.3)
    assert await nudger.nudge(cat["id"]) is None and _prompts(daemon, cat["id"]) == []
    assert daemon.app.mail.config.prompt_idle is True


# -- 7. long requests end when their client goes away -------------------------------------------------


async def _request(daemon: Daemon, method: str, params: dict[str, Any], rid: int = 1) -> RawClient:
    """A new connection with one request sent and not answered yet."""
    conn = await daemon.connect()
    await conn.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    return conn


async def test_waits_and_attach_end_when_the_client_disconnects(
    daemon: Daemon, client: RawClient, short_tmp: Path
) -> None:
    await _project(client, short_tmp)
    a = await _spawn(client, ["cat"], name="a")
    app = daemon.app
    mail_waiters = app.mail.waiters
    for method, params, count in (
        ("session.wait", {"ids": [a["id"]]}, app.sessions.waiter_count),
        ("mail.wait", {}, mail_waiters.count),
    ):
        conn = await _request(daemon, method, params)
        await _until(lambda count=count: count() == 1)
        await conn.aclose()
        await _until(lambda count=count: count() == 0, timeout=1.0)  # at once
    # Mail arriving after a waiter left is still unread.
    await _mail(client, "human", "to me")  # the human mails itself
    assert len(await client.call("mail.inbox", {"unread": True})) == 1

    # attach: the viewer is gone at once (the heartbeat would take 15 s).
    conn = await _request(daemon, "session.attach", {"id": a["id"]})
    await _until(lambda: len(app.sessions.sessions[a["id"]].viewers) == 1)
    await conn.aclose()
    await _until(lambda: not app.sessions.sessions[a["id"]].viewers, timeout=1.0)
    hist = [h for h in app.timeline.for_subject("session", a["id"]) if h["type"] == "session.attach"]
    assert hist[-1]["data"] == {"attached": False, "reason": "disconnected", "viewers": 0}


async def test_a_half_closed_client_still_gets_its_answer(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    a = await _spawn(client, ["cat"], name="a")
    conn = await _request(daemon, "session.wait", {"ids": [a["id"]], "timeout": 0.5}, rid=5)
    await conn.stream.send_eof()  # like `socat -t`: nothing more to say, still listening
    await _until(lambda: daemon.app.sessions.waiter_count() == 1)
    await trio.sleep(0.1)
    assert daemon.app.sessions.waiter_count() == 1  # not cut short
    with trio.fail_after(3):
        resp = await conn.recv()
    assert resp["id"] == 5 and resp["result"]["done"] is False and resp["result"]["pending"] == [a["id"]]


def test_nudge_text_commands_parse() -> None:
    from maestrod.mail.wake import nudge_text
    from tests.test_templates import check_parses, extract_commands

    text = nudge_text(1, [{"type": "query", "from_name": "w", "subject": "s", "priority": "high"}])
    cmds = extract_commands(text)
    assert cmds
    for cmd in cmds:
        check_parses(cmd)


def test_builtin_templates_know_their_role() -> None:
    for name in templates.BUILTIN:
        t = templates.builtin(name)
        assert briefing.resolve_template(name, t.role) == t
    assert briefing.resolve_template(None, "worker").name == "execute-simple"  # type: ignore[union-attr]
    assert briefing.resolve_template("none", "coordinator") is None
    assert os.path.basename(briefing.SYSTEM_PROMPT_FILE) == "system-prompt.md"
