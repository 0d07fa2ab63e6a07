"""End to end with the real Claude Code: its own dialogs are seen on the screen and never answered by maestrod.

A fresh HOME where onboarding is done but the folder is not trusted and the API key not approved: Claude Code
opens the trust dialog (default "No, exit"), then the API-key dialog (default "No", which would store the key
as rejected in ~/.claude.json). The session's first prompt must wait in the queue through both; a person
answers them with ``session input``; then the prompt is typed and the turn runs to ``idle``. A second test
provokes the auto-mode dialog over a working turn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import Daemon, EventLog, RawClient, wait_screen
from tests.fake_anthropic import ErrorAPI, FakeAnthropic, bash_then_text
from tests.test_e2e_claude import API_KEY, claude_bin, claude_home, spawn_env  # noqa: F401  (claude_bin: a fixture)

pytestmark = pytest.mark.e2e

DOWN, UP, ENTER = "\x1b[B", "\x1b[A", "\r"


def _env(home: Path, url: str) -> dict[str, str]:
    return dict(e.split("=", 1) for e in spawn_env(home, url))


def _attention(events: EventLog, sid: str, words: str, start: int = 0, timeout: float = 60) -> Any:
    return events.wait_for(
        lambda e: e["topic"] == "session.needs_attention" and e["data"]["session_id"] == sid
        and e["data"]["needs_attention"] and words in (e["data"]["reason"] or ""), timeout=timeout, start=start)


async def _choose(daemon: Daemon, client: RawClient, sid: str, key: str, selected: str) -> None:
    """What a person does: look at the dialog, move to an option, see it selected, press Enter. (A TUI
    that has just drawn a dialog may not listen to keys yet; a person never types within a split second.)"""
    await trio.sleep(1.0)
    await client.call("session.input", {"id": sid, "text": key})
    await wait_screen(daemon.app, sid, lambda t: selected in t, timeout=10)
    await client.call("session.input", {"id": sid, "text": ENTER})


def _claude_json(home: Path) -> dict[str, Any]:
    return json.loads((home / ".claude.json").read_text())  # type: ignore[no-any-return]


def _rejected(home: Path) -> list[str]:
    return list(_claude_json(home).get("customApiKeyResponses", {}).get("rejected", []))


async def test_first_run_dialogs_wait_for_a_person_and_the_prompt_waits_for_them(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog, claude_bin: str  # noqa: F811
) -> None:
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    home.mkdir()
    # Onboarding done (or Claude Code stops at its connectivity check); nothing trusted, no key approved.
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True, "theme": "dark"}))
    await client.call("project.create", {"name": "demo", "dir": str(work)})
    model = FakeAnthropic(lambda body: [{"type": "text", "text": "Hello from the agent."}]).start()
    daemon.app.config.claude.bin = claude_bin
    try:
        s = await client.call("session.spawn", {"project": "demo", "name": "agent", "cwd": str(work),
                                                "prompt": "Say hello.", "permission_mode": "acceptEdits",
                                                "env": _env(home, model.url)})
        sid = s["id"]
        environ = Path(f"/proc/{s['pid']}/environ").read_bytes().split(b"\0")
        assert b"DISABLE_AUTOUPDATER=1" in environ  # never updates itself machine-wide mid-run

        # 1. The trust dialog: seen on the screen, the prompt is held, nothing is typed.
        ev = await _attention(events, sid, f"trust the folder {work}")
        assert ev["data"]["source"] == "screen"
        got = await client.call("session.get", {"id": sid})
        assert got["status"] == "waiting_input" and got["queued_prompts"] == 1
        why = await client.call("session.explain", {"id": sid})
        assert why["source"] == "screen" and why["witnesses"]["screen"]["rule"] == "trust-folder"
        assert not why["gate"]["open"] and "dialog" in why["gate"]["reason"]
        assert "dialog" in (why["held"] or "")
        waited = await client.call("session.wait", {"ids": [sid], "until": "idle", "timeout": 5})
        assert waited["done"] and waited["sessions"][0]["needs_attention"]  # told, not fooled
        assert not _claude_json(home).get("projects", {}).get(str(work), {}).get("hasTrustDialogAccepted")

        # A person answers: Down, Enter picks "Yes, I trust this folder".
        mark = len(events.items)
        await _choose(daemon, client, sid, DOWN, "❯ Yes, I trust this folder")

        # 2. The API-key dialog: the key is not rejected behind anyone's back.
        await _attention(events, sid, "API key", start=mark)
        assert (await client.call("session.get", {"id": sid}))["queued_prompts"] == 1
        assert API_KEY[-20:] not in _rejected(home) and API_KEY not in _rejected(home)
        rows = daemon.app.db.conn.execute("SELECT state FROM session_prompts WHERE session_id=?", (sid,)).fetchall()
        assert [r[0] for r in rows] == ["queued"]

        mark = len(events.items)
        await _choose(daemon, client, sid, UP, "❯ Yes")  # the default is "No"

        # 3. At the empty prompt the queued prompt is typed, confirmed, and the turn ends.
        ack = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered"
                                    and e["data"]["session_id"] == sid, start=mark, timeout=60)
        await events.wait_for(lambda e: e["topic"] == "session.status" and e["data"]["session_id"] == sid
                              and e["data"]["to"] == "idle" and e["data"]["from"] == "working",
                              start=events.items.index(ack), timeout=90)
        got = await client.call("session.get", {"id": sid})
        assert got["status"] == "idle" and got["needs_attention"] is None and got["queued_prompts"] == 0, (
            got, await client.call("session.explain", {"id": sid}))
        assert "Say hello." in json.dumps(model.agent_turns[0]["messages"])

        # The person's answers are the only ones in the user's configuration.
        cfg = _claude_json(home)
        assert cfg["projects"][str(work)]["hasTrustDialogAccepted"] is True
        assert not _rejected(home)
        history = await client.call("session.history", {"id": sid})
        kinds = [e["type"] for e in history["entries"]]
        # Every input was the person's; the prompt was delivered only after the last of them.
        last_input = max(i for i, k in enumerate(kinds) if k == "session.input")
        delivered = [i for i, e in enumerate(history["entries"]) if e["type"] == "session.prompt_delivered"]
        assert delivered and delivered[0] > last_input
        await client.call("session.stop", {"id": sid})
    finally:
        model.stop()


async def test_auto_mode_dialog_over_a_working_turn_is_named(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog, claude_bin: str  # noqa: F811
) -> None:
    """Claude Code 2.1.328's default permission mode is "auto"; offline its safety check is unreachable and a
    Bash call opens a dialog. The hooks only say "working": the screen names the dialog."""
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    claude_home(home, work)
    await client.call("project.create", {"name": "demo", "dir": str(work)})
    model = FakeAnthropic(bash_then_text("ls /", "done")).start()
    daemon.app.config.claude.bin = claude_bin
    try:
        s = await client.call("session.spawn", {"project": "demo", "name": "auto", "cwd": str(work),
                                                "prompt": "Please list the root folder.", "env": _env(home, model.url)})
        sid = s["id"]
        ev = await _attention(events, sid, "auto mode", timeout=90)
        assert ev["data"]["source"] == "screen"
        got = await client.call("session.get", {"id": sid})
        assert got["status"] == "waiting_input"
        why = await client.call("session.explain", {"id": sid})
        assert why["witnesses"]["screen"]["rule"] == "auto-mode-cannot-check"
        # A prompt now is held: it would answer the dialog.
        r = await client.call("session.prompt", {"id": sid, "message": "are you there?", "now": True})
        assert r["state"] == "queued" and "dialog" in r["held"]
        await client.call("session.kill", {"id": sid})
    finally:
        model.stop()


async def test_api_retries_keep_working_and_say_what_fails(
    daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog, claude_bin: str  # noqa: F811
) -> None:
    """The model API answers 529: Claude Code retries for minutes. Not a dialog: the session stays ``working``,
    and ``needs_attention`` says what is failing as soon as the notice is on screen."""
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    claude_home(home, work)
    await client.call("project.create", {"name": "demo", "dir": str(work)})
    model = ErrorAPI(529, "overloaded_error", "Overloaded")
    daemon.app.config.claude.bin = claude_bin
    try:
        # On a custom base URL Claude Code gives up after three 529s unless IS_SANDBOX is set.
        env = {**_env(home, model.url), "IS_SANDBOX": "1"}
        s = await client.call("session.spawn", {"project": "demo", "name": "retry", "cwd": str(work),
                                                "prompt": "hello", "permission_mode": "acceptEdits", "env": env})
        sid = s["id"]
        ev = await _attention(events, sid, "retrying the model API: 529", timeout=90)
        assert ev["data"]["source"] == "screen"
        got = await client.call("session.get", {"id": sid})
        assert got["status"] == "working" and "529" in got["needs_attention"]
        why = await client.call("session.explain", {"id": sid})
        assert why["witnesses"]["screen"]["rule"] == "api-retrying" and why["attention_source"] == "screen"
        await client.call("session.kill", {"id": sid})
    finally:
        model.stop()

