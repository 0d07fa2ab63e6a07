"""Hibernate, wake and resume without the real Claude Code: the scripted stand-in (tests/conftest.py
FAKE_CLAUDE, which takes ``--resume`` like Claude Code), in the in-process daemon and in a maestrod
subprocess that is SIGKILLed. The real Claude Code round trips are in tests/test_resume.py."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from maestrod.identity import read_stat
from maestrod.sessions.resume import same_process
from tests.conftest import MAESTROD, Daemon, EventLog, RawClient, maestroctl_env, wait_screen
from tests.session_support import _ctl, _error, _fake_claude, _project, _spawn
from tests.subprocess_daemon import LineConn, SubprocessDaemon, _die_with_parent


def token_of(pid: int) -> str:
    """The session token the process was started with (its environment)."""
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"MAESTRO_SESSION_TOKEN="))


async def test_hibernate_then_wake_by_command_and_by_prompt(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, name="sleeper")
    sid, pid = s["id"], s["pid"]
    old_token = token_of(pid)
    assert daemon.app.sessions.token_lookup(old_token) == sid
    start = read_stat(pid)
    assert start is not None

    got = await client.call("session.hibernate", {"id": sid})
    assert got["status"] == "hibernated" and got["name"] == "sleeper"
    assert not same_process(pid, start.start)
    assert daemon.app.sessions.token_lookup(old_token) is None  # the token died with the process
    listed = await client.call("session.list", {"status": ["hibernated"]})
    assert [x["id"] for x in listed] == [sid]
    err = await _error(client, "session.input", {"id": sid, "text": "x"})
    assert "hibernated" in err["message"] and "wake" in err["message"]
    assert sid not in daemon.app.transcripts.watched()

    mark = len(events.items)
    woke = await client.call("session.wake", {"id": sid})
    assert woke["pid"] != pid and woke["status"] in ("spawning", "idle")
    await events.status(sid, "idle", start=mark)
    new_token = token_of(woke["pid"])
    assert new_token != old_token and daemon.app.sessions.token_lookup(new_token) == sid
    assert daemon.app.sessions.token_lookup(old_token) is None
    history = (await client.call("session.history", {"id": sid}))["entries"]
    resumed = [h["data"] for h in history if h["type"] == "session.resumed"]
    assert resumed == [{"reason": "woken by the human", "how": "--session-id (it had written no transcript yet)",
                        "claude_session_id": s["claude_session_id"], "cut_off": False}]
    shown = await _ctl(maestroctl_env(daemon.socket_path), "session", "history", sid)
    assert "resumed  with --session-id (it had written no transcript yet): woken by the human  by human" in shown
    assert "status  idle -> hibernated  (daemon: hibernated: its process was stopped" in shown
    # the stand-in was started the way a relaunch starts Claude Code, keeping the session's identity
    argv = Path(f"/proc/{woke['pid']}/cmdline").read_bytes().split(b"\0")
    assert s["claude_session_id"].encode() in argv
    assert sid in Path(f"/proc/{woke['pid']}/environ").read_text(errors="replace")

    # Hibernated again, a prompt wakes it and is typed once it is up.
    await client.call("session.hibernate", {"id": sid})
    mark = len(events.items)
    answer = await client.call("session.prompt", {"id": sid, "message": "after the nap"})
    assert answer["state"] in ("queued", "delivered")
    await wait_screen(daemon.app, sid, lambda t: "prompt: after the nap" in t)
    resumed_evt = await events.wait_for(lambda e: e["topic"] == "session.resumed" and e["data"]["session_id"] == sid,
                                        start=mark)
    assert resumed_evt["data"]["reason"] == "a prompt from the human"


async def test_urgent_mail_wakes_a_hibernated_session(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, name="napper")
    await client.call("session.hibernate", {"id": s["id"]})
    mark = len(events.items)
    await client.call("mail.send", {"to": [s["id"]], "subject": "wake up", "body": "now", "priority": "high"})
    resumed = await events.wait_for(lambda e: e["topic"] == "session.resumed" and e["data"]["session_id"] == s["id"],
                                    start=mark)
    assert resumed["data"]["reason"] == "a prompt from maestro"
    text = await wait_screen(daemon.app, s["id"], lambda t: "prompt: " in t and "wake up" in t)
    assert "unread" in text


async def test_hibernate_and_wake_refusals(
    daemon: Daemon, client: RawClient, short_tmp: Path, fake_claude: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    plain = await _spawn(client, ["cat"], name="plain")
    err = await _error(client, "session.hibernate", {"id": plain["id"]})
    assert "not a Claude Code session or a Codex session" in err["message"]
    await client.call("session.stop", {"id": plain["id"]})
    err = await _error(client, "session.wake", {"id": plain["id"]})
    assert "is exited; only a hibernated session" in err["message"]

    s = await _fake_claude(daemon, client, fake_claude, events, name="busy")
    same = await client.call("session.wake", {"id": s["id"]})  # awake already: answered as it is
    assert same["pid"] == s["pid"] and same["status"] == "idle"
    await client.call("session.prompt", {"id": s["id"], "message": "work"})
    await events.status(s["id"], "working")
    err = await _error(client, "session.hibernate", {"id": s["id"]})
    assert "is working; only an idle session" in err["message"]
    err = await _error(client, "session.hibernate", {"id": "no-such"})
    assert err["code"] != -32603


# -- a maestrod subprocess, SIGKILLed ------------------------------------------------------------------


def _start(d: SubprocessDaemon) -> LineConn:
    """A foreground maestrod (no NOTIFY_SOCKET), once its socket answers."""
    with open(d.log, "ab") as log:
        d.proc = subprocess.Popen([MAESTROD, "--no-web", "--log-level", "info"], env=d.env,
                                  stdout=subprocess.DEVNULL, stderr=log, preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 60
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(d.socket))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert d.alive() and time.monotonic() < deadline, d.log.read_text()[-2000:]
        time.sleep(0.02)
    return LineConn(d.socket, timeout=60)


def _rig(root: Path, fake: Path, config: str) -> SubprocessDaemon:
    d = SubprocessDaemon(root)
    (root / "config" / "maestro").mkdir(parents=True)
    (root / "config" / "maestro" / "config.toml").write_text(config)
    d.env["MAESTRO_CLAUDE_BIN"] = str(fake)
    return d


def _history(conn: LineConn, sid: str) -> list[dict[str, Any]]:
    return list(conn.call("session.history", {"id": sid})["entries"])


def test_sigkill_resume_waits_for_the_old_process(short_tmp: Path, fake_claude: Path) -> None:
    """The old agent ignores SIGHUP and outlives its terminal: it is ended (SIGTERM) before its conversation
    is resumed, so two processes never write one conversation. A plain program ends exited (lost)."""
    d = _rig(short_tmp, fake_claude, "[sessions]\nstop_timeout = 0.3\n")
    conn = _start(d)
    try:
        conn.call("project.create", {"name": "p", "dir": str(short_tmp)})
        s = conn.call("session.spawn", {"project": "p", "name": "stubborn", "env": {"FAKE_IGNORE_HUP": "1"}})
        plain = conn.call("session.spawn", {"project": "p", "name": "plain", "agent": "command", "argv": ["cat"]})
        assert conn.call("session.wait", {"ids": [s["id"]], "until": "idle", "timeout": 30})["done"]
        pid = conn.call("session.get", {"id": s["id"]})["pid"]
        start = read_stat(pid)
        assert start is not None
        conn.close()
        d.kill9()
        assert same_process(pid, start.start)  # it lives on without its terminal

        conn = _start(d)
        assert conn.call("session.wait", {"ids": [s["id"]], "until": "idle", "timeout": 30})["done"]
        got = conn.call("session.get", {"id": s["id"]})
        assert got["status"] == "idle" and got["pid"] != pid
        assert not same_process(pid, start.start)
        resumed = [h["data"] for h in _history(conn, s["id"]) if h["type"] == "session.resumed"]
        assert len(resumed) == 1 and resumed[0]["old_process"] == "ended by SIGTERM"
        assert resumed[0]["old_pid"] == pid and "still ending" in resumed[0]["reason"]
        statuses = [h["data"]["to"] for h in _history(conn, s["id"]) if h["type"] == "session.status"]
        assert statuses[-2:] == ["spawning", "idle"]
        lost = conn.call("session.get", {"id": plain["id"]})
        assert (lost["status"], lost["exit_reason"]) == ("exited", "lost")
    finally:
        conn.close()
        d.stop()


def test_auto_resume_off_and_a_clean_stop(short_tmp: Path, fake_claude: Path) -> None:
    """A clean stop (SIGTERM) suspends a Claude session: it is resumed at the next start. With
    ``auto_resume = false`` a lost Claude session ends exited (lost) like any other."""
    d = _rig(short_tmp, fake_claude, "[sessions]\nstop_timeout = 0.5\n")
    conn = _start(d)
    try:
        conn.call("project.create", {"name": "p", "dir": str(short_tmp)})
        s = conn.call("session.spawn", {"project": "p", "name": "agent"})
        assert conn.call("session.wait", {"ids": [s["id"]], "until": "idle", "timeout": 30})["done"]
        conn.close()
        d.stop()  # SIGTERM: a clean stop
        conn = _start(d)
        assert conn.call("session.wait", {"ids": [s["id"]], "until": "idle", "timeout": 30})["done"]
        kinds = [h["type"] for h in _history(conn, s["id"])]
        assert "session.suspended" in kinds and kinds.count("session.resumed") == 1
        assert conn.call("session.get", {"id": s["id"]})["status"] == "idle"

        conn.close()
        d.kill9()
        (short_tmp / "config" / "maestro" / "config.toml").write_text("[sessions]\nauto_resume = false\n")
        conn = _start(d)
        got = conn.call("session.get", {"id": s["id"]})
        assert (got["status"], got["exit_reason"]) == ("exited", "lost")
        assert [h["type"] for h in _history(conn, s["id"])].count("session.resumed") == 1
    finally:
        conn.close()
        d.stop()
