"""End to end with the real Codex CLI as run workers: ``task run --agent codex --workers 2`` drains a project of
3 tasks (b depends on a; c is free). Each worker is a real Codex CLI in a maestrod PTY, offline against the
scripted Responses API (tests/fake_openai.py): told its task in its first prompt, it runs the real
``maestroctl task report complete`` through its shell tool (``exec_command``); the run stops it and starts the
next. Checked from the event log: never more than 2 live workers, b started only after a completed, every task
done, and each worker's own token made the report (the task's history names the worker)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient
from tests.fake_openai import FakeOpenAI, function_call, text
from tests.test_e2e_codex import codex_bin  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e

KEY_VAR = "MAESTRO_TEST_OPENAI_KEY"
DONE = "Reported the task complete."


class Worker:
    """Each worker: report the task its first prompt names (a shell command), then say so."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.reported: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        meta = json.loads((body.get("client_metadata") or {}).get("x-codex-turn-metadata") or "{}")
        if meta.get("thread_source", "user") != "user":  # Codex's side requests (a thread title)
            return [text("Worker")]
        items = body.get("input") or []
        last = items[-1] if items and isinstance(items[-1], dict) else {}
        if last.get("type") == "function_call_output":
            return [text(DONE)]
        said = json.dumps([i for i in items if isinstance(i, dict) and i.get("role") == "user"])
        found = re.findall(r"Your task is (t-[0-9a-f]+)", said)
        if not found:
            with self.lock:
                self.errors.append(f"no task in the worker's prompt: {said[-300:]!r}")
            return [text("No task.")]
        with self.lock:
            self.reported.append(found[-1])
        cmd = f"{MAESTROCTL} task report complete {found[-1]} --message done"
        return [function_call("exec_command", {"cmd": cmd})]


async def test_real_codex_workers_drain_a_project(daemon: Daemon, client: RawClient, short_tmp: Path,
                                                  events: EventLog, codex_bin: str) -> None:  # noqa: F811
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    home.mkdir()
    await client.call("project.create", {"name": "p", "dir": str(work)})
    a = await client.call("task.create", {"project": "p", "title": "a", "priority": "high"})
    b = await client.call("task.create", {"project": "p", "title": "b", "priority": "critical",
                                          "depends_on": [a["id"]]})
    c = await client.call("task.create", {"project": "p", "title": "c", "priority": "low"})
    name = {a["id"]: "a", b["id"]: "b", c["id"]: "c"}
    script = Worker()
    model = FakeOpenAI(script).start()
    cfg = daemon.app.config.codex
    cfg.bin, cfg.base_url, cfg.env_key, cfg.model = codex_bin, model.base_url, KEY_VAR, "gpt-5"
    try:
        run = await client.call("run.start", {"project": "p", "workers": 2, "agent": "codex",
                                              "env": {"HOME": str(home), KEY_VAR: "sk-test-run"},
                                              "argv": ["--sandbox", "danger-full-access"]})
        done = await events.wait_for(lambda e: e["topic"] == "run.finished", timeout=150)
        assert done["data"]["state"] == "done", done
        status = await client.call("run.status", {"id": run["id"]})
        assert status["counts"]["done"] == 3 and status["counts"]["failed"] == 0, status
        assert [t["state"] for t in status["tasks"]] == ["done"] * 3, status["tasks"]
        workers = {w["session_id"] for w in status["workers"]}
        assert len(workers) == 3 and all(w["status"] == "exited" for w in status["workers"]), status["workers"]
        for t in (a, b, c):
            assert (await client.call("task.get", {"id": t["id"]}))["status"] == "completed"
        assert not script.errors, script.errors
        assert sorted(script.reported) == sorted(name), script.reported

        # Replay the events: live workers, and the order the tasks started and completed in.
        live: dict[str, str] = {}
        peak = 0
        order: list[tuple[str, str]] = []
        for e in events.items:
            if e["topic"] == "session.status" and e["data"]["session_id"] in workers:
                live[e["data"]["session_id"]] = e["data"]["to"]
                peak = max(peak, sum(1 for s in live.values() if s not in ("exited", "hibernated", "queued")))
            if e["topic"] == "task.status_changed" and e["data"]["task"]["id"] in name:
                order.append((name[e["data"]["task"]["id"]], e["data"]["to"]))
        assert peak == 2, peak
        started = [n for n, to in order if to == "in_progress"]
        assert started[:2] == ["a", "c"] and started[2] == "b", order
        assert order.index(("a", "completed")) < order.index(("b", "in_progress")), order
        # the report came from inside each worker, with its own token
        for t in status["tasks"]:
            history = await client.call("task.history", {"id": t["task_id"]})
            reports = [h for h in history if h["type"] == "task.status_changed" and h["data"].get("to") == "completed"]
            assert reports and reports[0]["actor"] == t["session_id"], history
    finally:
        model.stop()
    assert list(work.iterdir()) == []
