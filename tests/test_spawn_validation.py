"""Hardening item 6: spawn input a process cannot be started with is refused before anything is stored, and a
spawn that fails once its row exists ends ``exited (failed)`` with the reason, never stuck in ``spawning``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maestrod.sessions import manager
from maestrod.sessions.pty import PtyProcess
from shared import errors
from tests.conftest import Daemon, EventLog, RawClient
from tests.session_support import _error, _project


@pytest.mark.parametrize(("params", "problem"), [
    ({"env": {"A=B": "1"}}, 'env: key "A=B" must not contain "="'),
    ({"env": {"": "1"}}, "env: a key must not be empty"),
    ({"env": {"A\x00B": "1"}}, 'env: key "A\\u0000B" must not contain a NUL character'),
    ({"env": {"OK": "1", "A": "x\x00y"}}, 'env: the value of "A" must not contain a NUL character'),
    ({"argv": ["sh", "-c", "echo a\x00b"]}, "argv[2]: must not contain a NUL character"),
    ({"argv": ["s\x00h"]}, "argv[0]: must not contain a NUL character"),
    ({"name": "w\x001"}, "name: must not contain a NUL character"),
    ({"message": "do\x00it"}, "message: must not contain a NUL character"),
    ({"subject": "s\x00"}, "subject: must not contain a NUL character"),
    ({"agent": "claude", "argv": [], "allowed_tools": "Bash\x00"}, "allowed_tools: must not contain a NUL character"),
    ({"agent": "claude", "argv": [], "permission_mode": "x\x00"}, "permission_mode: must not contain a NUL character"),
])
async def test_bad_spawn_input_is_refused_before_anything_is_stored(
        daemon: Daemon, client: RawClient, tmp_path: Path, params: dict[str, Any], problem: str) -> None:
    await _project(client, tmp_path)
    err = await _error(client, "session.spawn", {"project": "p", "name": "w", "agent": "command",
                                                 "argv": ["sh", "-c", "exec cat"], **params})
    assert err["code"] == errors.INVALID_PARAMS
    assert [e for e in err["data"]["errors"] if e.endswith(problem)] == err["data"]["errors"], err
    assert len(err["data"]["errors"]) == 1 and problem in err["message"]
    assert await client.call("session.list", {}) == []


async def test_a_spawn_that_fails_after_its_row_exists_ends_exited_failed(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path) -> None:
    await _project(client, tmp_path)
    # A task title reaches the process (the composed system prompt, $MAESTRO_SYSTEM_PROMPT): execve refuses it.
    task = await client.call("task.create", {"project": "p", "title": "fix\x00it"})
    err = await _error(client, "session.spawn", {"project": "p", "name": "w", "agent": "command",
                                                 "argv": ["sh", "-c", "exec cat"], "task_ids": [task["id"]]})
    assert err["code"] == errors.UNAVAILABLE
    sid = err["data"]["session"]
    assert err["message"] == (f"could not start sh: ValueError: embedded null byte (session {sid} is exited: "
                              "failed)")
    s = await client.call("session.get", {"id": sid})
    assert (s["status"], s["exit_reason"]) == ("exited", "failed")
    status = await events.status(sid, "exited")
    assert status["data"]["from"] == "spawning"
    assert status["data"]["reason"] == "could not start: ValueError: embedded null byte"
    # nothing stuck: the name is free again
    s = await client.call("session.spawn", {"project": "p", "name": "w", "agent": "command",
                                            "argv": ["sh", "-c", "exec cat"]})
    assert s["name"] == "w" and s["status"] != "exited"


async def test_a_failure_after_the_process_started_kills_it_and_ends_the_row(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await _project(client, tmp_path)
    started: list[PtyProcess] = []
    real_spawn = PtyProcess.spawn

    async def spawn(*args: Any, **kw: Any) -> PtyProcess:
        pty = await real_spawn(*args, **kw)
        started.append(pty)
        return pty

    def set_pid(sid: str, pid: int, start: int | None = None) -> None:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(manager.PtyProcess, "spawn", spawn)
    monkeypatch.setattr(daemon.app.sessions.store, "set_pid", set_pid)
    err = await _error(client, "session.spawn", {"project": "p", "name": "w", "agent": "command",
                                                 "argv": ["sh", "-c", "exec cat"]})
    assert err["code"] == errors.UNAVAILABLE
    assert "RuntimeError: disk I/O error" in err["message"]
    sid = err["data"]["session"]
    status = await events.status(sid, "exited")
    assert status["data"]["exit_reason"] == "failed"
    assert status["data"]["error"] == "RuntimeError: disk I/O error"
    assert len(started) == 1 and started[0].returncode is not None, "the process was killed and reaped"
    assert sid not in daemon.app.sessions.sessions
    assert (await client.call("session.get", {"id": sid}))["status"] == "exited"
