"""End to end with the real Claude Code (issue 4): a worker's failing Bash calls become ✗ entries in its
live digest and a ``session.needs_attention`` event; its coordinator's next model request, as seen by the
scripted model server, carries the worker's digest inside ``<coordinator_context>`` (printed by the
coordinator's UserPromptSubmit hook).

Uses the sessions e2e harness (``tests/test_e2e_claude.py``: the binary lookup, an offline HOME, and
``tests/fake_anthropic.py``); skips like it when Claude Code is not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient, maestroctl_env
from tests.fake_anthropic import Block, FakeAnthropic, tool_results
from tests.test_e2e_claude import API_KEY, claude_bin, claude_home  # noqa: F401  (claude_bin: a fixture)

pytestmark = pytest.mark.e2e

FAILURES = 3


def failing_bash_then_text(n: int, final: str) -> Any:
    """Each agent turn runs a Bash command that fails (exit 2) until ``n`` results are in; then ``final``."""

    def script(body: dict[str, Any]) -> list[Block]:
        done = len(tool_results(body))
        if done < n:
            return [{"type": "tool_use", "name": "Bash",
                     "input": {"command": f"ls /nonexistent-dir-{done}", "description": "look for the dir"}}]
        return [{"type": "text", "text": final}]

    return script


async def test_failing_worker_is_escalated_and_shown_to_its_coordinator(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog, claude_bin: str  # noqa: F811
) -> None:
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    claude_home(home, work)
    await client.call("project.create", {"name": "demo", "dir": str(work)})
    worker_model = FakeAnthropic(failing_bash_then_text(FAILURES, "I could not find the directory.")).start()
    coord_model = FakeAnthropic(lambda body: [{"type": "text", "text": "Noted."}]).start()
    daemon.app.config.claude.bin = claude_bin
    env = maestroctl_env(daemon.socket_path)

    async def ctl(*args: str) -> str:
        r = await trio.run_process([MAESTROCTL, *args], capture_stdout=True, capture_stderr=True, env=env,
                                   check=False)
        assert r.returncode == 0, (args, r.stderr.decode())
        return r.stdout.decode()

    def spawn_args(name: str, model: FakeAnthropic, *extra: str) -> list[str]:
        spawn_env = [f"HOME={home}", f"ANTHROPIC_BASE_URL={model.url}", f"ANTHROPIC_API_KEY={API_KEY}",
                     "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1"]
        return ["--json", "session", "spawn", "--project", "demo", "--name", name, "--cwd", str(work),
                "--agent", "claude", "--allowed-tools", "Bash Read Edit", "--permission-mode", "acceptEdits",
                *extra, *[a for e in spawn_env for a in ("--env", e)]]

    try:
        coord = json.loads(await ctl(*spawn_args("lead", coord_model, "--role", "coordinator")))
        worker = json.loads(await ctl(*spawn_args("digger", worker_model, "--parent", coord["id"])))
        cid, wid = coord["id"], worker["id"]
        assert cid in daemon.app.transcripts.watched() and wid in daemon.app.transcripts.watched(), \
            "spawned Claude sessions are tailed from the start (their transcript path is known)"
        await events.status(cid, "idle", timeout=60)
        await events.status(wid, "idle", timeout=60)

        start = len(events.items)
        await ctl("session", "prompt", wid, "--message", "Find the missing directory.", "--wait", "60")
        raised = await events.wait_for(
            lambda e: e["topic"] == "session.needs_attention" and e["data"]["session_id"] == wid
            and e["data"]["needs_attention"], timeout=90, start=start)
        assert raised["data"]["reason"].startswith(f"{FAILURES} consecutive failed tool calls")
        await events.wait_for(lambda e: e["topic"] == "session.status" and e["data"]["session_id"] == wid
                              and e["data"]["to"] == "idle", timeout=90, start=start)

        digest = await client.call("session.digest", {"id": wid, "last": 50})
        failed = [e for e in digest["entries"] if e["is_error"]]
        assert len(failed) == FAILURES and all("✗ exit 2" in e["summary"] for e in failed), digest["entries"]
        assert digest["needs_attention"] and digest["entries"][0]["summary"] == "[PROMPT] Find the missing directory."
        pushed = [e for ev in events.items if ev["topic"] == "session.digest" and ev["data"]["session_id"] == wid
                  for e in ev["data"]["appended"]["tools"]]
        assert [e["summary"] for e in pushed if e["is_error"]] == [e["summary"] for e in failed]
        assert "✗ exit 2" in await ctl("session", "log", wid)

        # The coordinator's next turn: its UserPromptSubmit hook prints <coordinator_context>.
        start = len(events.items)
        await ctl("session", "prompt", cid, "--message", "How are the workers doing?", "--wait", "60")
        await events.wait_for(lambda e: e["topic"] == "session.status" and e["data"]["session_id"] == cid
                              and e["data"]["to"] == "idle", timeout=90, start=start)
        assert coord_model.agent_turns, "the coordinator's turn reached the model server"
        if os.environ.get("MAESTRO_SHOW_CONTEXT"):
            print(json.dumps(coord_model.agent_turns[-1]["messages"], ensure_ascii=False, indent=1))
        request = json.dumps(coord_model.agent_turns[-1]["messages"], ensure_ascii=False)
        assert "<coordinator_context>" in request and "</coordinator_context>" in request
        block = request[request.index("<coordinator_context>"):request.index("</coordinator_context>")]
        assert f"digger ({wid})" in block
        assert "NEEDS ATTENTION" in block and "✗ exit 2" in block
        assert "[PROMPT] Find the missing directory." in block

        for sid in (wid, cid):
            await ctl("session", "stop", sid)
        assert wid not in daemon.app.transcripts.watched()
        after = await client.call("session.digest", {"id": wid, "last": 50})
        assert [e["summary"] for e in after["entries"]][:len(digest["entries"])] == \
            [e["summary"] for e in digest["entries"]], "the digest stays readable after the exit"
    finally:
        worker_model.stop()
        coord_model.stop()
