"""End to end with the real Claude Code: ``task run --workers 2`` drains a project of 6 tasks (a diamond plus a
chain). Every worker is a real Claude Code process in a maestrod PTY, offline against the scripted model
server (tests/fake_anthropic.py): told its task in its first prompt, it runs the real ``maestroctl task report
complete``; the run stops it and starts the next. Checked from the event log: never more than 2 live workers,
every task started only after its dependencies completed and never while a ready task of higher priority
waited (tests/test_task_run.py has the same checks with scripted ``command`` workers)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient
from tests.fake_anthropic import Block, FakeAnthropic
from tests.test_e2e_claude import claude_bin, claude_home, spawn_env  # noqa: F401  (claude_bin: a fixture)
from tests.test_e2e_coordination import _texts
from tests.test_task_run import check_schedule, graph, run_sessions

pytestmark = pytest.mark.e2e
DONE = "Reported the task complete."


class Worker:
    """Each worker: report the task its first prompt names, then say so."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, body: dict[str, Any]) -> list[Block]:
        msgs = body.get("messages", [])
        last = msgs[-1] if msgs else {}
        content = last.get("content")
        if isinstance(content, list) and any(c.get("type") == "tool_result" for c in content):
            return [{"type": "text", "text": DONE}]
        prompt = "\n".join(t for m in msgs if m.get("role") == "user" for t in _texts(m.get("content")))
        found = re.findall(r"Your task is (t-[0-9a-f]+)", prompt)
        if not found:
            self.errors.append(f"no task in the worker's prompt: {prompt[-300:]!r}")
            return [{"type": "text", "text": "No task."}]
        return [{"type": "tool_use", "name": "Bash",
                 "input": {"command": f"{MAESTROCTL} task report complete {found[-1]} --message 'done'",
                           "description": "report"}}]


async def test_real_claude_workers_drain_a_graph(daemon: Daemon, client: RawClient, short_tmp: Path,
                                                 events: EventLog, claude_bin: str) -> None:  # noqa: F811
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    claude_home(home, work)
    await client.call("project.create", {"name": "p", "dir": str(work)})
    ids = await graph(client)
    script = Worker()
    model = FakeAnthropic(script).start()
    daemon.app.config.claude.bin = claude_bin
    try:
        env = dict(e.split("=", 1) for e in spawn_env(home, model.url))
        run = await client.call("run.start", {"project": "p", "workers": 2, "allowed_tools": "Bash",
                                              "permission_mode": "acceptEdits", "env": env})
        done = await events.wait_for(lambda e: e["topic"] == "run.finished", timeout=240)
        assert done["data"]["state"] == "done", done
        assert not script.errors, script.errors
        status = await client.call("run.status", {"id": run["id"]})
        assert status["counts"]["done"] == 6 and status["counts"]["failed"] == 0, status
        started = check_schedule(events, ids, 2, await run_sessions(client, run["id"]))
        assert started[:2] == ["a", "e"] and started[-1] == "d"
        # every worker saw its task in its context (the system prompt maestrod composed) and its first prompt
        for w in status["workers"]:
            task = next(t["task_id"] for t in status["tasks"] if t["session_id"] == w["session_id"])
            turns = [t for t in model.agent_turns if f"<session_id>{w['session_id']}</session_id>"
                     in "\n".join(_texts(t.get("system")))]
            assert turns and task in "\n".join(_texts(turns[0].get("system")))
    finally:
        model.stop()
