"""End to end with the real Claude Code: a coordinator agent spawns a worker, they talk through mail.

Two real Claude Code processes, both run by maestrod in PTYs, both offline against the scripted model
server (tests/fake_anthropic.py). The script is deterministic: it knows which agent is asking from the
system prompt maestrod composed for it (``<role>`` in ``--append-system-prompt``), and what to do next
from the commands that already ran in that agent's conversation and what they printed.

1. The human spawns a coordinator (``--role coordinator --prompt ...``).
2. The coordinator's Bash tool runs ``maestroctl session spawn --template execute-simple --subject
   --message ...``: the worker is its child, told the directive in its system prompt and started on it.
3. The worker reads the directive mail (its id is in ``<coordinator_directive>``), then runs
   ``maestroctl mail send --to-coordinator --type query ...`` and ``maestroctl mail wait``.
4. The coordinator's ``maestroctl mail wait`` returns the query; it answers with ``maestroctl mail reply``.
5. The worker's wait returns the reply: the thread holds the query and its answer, both read.
6. Once both are idle (``maestroctl session wait --until idle``), the human sends the idle worker urgent
   mail: maestrod prompts it (source ``system``) and it reads the mail.

Skips only when no Claude Code binary is found and ``MAESTRO_REQUIRE_E2E`` is unset (see test_e2e_claude).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient, maestroctl_env
from tests.fake_anthropic import Block, FakeAnthropic
from tests.session_support import _ctl
from tests.test_e2e_claude import claude_bin, claude_home, spawn_env  # noqa: F401  (claude_bin: a fixture)

pytestmark = pytest.mark.e2e

COORDINATOR_PROMPT = "Coordinate: get a worker to choose the server port."
QUERY_SUBJECT = "Which port?"
ANSWER = "Use port 8080."
WORKER_DONE = "Using port 8080 as told."
COORDINATOR_DONE = "The worker has its answer."
WRAP_UP = "Wrap up now"
WORKER_WRAPPED = "Read the wrap-up directive."


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [c.get("text", "") for c in content or [] if isinstance(c, dict) and c.get("type") == "text"]


def _result_text(block: Block) -> str:
    content = block.get("content")
    return "\n".join(_texts(content)) if not isinstance(content, str) else content


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(_texts(body.get("system")))


def steps_since(body: dict[str, Any], marker: str) -> list[tuple[str, str]]:
    """(Bash command, its output) for every tool call after the newest user prompt containing ``marker``."""
    msgs = body.get("messages", [])
    start = max((i for i, m in enumerate(msgs) if m.get("role") == "user"
                 and any(marker in t for t in _texts(m.get("content")))), default=-1)
    if start < 0:
        return []
    calls: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    for m in msgs[start + 1:]:
        content = m.get("content")
        if not isinstance(content, list):
            continue
        for c in content:
            if m["role"] == "assistant" and c.get("type") == "tool_use":
                calls[c["id"]] = str(c.get("input", {}).get("command", ""))
            elif m["role"] == "user" and c.get("type") == "tool_result" and c.get("tool_use_id") in calls:
                out.append((calls[c["tool_use_id"]], _result_text(c)))
    return out


def bash(command: str) -> list[Block]:
    return [{"type": "tool_use", "name": "Bash", "input": {"command": command, "description": "maestroctl"}}]


def text(words: str) -> list[Block]:
    return [{"type": "text", "text": words}]


def ran(steps: list[tuple[str, str]], words: str) -> list[str]:
    return [output for command, output in steps if words in command]


class Script:
    def __init__(self, worker_env: list[str]) -> None:
        self.worker_env = worker_env
        self.errors: list[str] = []

    def __call__(self, body: dict[str, Any]) -> list[Block]:
        system = system_text(body)
        if "<role>coordinator</role>" in system:
            return self.coordinator(body)
        if "<role>worker</role>" in system:
            return self.worker(body, system)
        self.errors.append("an agent turn without maestro's session context in its system prompt")
        return text("No session context.")

    def coordinator(self, body: dict[str, Any]) -> list[Block]:
        steps = steps_since(body, COORDINATOR_PROMPT)
        if not ran(steps, "session spawn"):
            env = " ".join(f"--env {e}" for e in self.worker_env)
            return bash(f"{MAESTROCTL} --json session spawn --name worker-1 --template execute-simple "
                        f"--allowed-tools 'Bash Read Edit' --permission-mode acceptEdits "
                        f"--subject 'Pick the port' --message 'Ask me which port to use, then wait for my answer.' "
                        f"{env}")
        waits = ran(steps, "mail wait")
        asked = next((w for w in waits if QUERY_SUBJECT in w), None)
        if asked is None:
            if len(waits) > 3:
                self.errors.append(f"the coordinator's mail wait never returned the query: {waits}")
                return text("Gave up.")
            return bash(f"{MAESTROCTL} --json mail wait --timeout 50")
        if not ran(steps, "mail reply"):
            mid = re.search(r'"id":\s*"(m-[0-9a-f]+)"', asked)
            if mid is None:
                self.errors.append(f"no message id in the mail wait output: {asked!r}")
                return text("Gave up.")
            return bash(f"{MAESTROCTL} --json mail reply {mid.group(1)} --message '{ANSWER}'")
        return text(COORDINATOR_DONE)

    def worker(self, body: dict[str, Any], system: str) -> list[Block]:
        nudged = steps_since(body, "unread message(s)")
        if nudged or any("unread message(s)" in t for t in _texts(body["messages"][-1].get("content"))):
            if not ran(nudged, "mail wait"):
                return bash(f"{MAESTROCTL} --json mail wait --timeout 0")
            return text(WORKER_WRAPPED)
        steps = steps_since(body, "Begin.")
        if not ran(steps, "mail read"):
            mid = re.search(r"<mail_id>(m-[0-9a-f]+)</mail_id>", system)
            if mid is None:
                self.errors.append("no <mail_id> in the worker's <coordinator_directive>")
                return text("Gave up.")
            return bash(f"{MAESTROCTL} --json mail read {mid.group(1)}")
        if not ran(steps, "mail send"):
            return bash(f"{MAESTROCTL} --json mail send --to-coordinator --type query --subject '{QUERY_SUBJECT}' "
                        "--message 'Which port should the server listen on?'")
        waits = ran(steps, "mail wait")
        if not any(ANSWER in w for w in waits):
            if len(waits) > 3:
                self.errors.append(f"the worker's mail wait never returned the answer: {waits}")
                return text("Gave up.")
            return bash(f"{MAESTROCTL} --json mail wait --timeout 50")
        return text(WORKER_DONE)


async def test_coordinator_spawns_a_worker_and_they_talk_through_mail(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog, claude_bin: str  # noqa: F811
) -> None:
    work, home, worker_home = short_tmp / "work", short_tmp / "home", short_tmp / "home2"
    work.mkdir()
    claude_home(home, work)
    claude_home(worker_home, work)
    await client.call("project.create", {"name": "demo", "dir": str(work)})
    model = FakeAnthropic()
    model.start()
    script = Script(spawn_env(worker_home, model.url))
    model.script = script
    daemon.app.config.claude.bin = claude_bin
    env = maestroctl_env(daemon.socket_path)

    async def ctl(*args: str) -> Any:
        return json.loads(await _ctl(env, "--json", *args))

    try:
        with trio.fail_after(90):
            spawn = ["session", "spawn", "--project", "demo", "--name", "coord", "--role", "coordinator",
                     "--allowed-tools", "Bash Read Edit", "--permission-mode", "acceptEdits",
                     "--prompt", COORDINATOR_PROMPT]
            for e in spawn_env(home, model.url):
                spawn += ["--env", e]
            coord = (await ctl(*spawn))["id"]

            # The coordinator spawns the worker from its Bash tool: the worker is its child.
            spawned = await events.wait_for(lambda e: e["topic"] == "session.spawned"
                                            and e["data"]["session"]["name"] == "worker-1", timeout=60)
            worker = spawned["data"]["session"]
            wid = worker["id"]
            assert spawned["data"]["actor"] == coord
            assert (worker["parent_id"], worker["root_id"], worker["role"]) == (coord, coord, "worker")

            # The query reaches the coordinator's mail wait; the answer reaches the worker's.
            query = await events.wait_for(lambda e: e["topic"] == "mail.received" and e["data"]["from"] == wid,
                                          timeout=60)
            assert query["data"]["to"] == [coord] and query["data"]["type"] == "query"
            reply = await events.wait_for(lambda e: e["topic"] == "mail.received" and e["data"]["from"] == coord
                                          and e["data"]["type"] == "response", timeout=60)
            assert reply["data"]["reply_to"] == query["data"]["message_id"] and reply["data"]["to"] == [wid]

            # Both wind down: `session wait --until idle` (the worker first has to read the answer).
            waited = await ctl("session", "wait", wid, coord, "--until", "idle", "--timeout", "60")
            assert waited["done"] is True and waited["pending"] == [], waited
            assert not script.errors, script.errors
            thread = await client.call("mail.thread", {"id": query["data"]["message_id"]})
            assert [(m["type"], m["from"], m["to"]) for m in thread] == [("query", wid, [coord]),
                                                                         ("response", coord, [wid])]
            assert thread[0]["subject"] == QUERY_SUBJECT and thread[1]["body"] == ANSWER
            assert thread[0]["receipts"][coord] and thread[1]["receipts"][wid]  # both read
            # The directive is the worker's first mail, in a thread of its own, read by the worker.
            inbox = await client.call("mail.inbox", {"mailbox": wid})
            directive = next(m for m in inbox if m["type"] == "directive")
            assert (directive["from"], directive["subject"], directive["thread_id"]) == (
                coord, "Pick the port", directive["id"])
            assert directive["read_at"] is not None

            # What each agent was told, as the model saw it.
            systems = {system_text(t) for t in model.agent_turns}
            worker_system = next(s for s in systems if f"<session_id>{wid}</session_id>" in s)
            assert "<role>worker</role>" in worker_system
            assert f"<coordinator_session_id>{coord}</coordinator_session_id>" in worker_system
            assert "<subject>Pick the port</subject>" in worker_system
            assert f"<mail_id>{directive['id']}</mail_id>" in worker_system
            assert '<workflow name="execute-simple">' in worker_system
            coord_system = next(s for s in systems if f"<session_id>{coord}</session_id>" in s)
            assert '<workflow name="coordinate-default">' in coord_system
            assert "none: you were started by the human" in coord_system
            kickoff = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered"
                                            and e["data"]["session_id"] == wid)
            assert kickoff["data"]["source"] == f"agent:{coord}"

            # Urgent mail for the idle worker: maestrod prompts it, and it reads the mail.
            mark = len(events.items)
            sent = await ctl("mail", "send", "--to", wid, "--type", "directive", "--priority", "high",
                             "--subject", WRAP_UP, "--message", "Finish and stop.")
            nudge = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered"
                                          and e["data"]["session_id"] == wid, start=mark, timeout=30)
            assert nudge["data"]["source"] == "system"
            await events.wait_for(lambda e: e["topic"] == "mail.read" and e["data"]["message_id"] == sent["id"],
                                  start=mark, timeout=30)
            waited = await ctl("session", "wait", wid, "--until", "idle", "--timeout", "60")
            assert waited["done"] is True
            assert not script.errors, script.errors
            prompts = [r[0] for r in daemon.app.db.conn.execute(
                "SELECT text FROM session_prompts WHERE session_id=? AND sender='system'", (wid,))]
            assert len(prompts) == 1 and f"directive from human '{WRAP_UP}'" in prompts[0]

            # The human stops them; `session wait` (exited) returns once both are gone.
            await ctl("session", "stop", "--no-wait", wid)
            await ctl("session", "stop", "--no-wait", coord)
            done = await ctl("session", "wait", wid, coord, "--timeout", "30")
            assert done["done"] is True and {s["status"] for s in done["sessions"]} == {"exited"}
    finally:
        model.stop()
