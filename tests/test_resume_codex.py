"""Resume, hibernate and wake of Codex sessions (``codex resume <thread id>``) with the real Codex CLI,
offline against the scripted Responses API of tests/fake_openai.py.

A real maestrod subprocess runs a Codex session that finished one turn ("remember PELICAN") and a plain
program. maestrod is SIGKILLed; on its next start the Codex session is resumed in the same CODEX_HOME with the
same flags and ``-c`` overrides plus ``resume <thread id>`` (same maestro id, a fresh process), and the plain
program is ``exited (lost)``. A second prompt is answered with the first exchange in its request (the
scripted server sees it); then hibernate and wake round trips, by ``session wake`` and by a prompt. The
rollout is one file throughout (Codex appends to it on resume) and the digest has every turn exactly once.

The binary is found like tests/test_e2e_codex.py (skips without it, fails under MAESTRO_REQUIRE_E2E).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from maestrod.identity import read_stat
from maestrod.sessions.resume import codex_resume_argv, codex_thread, same_process
from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient, maestroctl_env
from tests.fake_openai import FakeOpenAI, function_call, text
from tests.session_support import _project
from tests.subprocess_daemon import LineConn, SubprocessDaemon
from tests.test_e2e_codex import codex_bin  # noqa: F401  (a fixture)
from tests.test_hibernate import _start

KEY_VAR = "MAESTRO_TEST_OPENAI_KEY"
REMEMBER = "Remember the word PELICAN."
NOTED = "Noted: PELICAN."
ASK = "Which word did I ask you to remember?"
RECALLED = "The word was PELICAN."
LONG = "Run the long command now."


def _user_texts(item: Any) -> str:
    if not isinstance(item, dict) or item.get("role") != "user":
        return ""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return " ".join(c.get("text", "") for c in content or [] if isinstance(c, dict))


def script(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Answers by the latest user message: remember, or recall from the conversation the request carries."""
    items = body.get("input") or []
    prompt = next((t for t in map(_user_texts, reversed(items)) if t.strip()), "")
    if ASK in prompt:
        earlier = json.dumps(items[:-1])
        return [text(RECALLED if REMEMBER in earlier and NOTED in earlier else "The word was nothing.")]
    if REMEMBER in prompt:
        return [text(NOTED)]
    if LONG in prompt:
        last = items[-1] if items and isinstance(items[-1], dict) else {}
        if last.get("type") == "function_call_output":
            return [text("The command finished.")]
        return [function_call("exec_command", {"cmd": "tail -f /dev/null"})]
    return [text("Hello there.")]


def test_codex_resume_argv_and_thread(tmp_path: Path) -> None:
    argv = ["/bin/codex", "--no-daemon", "-c", "model=\"m\"", "--image", "a.png"]
    # The id right after `resume`: a multi-value flag at the end cannot take it.
    assert codex_resume_argv(argv, "t1") == ["/bin/codex", "resume", "t1", "--no-daemon", "-c", "model=\"m\"",
                                             "--image", "a.png"]
    home = tmp_path / "codex-home"
    day = home / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    uuid = "01a237cc-37a9-74b0-a52f-a35b6118982f"
    rollout = day / f"rollout-2026-01-02T10-00-00-{uuid}.jsonl"
    row = {"transcript_path": None, "claude_session_id": None}
    assert codex_thread(row, home) is None  # never prompted: no rollout, no thread (it starts afresh)
    rollout.write_text("{}\n")
    # No hook named it (the process died first): the rollout is found, the id is its name's uuid.
    assert codex_thread(row, home) == (uuid, str(rollout))
    assert codex_thread({"transcript_path": str(rollout), "claude_session_id": "hooked"}, home) == ("hooked",
                                                                                                     str(rollout))


async def test_codex_hibernated_before_its_first_prompt_starts_afresh(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog, codex_bin: str  # noqa: F811
) -> None:
    """No rollout, no thread: the wake is a fresh start in the same CODEX_HOME (nothing to lose)."""
    await _project(client, short_tmp)
    model = FakeOpenAI(script).start()
    cfg = daemon.app.config.codex
    cfg.bin, cfg.base_url, cfg.env_key, cfg.model = codex_bin, model.base_url, KEY_VAR, "gpt-5"
    home = short_tmp / "home"
    home.mkdir()
    try:
        s = await client.call("session.spawn", {"project": "p", "name": "cx", "agent": "codex",
                                                "env": {"HOME": str(home), KEY_VAR: "sk-test"}})
        await events.status(s["id"], "idle", timeout=60)
        got = await client.call("session.hibernate", {"id": s["id"]})
        assert got["status"] == "hibernated"
        mark = len(events.items)
        woke = await client.call("session.wake", {"id": s["id"]})
        assert woke["pid"] != s["pid"]
        await events.status(s["id"], "idle", start=mark, timeout=60)
        resumed = [h["data"] for h in (await client.call("session.history", {"id": s["id"]}))["entries"]
                   if h["type"] == "session.resumed"]
        assert resumed == [{"reason": "woken by the human", "how": "afresh (it had written no rollout yet)",
                            "thread_id": None, "cut_off": False}]
        cmdline = Path(f"/proc/{woke['pid']}/cmdline").read_bytes().split(b"\0")
        assert b"resume" not in cmdline and b"--no-daemon" in cmdline
        environ = Path(f"/proc/{woke['pid']}/environ").read_bytes()
        assert f"CODEX_HOME={daemon.app.data_dir / 'sessions' / s['id'] / 'codex-home'}".encode() in environ
        await client.call("session.stop", {"id": s["id"]})
    finally:
        model.stop()


class CodexRig:
    def __init__(self, root: Path, codex: str) -> None:
        self.work, self.home = root / "work", root / "home"
        self.work.mkdir()
        self.home.mkdir()
        self.model = FakeOpenAI(script).start()
        self.daemon = SubprocessDaemon(root / "d")
        (root / "d" / "config" / "maestro").mkdir(parents=True)
        (root / "d" / "config" / "maestro" / "config.toml").write_text(
            f"[codex]\nbin = {json.dumps(codex)}\nbase_url = {json.dumps(self.model.base_url)}\n"
            f"env_key = {json.dumps(KEY_VAR)}\nmodel = \"gpt-5\"\n")
        self.conn: LineConn | None = None

    def start(self) -> None:
        self.conn = _start(self.daemon)
        self.conn.sock.settimeout(120)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        assert self.conn is not None
        return self.conn.call(method, params)

    def wait_idle(self, sid: str) -> None:
        r = self.call("session.wait", {"ids": [sid], "until": "idle", "timeout": 90})
        assert r["done"], r

    def summaries(self, sid: str) -> list[str]:
        if not self.call("session.get", {"id": sid})["transcript_path"]:
            return []  # no rollout yet: Codex writes it with the first prompt
        entries = self.call("session.digest", {"id": sid, "mode": "text", "last": 1000})["entries"]
        return [e["summary"] for e in entries]

    def wait_digest(self, sid: str, text: str, times: int = 1) -> list[str]:
        """The digest's summaries once ``times`` of them hold ``text`` (read again after each of the
        session's ``session.digest`` events)."""
        sub = LineConn(self.daemon.socket, timeout=90)
        try:
            sub.call("events.subscribe", {"topics": ["session.digest"]})
            summaries = self.summaries(sid)
            while sum(text in x for x in summaries) < times:
                line = sub.line()
                assert line is not None, "maestrod went away"
                if json.loads(line).get("params", {}).get("data", {}).get("session_id") == sid:
                    summaries = self.summaries(sid)
            return summaries
        finally:
            sub.close()

    def prompt_and_wait(self, sid: str, message: str, answer: str) -> list[str]:
        n = sum(answer in x for x in self.summaries(sid))
        self.call("session.prompt", {"id": sid, "message": message})
        summaries = self.wait_digest(sid, answer, n + 1)
        self.wait_idle(sid)
        return summaries

    def requests_with(self, needle: str) -> list[dict[str, Any]]:
        with self.model.lock:
            return [b for _, b in self.model.requests if needle in json.dumps(b.get("input", [])[-1:])]

    def history(self, sid: str) -> list[dict[str, Any]]:
        return list(self.call("session.history", {"id": sid})["entries"])

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.daemon.stop()
        self.model.stop()


def _cmdline(pid: int) -> list[str]:
    return [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]


@pytest.mark.e2e
def test_codex_sigkill_resume_then_hibernate_and_wake(short_tmp: Path, codex_bin: str) -> None:  # noqa: F811
    rig = CodexRig(short_tmp, codex_bin)
    try:
        rig.start()
        rig.call("project.create", {"name": "demo", "dir": str(rig.work)})
        a = rig.call("session.spawn", {"project": "demo", "name": "keeper", "cwd": str(rig.work), "agent": "codex",
                                       "env": {"HOME": str(rig.home), KEY_VAR: "sk-test-resume"},
                                       "argv": ["--sandbox", "danger-full-access"]})
        b = rig.call("session.spawn", {"project": "demo", "name": "runner", "cwd": str(rig.work), "agent": "codex",
                                       "env": {"HOME": str(rig.home), KEY_VAR: "sk-test-resume"},
                                       "argv": ["--sandbox", "danger-full-access"]})
        plain = rig.call("session.spawn", {"project": "demo", "name": "plain", "agent": "command", "argv": ["cat"]})
        sid = a["id"]
        rig.wait_idle(sid)
        rig.wait_idle(b["id"])
        rig.prompt_and_wait(sid, REMEMBER, NOTED)
        # B is in its turn once its long command is under way (its PreToolUse hook was reported).
        sub = LineConn(rig.daemon.socket, timeout=90)
        sub.call("events.subscribe", {"topics": ["session.hook"]})
        rig.call("session.prompt", {"id": b["id"], "message": LONG})
        while not any(h["data"].get("event") == "PreToolUse" for h in rig.history(b["id"])):
            sub.line()
        sub.close()
        assert rig.call("session.get", {"id": b["id"]})["status"] == "working"
        first = rig.call("session.get", {"id": sid})
        rollout, thread = first["transcript_path"], first["claude_session_id"]
        assert rollout and thread and thread in rollout
        pid = first["pid"]
        start = (read_stat(pid) or pytest.fail("no process")).start

        assert rig.conn is not None
        rig.conn.close()
        rig.daemon.kill9()
        rig.start()
        rig.wait_idle(sid)
        after = rig.call("session.get", {"id": sid})
        assert after["pid"] != pid and not same_process(pid, start)
        assert (after["name"], after["transcript_path"], after["claude_session_id"]) == ("keeper", rollout, thread)
        resumed = [h["data"] for h in rig.history(sid) if h["type"] == "session.resumed"]
        assert len(resumed) == 1 and "previous daemon" in resumed[0]["reason"]
        assert resumed[0]["how"] == "codex resume" and resumed[0]["thread_id"] == thread
        argv = _cmdline(after["pid"])
        # The same flags and -c overrides, plus `resume <thread id>`.
        # (argv[0] is node: the npm `codex` is a script)
        assert argv[argv.index("resume") + 1] == thread and "--no-daemon" in argv and "danger-full-access" in argv
        assert any(x.startswith("developer_instructions=") and "<composed system prompt" not in x for x in argv)
        assert f"CODEX_HOME={short_tmp}/d/data/maestro/sessions/{sid}/codex-home".encode() in Path(
            f"/proc/{after['pid']}/environ").read_bytes()
        # The cut-off turn: resumed idle, and a person is told.
        rig.wait_idle(b["id"])
        after_b = rig.call("session.get", {"id": b["id"]})
        assert after_b["status"] == "idle" and "cut off" in (after_b["needs_attention"] or "")
        lost = rig.call("session.get", {"id": plain["id"]})
        assert (lost["status"], lost["exit_reason"]) == ("exited", "lost")

        # The first exchange is still in the thread: the scripted server sees it in the second prompt's request.
        summaries = rig.prompt_and_wait(sid, ASK, RECALLED)
        asked = rig.requests_with(ASK)
        assert asked and REMEMBER in json.dumps(asked[0]["input"]) and NOTED in json.dumps(asked[0]["input"])
        assert all(sum(t in x for x in summaries) == 1 for t in (REMEMBER, NOTED, ASK, RECALLED)), summaries

        # Hibernate, then wake with `session wake`.
        env = maestroctl_env(rig.daemon.socket)
        pid = after["pid"]
        start = (read_stat(pid) or pytest.fail("no process")).start
        out = subprocess.run([MAESTROCTL, "session", "hibernate", sid], env=env, capture_output=True, text=True,
                             check=True, timeout=120).stdout
        assert "hibernated" in out and not same_process(pid, start)
        woke = json.loads(subprocess.run([MAESTROCTL, "--json", "session", "wake", sid], env=env,
                                         capture_output=True, text=True, check=True, timeout=120).stdout)
        assert woke["pid"] != pid
        rig.wait_idle(sid)
        assert [h["data"]["reason"] for h in rig.history(sid) if h["type"] == "session.resumed"][-1] \
            == "woken by the human"
        summaries = rig.prompt_and_wait(sid, ASK, RECALLED)
        assert sum(RECALLED in x for x in summaries) == 2 and sum(REMEMBER in x for x in summaries) == 1

        # Hibernate again; a prompt wakes it and is answered in the same thread.
        pid = rig.call("session.get", {"id": sid})["pid"]
        rig.call("session.hibernate", {"id": sid})
        assert rig.call("session.get", {"id": sid})["status"] == "hibernated"
        n_before = len(rig.requests_with(ASK))
        summaries = rig.prompt_and_wait(sid, ASK, RECALLED)
        got = rig.call("session.get", {"id": sid})
        assert got["status"] == "idle" and got["pid"] != pid and got["transcript_path"] == rollout
        assert [h["data"]["reason"] for h in rig.history(sid) if h["type"] == "session.resumed"][-1] \
            == "a prompt from the human"
        later = rig.requests_with(ASK)
        assert len(later) > n_before and REMEMBER in json.dumps(later[-1]["input"])
        # One rollout file all along; every turn in the digest exactly once.
        assert len(list(Path(rollout).parent.parent.parent.parent.rglob("rollout-*.jsonl"))) == 1
        assert [sum(t in x for x in summaries) for t in (REMEMBER, NOTED, ASK, RECALLED)] == [1, 1, 3, 3], summaries
    finally:
        rig.close()
    assert list(rig.home.iterdir()) == [] and list(rig.work.iterdir()) == []
