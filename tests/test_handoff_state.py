"""The handoff state file's reader (what ``maestrod --check-state`` decides) and the fd store's names, without
a daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from maestrod import handoff
from maestrod.service import proc_start_time
from maestrod.sessions.adopt import fd_store_name, parse_fd_store_name
from tests.conftest import MAESTROD


def _state(**over: object) -> dict[str, object]:
    session = {"id": "s-1", "agent": "command", "pid": 10, "fd": 7, "rows": 40, "cols": 120, "scrollback": {},
               "screen": {}, "machine": {}, "decision": {}, "awaiting_confirm_in": 0.0, "stopping": False}
    state: dict[str, object] = {"format": handoff.STATE_FORMAT, "version": handoff.STATE_VERSION,
                                "daemon": "0.1.0", "listen_fds": [3], "lock_fds": [4, 5], "sessions": [session],
                                "prompt_rates": [], "monotonic": 1.5, "scrollback_fd": 6}
    state.update(over)
    return state


def test_problems_name_what_this_build_cannot_take() -> None:
    assert handoff.problems(_state()) == []
    assert handoff.problems({"format": "x"}) == ["not a maestrod handoff state file"]
    (other,) = handoff.problems(_state(version=handoff.STATE_VERSION + 1))
    assert f"reads versions 1, {handoff.STATE_VERSION} only" in other
    assert handoff.problems(_state(version=1)) == []  # the version before: an upgrade from it works
    found = handoff.problems(_state(sessions=[{"id": 1, "agent": "robot"}], listen_fds="3"))
    assert "listen_fds: expected list" in found
    assert "sessions[0].id: expected str" in found and "sessions[0].agent: unknown agent kind 'robot'" in found


def test_check_state_is_the_installed_programs_verdict(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_state()))
    bad.write_text(json.dumps(_state(version=99)))
    ok = subprocess.run([MAESTROD, "--check-state", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0 and "ok" in ok.stdout
    refused = subprocess.run([MAESTROD, "--check-state", str(bad)], capture_output=True, text=True)
    assert refused.returncode == 1 and "state version 99" in refused.stderr
    missing = subprocess.run([MAESTROD, "--check-state", str(tmp_path / "none.json")], capture_output=True, text=True)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_program_restarts_the_way_the_daemon_was_started() -> None:
    assert handoff.program("/opt/venv/bin/maestrod") == ["/opt/venv/bin/maestrod"]
    assert handoff.program("/src/maestrod/__main__.py") == [sys.executable, "-m", "maestrod"]


def test_fd_store_names_carry_the_process_start_time() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        name = fd_store_name("s-ab12", child.pid)
        assert name is not None and name.startswith(f"pty.s-ab12.{child.pid}.")
        assert parse_fd_store_name(name) == ("s-ab12", child.pid, proc_start_time(child.pid))
        assert ":" not in name  # LISTEN_FDNAMES is colon-separated
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie now: not a process to adopt
        assert proc_start_time(child.pid) is None and fd_store_name("s-ab12", child.pid) is None
    finally:
        child.kill()
        child.wait()
    assert parse_fd_store_name("pty.s-1.notapid.5") is None


def test_observation_times_travel_as_ages() -> None:
    """The successor's trio clock has another origin: every time in a witness's observation crosses the
    exec as an age, including when a transcript record was written."""
    from maestrod.sessions.adopt import _obs_in, _obs_out
    from maestrod.sessions.status import HookSeen, TranscriptSeen

    out = json.loads(json.dumps(_obs_out(TranscriptSeen(95.0, "working", 90.0), now=100.0)))
    assert _obs_in(out, now=7000.0) == TranscriptSeen(6995.0, "working", 6990.0)
    # Unknown write time, and another witness's observation: as before.
    assert _obs_in(_obs_out(TranscriptSeen(95.0, "idle"), 100.0), 7000.0) == TranscriptSeen(6995.0, "idle")
    assert _obs_in(_obs_out(HookSeen(99.0, "Stop"), 100.0), 7000.0) == HookSeen(6999.0, "Stop")
