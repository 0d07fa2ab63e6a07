"""Resume and hibernate with the real Claude Code (issue 9), offline against tests/fake_anthropic.py.

A real maestrod subprocess (not the in-process fixture) runs three sessions: a Claude session that finished
one turn, a Claude session in the middle of a turn (a long Bash call), and a plain program. maestrod is
SIGKILLed; on its next start the first is resumed (``claude --resume``, same id, a fresh process), its
transcript digest goes on with no entry lost or repeated, and a second prompt is answered with the first
turn in its context (the scripted model server sees it in the request); the second is resumed idle with
``needs_attention`` saying its turn was cut off; the plain program is ``exited (lost)``. Then hibernate and
wake round trips: by ``session wake``, and by a prompt.

Skips without the Claude Code binary, like tests/test_e2e_claude.py (fails under MAESTRO_REQUIRE_E2E).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from maestrod.identity import read_stat
from maestrod.sessions.resume import resume_argv, same_process
from tests.conftest import MAESTROCTL, MAESTROD, maestroctl_env
from tests.fake_anthropic import FakeAnthropic
from tests.subprocess_daemon import LineConn, SubprocessDaemon, _die_with_parent
from tests.test_e2e_claude import claude_bin, claude_home, spawn_env  # noqa: F401  (claude_bin: a fixture)

REMEMBER = "Remember the word PELICAN."
ASK = "Which word did I ask you to remember?"
LONG = "Run the long command now."


def _texts(msg: dict[str, Any]) -> str:
    content = msg.get("content")
    if isinstance(content, str):
        return content
    return " ".join(c.get("text", "") for c in content or [] if c.get("type") == "text")


def script(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Answers by the latest prompt: remember, recall (from the conversation the request carries), start a
    long Bash call (left running: the daemon is killed under it), or greet."""
    msgs = body.get("messages", [])
    last = msgs[-1] if msgs else {}
    if isinstance(last.get("content"), list) and any(c.get("type") == "tool_result" for c in last["content"]):
        return [{"type": "text", "text": "The command finished."}]
    prompt = next((_texts(m) for m in reversed(msgs) if m.get("role") == "user" and _texts(m).strip()), "")
    if ASK in prompt:
        earlier = json.dumps(msgs[:-1])
        word = "PELICAN" if REMEMBER in earlier and "Noted: PELICAN." in earlier else "nothing"
        return [{"type": "text", "text": f"The word was {word}."}]
    if REMEMBER in prompt:
        return [{"type": "text", "text": "Noted: PELICAN."}]
    if LONG in prompt:
        return [{"type": "tool_use", "name": "Bash",
                 "input": {"command": "tail -f /dev/null", "description": "a long command"}}]
    return [{"type": "text", "text": "Hello there."}]


def test_resume_argv_swaps_session_id_for_resume() -> None:
    argv = ["/bin/claude", "--session-id", "old", "--settings", "s.json", "--append-system-prompt", "x"]
    assert resume_argv(argv, "cur") == ["/bin/claude", "--resume", "cur", "--settings", "s.json",
                                        "--append-system-prompt", "x"]
    assert resume_argv(["/bin/claude", "--settings", "s"], "c") == ["/bin/claude", "--resume", "c", "--settings", "s"]


def test_same_process_tells_a_recycled_pid() -> None:
    me = read_stat(os.getpid())
    assert me is not None
    assert same_process(os.getpid(), me.start)
    assert not same_process(os.getpid(), me.start + 1)  # the same pid, started at another time: not it
    assert same_process(os.getpid(), None)  # unknown start (an older row): any process with the pid counts
    assert not same_process(None, None)


class Rig:
    def __init__(self, root: Path, claude: str) -> None:
        self.root = root
        self.work, self.home = root / "work", root / "home"
        self.work.mkdir()
        claude_home(self.home, self.work)
        self.model = FakeAnthropic(script).start()
        self.daemon = SubprocessDaemon(root / "d")
        (root / "d").mkdir()
        self.daemon.env["MAESTRO_CLAUDE_BIN"] = claude
        self.conn: LineConn | None = None

    def start(self) -> LineConn:
        """maestrod in the foreground (no NOTIFY_SOCKET: not under systemd, nothing keeps its terminals),
        answering on its socket."""
        d = self.daemon
        with open(d.log, "ab") as log:
            d.proc = subprocess.Popen([MAESTROD, "--no-web", "--log-level", "info"], env=d.env,
                                      stdout=subprocess.DEVNULL, stderr=log, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 60
        while True:  # the socket file exists before it listens: connect until it answers
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(d.socket))
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    assert d.alive() and time.monotonic() < deadline, d.log.read_text()[-2000:]
            time.sleep(0.02)
        self.conn = LineConn(d.socket, timeout=120)
        assert self.conn.call("system.ping") == "pong"
        return self.conn

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        assert self.conn is not None
        return self.conn.call(method, params)

    def spawn(self, name: str) -> dict[str, Any]:
        env = spawn_env(self.home, self.model.url)
        return self.call("session.spawn", {
            "project": "demo", "name": name, "cwd": str(self.work), "agent": "claude",
            "allowed_tools": "Bash", "permission_mode": "acceptEdits",
            "env": dict(e.split("=", 1) for e in env)})

    def wait_idle(self, *sids: str) -> None:
        r = self.call("session.wait", {"ids": list(sids), "until": "idle", "timeout": 90})
        assert r["done"], r

    def turns_with(self, text: str) -> list[dict[str, Any]]:
        with self.model.lock:
            turns = list(self.model.agent_turns)
        return [t for t in turns if text in _texts(t["messages"][-1]) or (
            text in json.dumps(t["messages"][-1:]))]

    def prompt_and_wait(self, sid: str, text: str, answer: str) -> None:
        """Prompt, and wait until the answer is in the transcript digest once more (the turn is over)."""
        n = self.count(sid, answer)
        self.call("session.prompt", {"id": sid, "message": text})
        self.wait_digest(sid, answer, n + 1)
        self.wait_idle(sid)

    def count(self, sid: str, text: str) -> int:
        entries = self.call("session.digest", {"id": sid, "mode": "text", "last": 1000})["entries"]
        return sum(text in e["summary"] for e in entries)

    def wait_digest(self, sid: str, text: str, times: int = 1) -> list[dict[str, Any]]:
        """The session's text-mode digest entries, once ``times`` of them hold ``text`` (read again after
        each of the session's ``session.digest`` events)."""
        assert self.conn is not None
        sub = LineConn(self.daemon.socket, timeout=90)
        try:
            sub.call("events.subscribe", {"topics": ["session.digest"]})
            entries = self.call("session.digest", {"id": sid, "mode": "text", "last": 1000})["entries"]
            while sum(text in e["summary"] for e in entries) < times:
                line = sub.line()
                assert line is not None, "maestrod went away"
                msg = json.loads(line)
                if msg.get("params", {}).get("data", {}).get("session_id") == sid:
                    entries = self.call("session.digest", {"id": sid, "mode": "text", "last": 1000})["entries"]
            return list(entries)
        finally:
            sub.close()

    def history(self, sid: str) -> list[dict[str, Any]]:
        return list(self.call("session.history", {"id": sid})["entries"])

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.daemon.stop()
        self.model.stop()


def ctl(rig: Rig, *args: str) -> str:
    return subprocess.run([MAESTROCTL, *args], env=maestroctl_env(rig.daemon.socket), capture_output=True,
                          text=True, check=True, timeout=120).stdout


def gone(pid: int, start: int | None) -> bool:
    return not same_process(pid, start)


@pytest.mark.e2e
def test_sigkill_resume_then_hibernate_and_wake(short_tmp: Path, claude_bin: str) -> None:  # noqa: F811
    rig = Rig(short_tmp, claude_bin)
    try:
        rig.start()
        rig.call("project.create", {"name": "demo", "dir": str(rig.work)})
        a = rig.spawn("keeper")
        b = rig.spawn("runner")
        c = rig.call("session.spawn", {"project": "demo", "name": "plain", "agent": "command", "argv": ["cat"]})
        rig.wait_idle(a["id"], b["id"])

        rig.prompt_and_wait(a["id"], REMEMBER, "Noted: PELICAN.")
        rig.call("session.prompt", {"id": b["id"], "message": LONG})
        # B is in its turn once the Bash call is under way (its PreToolUse hook was reported).
        sub = LineConn(rig.daemon.socket, timeout=90)
        sub.call("events.subscribe", {"topics": ["session.hook"]})
        if not any(h["data"].get("event") == "PreToolUse" for h in rig.history(b["id"])):
            while True:
                msg = json.loads(sub.line() or b"{}")
                data = msg.get("params", {}).get("data", {})
                if data.get("session_id") == b["id"] and data.get("event") == "PreToolUse":
                    break
        sub.close()
        assert rig.call("session.get", {"id": b["id"]})["status"] == "working"

        before = {s: rig.call("session.get", {"id": s}) for s in (a["id"], b["id"])}
        starts = {s: (read_stat(before[s]["pid"]) or pytest.fail("no process")).start for s in before}
        rig.conn.close()  # type: ignore[union-attr]
        rig.daemon.kill9()

        rig.start()
        rig.wait_idle(a["id"], b["id"])
        after_a = rig.call("session.get", {"id": a["id"]})
        after_b = rig.call("session.get", {"id": b["id"]})
        assert after_a["status"] == "idle" and after_a["name"] == "keeper"
        assert after_a["pid"] != before[a["id"]]["pid"] and gone(before[a["id"]]["pid"], starts[a["id"]])
        assert after_a["claude_session_id"] == a["claude_session_id"]
        assert after_a["transcript_path"] == a["transcript_path"]
        resumed = [h for h in rig.history(a["id"]) if h["type"] == "session.resumed"]
        assert len(resumed) == 1 and "previous daemon" in resumed[0]["data"]["reason"]
        assert resumed[0]["data"]["how"] == "--resume" and resumed[0]["data"]["cut_off"] is False
        assert rig.call("session.get", {"id": c["id"]})["status"] == "exited"
        assert rig.call("session.get", {"id": c["id"]})["exit_reason"] == "lost"

        # The cut-off turn: resumed idle, and a person is told.
        assert after_b["status"] == "idle" and gone(before[b["id"]]["pid"], starts[b["id"]])
        assert "cut off" in (after_b["needs_attention"] or "")

        # The first turn is still in the conversation: the model sees it in the second prompt's request.
        rig.prompt_and_wait(a["id"], ASK, "The word was PELICAN.")
        asked = rig.turns_with(ASK)
        assert asked and REMEMBER in json.dumps(asked[0]["messages"])
        entries = rig.wait_digest(a["id"], "The word was PELICAN.")
        summaries = [e["summary"] for e in entries]
        seqs = [e["seq"] for e in entries]
        assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs)
        for text in (REMEMBER, "Noted: PELICAN.", ASK, "The word was PELICAN."):
            assert sum(text in s for s in summaries) == 1, (text, summaries)

        # Hibernate, then wake with `session wake`.
        pid = after_a["pid"]
        start = (read_stat(pid) or pytest.fail("no process")).start
        out = ctl(rig, "session", "hibernate", a["id"])
        assert "hibernated" in out and gone(pid, start)
        listed = ctl(rig, "session", "list", "--status", "hibernated")
        assert a["id"] in listed and "hibernated" in listed
        woke = json.loads(ctl(rig, "--json", "session", "wake", a["id"]))
        assert woke["status"] in ("spawning", "idle") and woke["pid"] != pid
        rig.wait_idle(a["id"])
        assert rig.call("session.get", {"id": a["id"]})["status"] == "idle"
        whys = [h["data"]["reason"] for h in rig.history(a["id"]) if h["type"] == "session.resumed"]
        assert whys[-1] == "woken by the human"

        # Hibernate again; a prompt wakes it and is answered in the same conversation.
        pid = rig.call("session.get", {"id": a["id"]})["pid"]
        rig.call("session.hibernate", {"id": a["id"]})
        assert rig.call("session.get", {"id": a["id"]})["status"] == "hibernated"
        n_before = len(rig.turns_with(ASK))
        rig.prompt_and_wait(a["id"], ASK, "The word was PELICAN.")
        got = rig.call("session.get", {"id": a["id"]})
        assert got["status"] == "idle" and got["pid"] != pid
        assert [h["data"]["reason"] for h in rig.history(a["id"]) if h["type"] == "session.resumed"][-1] \
            == "a prompt from the human"
        later = rig.turns_with(ASK)
        assert len(later) > n_before and REMEMBER in json.dumps(later[-1]["messages"])
    finally:
        rig.close()
