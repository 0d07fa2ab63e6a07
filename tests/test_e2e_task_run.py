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


async def test_real_claude_hibernated_for_room_wakes_with_its_conversation(
        daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog, claude_bin: str) -> None:  # noqa: F811
    """max_live_agents = 1: an idle Claude session is hibernated so a queued spawn can start, and a prompt
    wakes it (claude --resume, once the spawn that took its room exits) with its conversation intact: the
    model sees the first exchange again."""
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    claude_home(home, work)
    await client.call("project.create", {"name": "p", "dir": str(work)})

    def script(body: dict[str, Any]) -> list[Block]:
        said = "\n".join(t for m in body.get("messages", []) for t in _texts(m.get("content")))
        return [{"type": "text", "text": "The word was PAPAYA." if "PAPAYA" in said and "Which word" in said
                 else "Noted."}]

    model = FakeAnthropic(script).start()
    daemon.app.config.claude.bin = claude_bin
    cfg = daemon.app.config.governor
    cfg.max_live_agents, cfg.hibernate_after_seconds = 1, 0.0
    try:
        env = dict(e.split("=", 1) for e in spawn_env(home, model.url))
        s = await client.call("session.spawn", {"project": "p", "name": "keeper", "env": env,
                                                "prompt": "Remember the word PAPAYA."})
        first = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered"
                                      and e["data"]["session_id"] == s["id"], timeout=60)
        await events.status(s["id"], "idle", start=events.items.index(first), timeout=60)
        mark = len(events.items)
        other = await client.call("session.spawn", {"project": "p", "name": "other", "agent": "command",
                                                    "argv": ["cat"]})
        assert other["status"] == "queued"
        await events.status(s["id"], "hibernated", start=mark, timeout=30)
        await events.status(other["id"], "idle", start=mark, timeout=30)
        mark = len(events.items)
        # the wake goes through admission: the live one is a plain command (not hibernated for room), so the
        # wake and its prompt wait until it exits
        answer = await client.call("session.prompt", {"id": s["id"], "message": "Which word did I give you?"})
        assert answer["state"] == "queued", answer
        await client.call("session.stop", {"id": other["id"]})
        delivered = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered"
                                          and e["data"]["session_id"] == s["id"], start=mark, timeout=60)
        await events.status(s["id"], "idle", start=events.items.index(delivered), timeout=60)
        conversations = ["\n".join(t for m in turn["messages"] for t in _texts(m.get("content")))
                         for turn in model.agent_turns]
        asked = [c for c in conversations if "Which word did I give you?" in c]
        assert asked and all("Remember the word PAPAYA." in c for c in asked), conversations[-1][-2000:]
    finally:
        model.stop()


class HandingOver:
    """The first worker's first turn reports a nearly full context (scripted usage); asked to checkpoint, it
    writes the note where maestrod says; its successor, seeded with the note, reports the task complete."""

    NOTE = "NOTE: the parser is half ported; the tests are in tests/test_parser.py"

    def __init__(self) -> None:
        self.errors: list[str] = []

    def usage(self, body: dict[str, Any]) -> dict[str, int]:
        said = "\n".join(t for m in body.get("messages", []) for t in _texts(m.get("content")))
        big = "Your task is" in said and "You take over" not in said
        return {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 2000,
                "cache_read_input_tokens": 168_000 if big else 1000}

    def __call__(self, body: dict[str, Any]) -> list[Block]:
        msgs = body.get("messages", [])
        said = "\n".join(t for m in msgs if m.get("role") == "user" for t in _texts(m.get("content")))
        last = msgs[-1].get("content") if msgs else None
        answered = isinstance(last, list) and any(c.get("type") == "tool_result" for c in last)
        if "You take over task" in said:
            if answered:
                return [{"type": "text", "text": "Finished from the note."}]
            task = re.findall(r"You take over task (t-[0-9a-f]+)", said)[-1]
            return [{"type": "tool_use", "name": "Bash", "input": {
                "command": f"{MAESTROCTL} task report complete {task} --message 'done from the note'",
                "description": "report"}}]
        asked = re.findall(r"write a short hand-off note to (\S+):", said)
        if asked:
            if answered:
                return [{"type": "text", "text": "Checkpointed."}]
            return [{"type": "tool_use", "name": "Bash", "input": {
                "command": f"printf '%s' '{self.NOTE}' > {asked[-1]}", "description": "hand-off note"}}]
        return [{"type": "text", "text": "Ported the first half of the parser."}]


async def test_real_claude_context_handoff(daemon: Daemon, client: RawClient, short_tmp: Path,
                                           events: EventLog, claude_bin: str) -> None:  # noqa: F811
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    claude_home(home, work)
    await client.call("project.create", {"name": "p", "dir": str(work)})
    task = await client.call("task.create", {"project": "p", "title": "port the parser"})
    script = HandingOver()
    model = FakeAnthropic(script)
    model.usage_of = script.usage
    model.start()
    daemon.app.config.claude.bin = claude_bin
    try:
        env = dict(e.split("=", 1) for e in spawn_env(home, model.url))
        run = await client.call("run.start", {"project": "p", "workers": 1, "allowed_tools": "Bash",
                                              "permission_mode": "acceptEdits", "env": env})
        checkpoint = await events.wait_for(lambda e: e["topic"] == "session.handoff"
                                           and e["data"].get("stage") == "checkpoint", timeout=90)
        old = checkpoint["data"]["session_id"]
        assert checkpoint["data"]["context_tokens"] == 10 + 2000 + 168_000
        assert checkpoint["data"]["window"] == 200_000
        # run status shows the worker's context use while it is live (it may be hibernated already)
        shown = (await client.call("run.status", {"id": run["id"]}))["workers"][0]
        assert shown["session_id"] == old
        assert shown["status"] == "hibernated" or shown["context"]["tokens"] == 170_010, shown
        took = await events.wait_for(lambda e: e["topic"] == "session.handoff"
                                     and e["data"].get("stage") == "took_over", timeout=90)
        new = took["data"]["session_id"]
        assert took["data"]["predecessor"] == old and new != old
        # mail to the old session reaches the new one
        sent = await client.call("mail.send", {"to": [old], "type": "notification", "subject": "for the worker",
                                               "body": "also update the docs"})
        assert sent["to"] == [new]
        done = await events.wait_for(lambda e: e["topic"] == "run.finished", timeout=90)
        assert done["data"]["state"] == "done"
        assert not script.errors, script.errors
        assert (await client.call("task.get", {"id": task["id"]}))["status"] == "completed"
        assert (await client.call("session.get", {"id": old}))["status"] == "hibernated"
        status = await client.call("run.status", {"id": run["id"]})
        assert [(t["session_id"], t["state"]) for t in status["tasks"]] == [(old, "handed_off"), (new, "done")]
        # the successor's first request carried the note and the predecessor's digest
        seeded = [t for t in model.agent_turns if "You take over task" in "\n".join(
            x for m in t["messages"] for x in _texts(m.get("content")))]
        first = "\n".join(x for m in seeded[0]["messages"] for x in _texts(m.get("content")))
        assert HandingOver.NOTE in first and "<predecessor_digest" in first
        # the timelines link them
        old_history = (await client.call("session.history", {"id": old}))["entries"]
        assert any(h["type"] == "session.handoff" and h["data"].get("successor") == new for h in old_history)
        inbox = await client.call("mail.inbox", {"mailbox": new})
        assert any(m["id"] == sent["id"] for m in inbox)
    finally:
        model.stop()
