"""Starts the governor queued survive a daemon restart: the next maestrod re-enqueues them in their place and
starts them from the store (argv, cwd, ``spawn-env.json``, the system prompt file) once there is room.

With a real maestrod subprocess and ``[governor] max_live_agents = 1``: a crash (SIGKILL, no systemd: the
live session's terminal is lost, and the scripted stand-in for Claude Code is resumed), and a graceful restart
(``daemon.restart``: the live session is handed over)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.conftest import MAESTROCTL
from tests.handoff_support import HandoffDaemon
from tests.subprocess_daemon import LineConn
from tests.test_hibernate import _history, _rig, _start
from tests.test_task_run import REPORTS

GOVERNOR = "[governor]\nmax_live_agents = 1\nmin_available_bytes = 0\nmax_pressure = 0.0\nhibernate_idle = false\n"
#: Prints the --env value the store keeps redacted (it comes back from spawn-env.json), then waits.
SHOWS_SECRET = ["sh", "-c", "echo SECRET_IS=$API_TOKEN; exec cat"]


def _wait_status(conn: LineConn, sid: str, status: str, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        got: dict[str, object] = conn.call("session.get", {"id": sid})
        if got["status"] == status:
            return got
        assert time.monotonic() < deadline, (sid, got["status"], status)
        time.sleep(0.05)


def test_queued_spawns_and_a_run_worker_survive_a_crash(short_tmp: Path, fake_claude: Path) -> None:
    d = _rig(short_tmp, fake_claude, GOVERNOR + "[sessions]\nstop_timeout = 0.3\n")
    conn = _start(d)
    try:
        conn.call("project.create", {"name": "p", "dir": str(short_tmp)})
        live = conn.call("session.spawn", {"project": "p", "name": "live"})
        assert conn.call("session.wait", {"ids": [live["id"]], "until": "idle", "timeout": 30})["done"]
        task = conn.call("task.create", {"project": "p", "title": "t"})
        run = conn.call("run.start", {"project": "p", "workers": 1, "agent": "command", "argv": REPORTS,
                                      "env": {"CTL": MAESTROCTL}})
        deadline = time.monotonic() + 30
        while not (status := conn.call("run.status", {"id": run["id"]}))["workers"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        worker = status["workers"][0]["session_id"]
        assert status["workers"][0]["status"] == "queued"
        plain = conn.call("session.spawn", {"project": "p", "name": "plain", "agent": "command",
                                            "argv": SHOWS_SECRET, "env": {"API_TOKEN": "s3cret"}})
        assert plain["status"] == "queued"
        stored = conn.call("session.get", {"id": plain["id"]}).get("env")
        assert stored in (None, {"API_TOKEN": "<redacted>"}), stored
        kept = d.root / "data" / "maestro" / "sessions" / plain["id"] / "spawn-env.json"
        assert json.loads(kept.read_text()) == {"API_TOKEN": "s3cret"} and kept.stat().st_mode & 0o077 == 0
        conn.close()

        d.kill9()
        conn = _start(d)
        # the live one is resumed (it was live), the queued ones wait again, in their order
        assert conn.call("session.wait", {"ids": [live["id"]], "until": "idle", "timeout": 30})["done"]
        for sid in (worker, plain["id"]):
            assert conn.call("session.get", {"id": sid})["status"] == "queued"
            assert [h["type"] for h in _history(conn, sid)].count("session.queued") == 2
        conn.call("session.stop", {"id": live["id"]})
        # the run's worker first (queued first): it starts, reports, and the run stops it
        _wait_status(conn, worker, "exited")
        assert conn.call("session.get", {"id": plain["id"]})["status"] in ("queued", "spawning", "idle")
        finished = conn.call("run.status", {"id": run["id"]})
        assert [(t["session_id"], t["state"]) for t in finished["tasks"]] == [(worker, "done")], finished
        assert conn.call("task.get", {"id": task["id"]})["status"] == "completed"
        _wait_status(conn, plain["id"], "idle")
        screen = conn.call("session.screen", {"id": plain["id"]})["text"]
        assert "SECRET_IS=s3cret" in screen, screen
        assert not kept.exists()  # a started command needs it no more
        history = _history(conn, plain["id"])
        assert not any(h["type"] == "session.resumed" for h in history)  # a first start, not a resume
        requeued = [h["data"]["reason"] for h in history if h["type"] == "session.queued"]
        assert "waited for room when the previous daemon ended" in requeued[-1], requeued
        conn.call("session.stop", {"id": plain["id"]})
    finally:
        conn.close()
        d.stop()


def test_a_queued_spawn_survives_a_graceful_restart(short_tmp: Path) -> None:
    d = HandoffDaemon(short_tmp, GOVERNOR)
    d.start()
    try:
        d.call("project.create", {"name": "p", "dir": str(short_tmp)})
        live = d.spawn("live", ["cat"])
        queued = d.spawn("queued", SHOWS_SECRET, env={"API_TOKEN": "s3cret"})
        assert queued["status"] == "queued"
        d.restart()
        assert d.call("session.get", {"id": live["id"]})["pid"] == live["pid"]  # handed over, still live
        assert d.call("session.get", {"id": queued["id"]})["status"] == "queued"
        d.call("session.stop", {"id": live["id"]})
        assert d.call("session.wait", {"ids": [queued["id"]], "until": "idle", "timeout": 30})["done"]
        d.wait_screen(queued["id"], "SECRET_IS=s3cret")
        got = d.call("session.get", {"id": queued["id"]})
        assert got["status"] == "idle" and got["pid"] and os.path.exists(f"/proc/{got['pid']}")
        d.call("session.stop", {"id": queued["id"]})
    finally:
        d.stop()
