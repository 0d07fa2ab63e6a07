"""A graceful restart with the real Claude Code in a session (offline, against the scripted model server):
the same process goes on, its screen is the same after the restart, and a prompt after it is typed and
answered, with the transcript still followed (its digest has both turns)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_anthropic import FakeAnthropic
from tests.handoff_support import HandoffDaemon
from tests.test_e2e_claude import claude_bin, claude_home, spawn_env  # noqa: F401  (claude_bin: a fixture)

pytestmark = pytest.mark.e2e


def _answer(body: dict[str, Any]) -> list[dict[str, Any]]:
    said = json.dumps(body.get("messages", [])[-1:])
    return [{"type": "text", "text": "Second answer: BRAVO-MARK." if "second" in said else "First answer: ALPHA-MARK."}]


def _status(d: HandoffDaemon, sid: str, want: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := d.call("session.get", {"id": sid})["status"]) != want:
        assert time.monotonic() < deadline, f"{sid} is {got}, not {want}"
        time.sleep(0.1)


@pytest.fixture
def model() -> Iterator[FakeAnthropic]:
    m = FakeAnthropic(_answer).start()
    try:
        yield m
    finally:
        m.stop()


def test_restart_with_a_real_claude_session(short_tmp: Path, claude_bin: str, model: FakeAnthropic) -> None:  # noqa: F811
    work, home = short_tmp / "work", short_tmp / "home"
    work.mkdir()
    claude_home(home, work)
    d = HandoffDaemon(short_tmp, f"[claude]\nbin = {json.dumps(claude_bin)}\n")
    d.start()
    try:
        d.call("project.create", {"name": "p", "dir": str(work)})
        env = dict(e.split("=", 1) for e in spawn_env(home, model.url))
        s = d.call("session.spawn", {"project": "p", "name": "agent", "agent": "claude", "cwd": str(work),
                                     "env": env, "permission_mode": "acceptEdits"})
        sid = s["id"]
        _status(d, sid, "idle")
        d.call("session.prompt", {"id": sid, "message": "Say the first thing."})
        d.wait_screen(sid, "ALPHA-MARK", timeout=90)
        _status(d, sid, "idle")
        pid = d.call("session.get", {"id": sid})["pid"]
        offset = d.call("session.output", {"id": sid, "offset": 0, "limit": 1})["total"]

        d.restart()

        got = d.call("session.get", {"id": sid})
        assert got["pid"] == pid and got["status"] == "idle"
        assert "ALPHA-MARK" in d.call("session.screen", {"id": sid})["text"]
        # The scrollback goes on from the same offset (nothing lost, nothing counted twice).
        assert d.call("session.output", {"id": sid, "offset": 0, "limit": 1})["total"] >= offset
        d.call("session.prompt", {"id": sid, "message": "Say the second thing."})
        d.wait_screen(sid, "BRAVO-MARK", timeout=90)
        _status(d, sid, "idle")
        # The transcript is still followed: its digest gets both turns (the tailer may lag the hooks).
        deadline = time.monotonic() + 60
        while not all(m in (text := json.dumps(d.call("session.digest", {"id": sid, "mode": "text"})))
                      for m in ("ALPHA-MARK", "BRAVO-MARK")):
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        # Claude Code's own conversation went on: the second request carried the first turn.
        last = model.agent_turns[-1]
        assert "ALPHA-MARK" in json.dumps(last["messages"])
    finally:
        d.stop()
