"""A task run survives a daemon restart: maestrod as a subprocess is stopped (SIGTERM) while a worker works;
the next maestrod finds the run in SQLite, gives the interrupted task to a new worker and finishes the run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MAESTROCTL
from tests.subprocess_daemon import LineConn, SubprocessDaemon


@pytest.fixture
def maestrod(short_tmp: Path) -> Iterator[SubprocessDaemon]:
    d = SubprocessDaemon(short_tmp)
    d.start()
    try:
        yield d
    finally:
        d.stop()


def wait_event(d: SubprocessDaemon, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first ``run.*`` event (kept or new) that ``pred`` accepts: subscribe first, then replay what was
    kept, then read the live ones, so none falls between."""
    conn = LineConn(d.socket, timeout=60)
    try:
        conn.call("events.subscribe", {"topics": ["run."]})
        for e in conn.call("events.replay", {"since": 0, "topics": ["run."]})["events"]:
            if pred(e):
                return e  # type: ignore[no-any-return]
        while True:
            line = conn.line()
            assert line is not None, "maestrod closed the connection"
            msg = json.loads(line)
            if msg.get("method") == "event" and pred(msg["params"]):
                return msg["params"]  # type: ignore[no-any-return]
    finally:
        conn.close()


def test_run_survives_a_daemon_restart(maestrod: SubprocessDaemon, short_tmp: Path) -> None:
    flag = short_tmp / "go"
    conn = LineConn(maestrod.socket)
    conn.call("project.create", {"name": "p", "dir": str(short_tmp)})
    a = conn.call("task.create", {"project": "p", "title": "a"})
    b = conn.call("task.create", {"project": "p", "title": "b", "depends_on": [a["id"]]})
    waits = ('while [ ! -e %s ]; do sleep 0.05; done; '
             '"$CTL" task report complete "$MAESTRO_TASK_IDS" --message done >/dev/null; exec cat') % flag
    run = conn.call("run.start", {"project": "p", "workers": 1, "agent": "command", "argv": ["sh", "-c", waits],
                                  "env": {"CTL": MAESTROCTL}})
    conn.close()
    first = wait_event(maestrod, lambda e: e["topic"] == "run.task_started")
    assert first["data"]["task_id"] == a["id"]

    maestrod.stop()  # SIGTERM: the worker is stopped with the daemon
    maestrod.start()
    flag.touch()
    done = wait_event(maestrod, lambda e: e["topic"] == "run.finished")
    assert done["data"]["state"] == "done"
    conn = LineConn(maestrod.socket)
    status = conn.call("run.status", {"id": run["id"]})
    states = [(t["task_id"], t["state"]) for t in status["tasks"]]
    assert states == [(a["id"], "interrupted"), (a["id"], "done"), (b["id"], "done")], states
    assert "ended while the daemon was down" in status["tasks"][0]["reason"]
    assert conn.call("task.get", {"id": b["id"]})["status"] == "completed"
    conn.close()
