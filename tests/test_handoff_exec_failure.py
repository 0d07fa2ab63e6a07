"""A graceful restart whose exec fails after the state check passed (the installed build vanished in between):
the daemon serves on as before it started, with nothing left in the "shutting down" state it entered for the
hand-over: requests are answered (no -32006), task runs go on stepping, and a later restart works."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import MAESTROCTL
from tests.handoff_support import HandoffDaemon
from tests.subprocess_daemon import LineConn

#: The installed maestrod, as a script (``program()`` execs it by its path).
BUILD = "#!{python}\nimport sys\nfrom maestrod.main import main\nsys.exit(main())\n"
#: The same build, which deletes itself once its state check passed: the exec that follows finds no file.
VANISHING_BUILD = ("#!{python}\nimport os, sys\nfrom maestrod.main import main\ncode = main()\n"
                   "if code == 0 and '--check-state' in sys.argv:\n    os.unlink(sys.argv[0])\nsys.exit(code)\n")


def _install(path: Path, text: str) -> None:
    path.write_text(text.format(python=sys.executable))
    path.chmod(0o755)


def _wait_event(d: HandoffDaemon, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first ``run.*`` event (kept or new) that ``pred`` accepts: subscribe, then replay, then live."""
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


def _wait_log(d: HandoffDaemon, text: bytes, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in d.log.read_bytes():
        assert time.monotonic() < deadline, f"{text!r} not in the daemon's log"
        time.sleep(0.02)


def test_a_failed_exec_leaves_the_daemon_serving_and_task_runs_stepping(short_tmp: Path) -> None:
    program = short_tmp / "maestrod-build"
    _install(program, BUILD)
    hd = HandoffDaemon(short_tmp, program=[str(program)])
    hd.start()
    try:
        hd.call("project.create", {"name": "p", "dir": str(short_tmp)})
        flag = short_tmp / "go"
        a = hd.call("task.create", {"project": "p", "title": "a"})
        b = hd.call("task.create", {"project": "p", "title": "b", "depends_on": [a["id"]]})
        waits = ('while [ ! -e %s ]; do sleep 0.05; done; '
                 '"$CTL" task report complete "$MAESTRO_TASK_IDS" --message done >/dev/null; exec cat') % flag
        run = hd.call("run.start", {"project": "p", "workers": 1, "agent": "command", "argv": ["sh", "-c", waits],
                                    "env": {"CTL": MAESTROCTL}})
        first = _wait_event(hd, lambda e: e["topic"] == "run.task_started")
        assert first["data"]["task_id"] == a["id"]
        before = hd.call("system.version")

        _install(program, VANISHING_BUILD)
        answer = hd.call("daemon.restart")  # the check passed: the restart is under way ...
        assert answer["restarting"] is True
        _wait_log(hd, b"restart abandoned, maestrod keeps serving")  # ... and its exec failed
        assert not program.exists()

        # The same daemon (its uptime went on), answering: nothing is refused with -32006 any more.
        after = hd.request("system.version")["result"]
        assert after["pid"] == before["pid"] and after["uptime_s"] >= before["uptime_s"]
        listed = hd.request("session.list")
        assert "error" not in listed, listed
        assert not (short_tmp / "d.handoff.json").exists()  # the state written for the exec is gone

        # The run steps again: the worker's report finishes a, the next worker takes b, the run ends.
        flag.touch()
        done = _wait_event(hd, lambda e: e["topic"] == "run.finished")
        assert done["data"]["state"] == "done"
        states = [(t["task_id"], t["state"]) for t in hd.call("run.status", {"id": run["id"]})["tasks"]]
        assert states == [(a["id"], "done"), (b["id"], "done")], states

        # A restart can be asked again (nothing is left "under way"), and this time it goes through.
        _install(program, BUILD)
        hd.restart()
    finally:
        hd.stop()
