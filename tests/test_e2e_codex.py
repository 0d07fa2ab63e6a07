"""End to end with the real Codex CLI: spawned by maestrod in a PTY (``--agent codex``), offline against the
scripted Responses API of tests/fake_openai.py, prompted with ``maestroctl session prompt`` (bracketed
paste + Enter). The scripted model answers with an ``exec_command`` call running ``maestroctl task update``
from inside the agent (the agent -> daemon path with the session's own token), then a text. The test sees
the command in the session's digest (from the rollout), the status back to idle, and ``session explain``
naming the witnesses that agreed; and that nothing was written outside the session's own directory (HOME is
a fresh directory that stays empty: no ``~/.codex``).

The binary: ``$MAESTRO_TEST_CODEX_BIN``, else ``.ci/cache/codex/node_modules/.bin/codex`` (what ``.ci/run``
installs), else ``codex`` on PATH. Without one the test skips with the reason -- unless
``MAESTRO_REQUIRE_E2E`` is set (CI), where it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import MAESTROCTL, REPO, Daemon, EventLog, RawClient, maestroctl_env, wait_screen
from tests.fake_openai import FakeOpenAI, after_outputs, function_call
from tests.session_support import _ctl

pytestmark = pytest.mark.e2e

KEY_VAR = "MAESTRO_TEST_OPENAI_KEY"


def find_codex() -> str | None:
    for c in (os.environ.get("MAESTRO_TEST_CODEX_BIN"),
              str(REPO / ".ci" / "cache" / "codex" / "node_modules" / ".bin" / "codex"), shutil.which("codex")):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


@pytest.fixture
def codex_bin() -> str:
    found = find_codex()
    if found is None:
        reason = ("Codex CLI not installed: set MAESTRO_TEST_CODEX_BIN or run .ci/run (npm install "
                  "@openai/codex@0.171.0)" + ("" if shutil.which("npm") else "; npm is absent"))
        if os.environ.get("MAESTRO_REQUIRE_E2E"):
            pytest.fail(reason + " -- and MAESTRO_REQUIRE_E2E is set: the end-to-end test must run here")
        pytest.skip(reason)
    return found


async def test_real_codex_prompted_runs_a_command_digested_and_idle(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog, codex_bin: str
) -> None:
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    home.mkdir()
    await client.call("project.create", {"name": "demo", "dir": str(work)})
    task = await client.call("task.create", {"project": "demo", "title": "wire the thing"})
    command = f"{MAESTROCTL} task update {task['id']} --status in_progress"
    final = "Task started; the status is in_progress now."
    model = FakeOpenAI(after_outputs([function_call("exec_command", {"cmd": command})], final)).start()
    cfg = daemon.app.config.codex
    cfg.bin, cfg.base_url, cfg.env_key, cfg.model = codex_bin, model.base_url, KEY_VAR, "gpt-5"
    env = maestroctl_env(daemon.socket_path)
    try:
        s = json.loads(await _ctl(env, "--json", "session", "spawn", "--project", "demo", "--name", "agent",
                                  "--cwd", str(work), "--agent", "codex", "--task", task["id"],
                                  "--env", f"HOME={home}", "--env", f"{KEY_VAR}=sk-test-e2e",
                                  "--", "--sandbox", "danger-full-access"))
        sid = s["id"]
        assert s["agent"] == "codex" and s["status"] == "spawning" and s["transcript_path"] is None
        codex_home = daemon.app.data_dir / "sessions" / sid / "codex-home"
        environ = dict(e.split(b"=", 1) for e in Path(f"/proc/{s['pid']}/environ").read_bytes().split(b"\0") if e)
        assert environ[b"CODEX_HOME"] == str(codex_home).encode() and environ[b"MAESTRO_SESSION_ID"] == sid.encode()
        assert any("developer_instructions=<composed system prompt:" in a for a in s["argv"])

        await events.status(sid, "idle", timeout=60)  # the empty composer on screen
        await wait_screen(daemon.app, sid, lambda t: "OpenAI Codex" in t, timeout=30)
        out = await _ctl(env, "session", "prompt", sid, "--message", f"Please start task {task['id']}.",
                         "--wait", "60")
        assert "confirmed by the agent" in out
        # The turn's Stop hook (Codex runs it after the rollout's task_complete; it may come a moment after
        # the transcript and the screen agreed), then the one way back to idle: no flicker on the way.
        await events.wait_for(lambda e: (e["topic"] == "session.hook" and e["data"]["session_id"] == sid
                                         and e["data"]["event"] == "Stop"), timeout=90)
        await events.wait_for(lambda e: (e["topic"] == "session.status" and e["data"]["session_id"] == sid
                                         and e["data"]["from"] == "working" and e["data"]["to"] == "idle"),
                              timeout=30)
        assert events.statuses(sid) == ["idle", "working", "idle"], [
            (e["data"]["to"], e["data"]["source"]) for e in events.items
            if e["topic"] == "session.status" and e["data"]["session_id"] == sid]
        await wait_screen(daemon.app, sid, lambda t: final in t, timeout=30)

        # The command ran inside the agent, as the session.
        got = await client.call("task.get", {"id": task["id"]})
        assert got["status"] == "in_progress"
        history = await client.call("task.history", {"id": task["id"]})
        assert next(h for h in history if h["type"] == "task.status_changed")["actor"] == sid
        hooks = [e["data"]["event"] for e in events.items
                 if e["topic"] == "session.hook" and e["data"]["session_id"] == sid]
        assert {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"} <= set(hooks)
        first = model.requests[0][1]
        assert "<session" in json.dumps(first) or sid in json.dumps(first)  # the briefing reached the model

        # The rollout became the session's transcript; its digest shows the prompt, the command and the words.
        found = await events.wait_for(lambda e: e["topic"] == "session.transcript" and e["data"]["session_id"] == sid)
        rollout = Path(found["data"]["transcript_path"])
        assert rollout.is_file() and codex_home / "sessions" in rollout.parents
        row = await client.call("session.get", {"id": sid})
        assert row["transcript_path"] == str(rollout)
        for _ in range(50):
            digest = await client.call("session.digest", {"id": sid, "last": 20})
            summaries = [e["summary"] for e in digest["entries"]]
            if any(final[:20] in x for x in summaries) and digest["state"] == "idle":
                break
            await daemon.app.transcripts.sync(sid)
        assert summaries[0] == f"[PROMPT] Please start task {task['id']}.", summaries
        shell = [x for x in summaries if "task update" in x]
        assert shell and not any(e["is_error"] for e in digest["entries"]), summaries
        assert digest["state"] == "idle", summaries
        print("digest:", *summaries, sep="\n  ")
        usage = json.loads(await _ctl(env, "--json", "session", "usage", sid))
        # From the rollout's token_count events: what the scripted model reported, 20 output tokens a response
        # (the turn's two model calls at least; Codex's side requests, such as a title, may not be counted).
        out_tokens = usage["usage"]["output_tokens"]
        assert out_tokens % 20 == 0 and 40 <= out_tokens <= 20 * len(model.requests), (usage, len(model.requests))
        assert usage["usage"]["input_tokens"] > 0 and usage["cost_usd"] > 0 and "gpt-5" in usage["by_model"]

        # Which witnesses agreed that the turn is over.
        why = await client.call("session.explain", {"id": sid})
        assert why["status"] == "idle" and why["gate"]["open"]
        assert why["witnesses"]["hooks"]["event"] == "Stop"
        assert why["witnesses"]["transcript"]["state"] == "idle"
        assert why["witnesses"]["screen"]["rule"] == "empty-prompt"
        text = await _ctl(env, "session", "explain", sid)
        assert "Stop" in text and "empty-prompt" in text

        stopped = json.loads(await _ctl(env, "--json", "session", "stop", sid))
        assert stopped["status"] == "exited"
    finally:
        model.stop()
    # Nothing outside the session's directory: HOME (no ~/.codex) and the repository stay untouched.
    assert list(home.iterdir()) == []
    assert list(work.iterdir()) == []
