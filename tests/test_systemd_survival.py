"""Crash survival under systemd, against a supervisor that speaks its protocol (tests/sd_supervisor.py):
maestrod keeps every PTY master in the fd store (``FDSTORE=1``, ``FDNAME=pty.<session>.<pid>.<start>``),
is SIGKILLed while its agents run and print, and the restarted maestrod gets the masters back in
``LISTEN_FDS``/``LISTEN_FDNAMES`` and adopts the same processes (no longer its children: watched with a
pidfd). What only a real systemd proves (the unit's KillMode, OOMPolicy, the cgroup) is in docs/restart.md;
the units are checked with ``systemd-analyze verify`` in tests/test_service_files.py."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.handoff_support import COUNTER, HandoffDaemon
from tests.sd_supervisor import Supervisor


@pytest.fixture
def supervised(short_tmp: Path) -> Iterator[tuple[Supervisor, HandoffDaemon]]:
    # HandoffDaemon only for its environment and calls; the supervisor runs the process.
    d = HandoffDaemon(short_tmp, "[sessions]\nscrollback_bytes = 67108864\n")
    sup = Supervisor(short_tmp, d.env)
    try:
        yield sup, d
    finally:
        sup.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigkill_under_the_supervisor_keeps_agents_attached(supervised: tuple[Supervisor, HandoffDaemon]) -> None:
    sup, d = supervised
    sup.start()
    d.call("project.create", {"name": "p", "dir": str(d.root)})
    stop = d.root / "c.stop"
    s = d.spawn("counter", [sys.executable, "-c", COUNTER, str(stop), "0.002", "64"])
    sid, pid = s["id"], s["pid"]
    sup.wait(lambda: any(n.startswith(f"pty.{sid}.{pid}.") for n in sup.store))
    Path(f"{stop}.go").touch()
    _start, before = d.output(sid)
    while before.count(b"\n") < 100:
        time.sleep(0.02)
        _start, before = d.output(sid)
    old_daemon = sup.pid

    sup.kill9()  # a crash: nothing is handed over, the agent goes on printing into its PTY
    assert _alive(pid)
    time.sleep(0.2)
    sup.start()

    assert sup.pid != old_daemon
    got = d.call("session.get", {"id": sid})
    assert got["pid"] == pid and got["status"] == "idle", got  # the same process, attached again
    history = d.call("session.history", {"id": sid, "limit": 50})
    assert any(h["type"] == "session.adopted" for h in history["entries"])
    d.wait_output(sid, b"\n")  # output continues in the new daemon
    stop.touch()
    data = d.wait_output(sid, b"END ")
    # What the new daemon read continues the count with nothing repeated (what the killed daemon had read
    # and not shown anyone died with it).
    body = data.rpartition(b"END ")[0]
    after = [int(line.split(b".", 1)[0]) for line in body.split(b"\n")[:-1] if line]
    first_after = after[0]
    assert after == list(range(first_after, first_after + len(after)))
    seen_before = [int(line.split(b".", 1)[0]) for line in before.split(b"\n")[:-1]]
    assert first_after > seen_before[-1]
    assert int(data.rpartition(b"END ")[2].split()[0]) == after[-1] + 1
    # Its exit is seen through the pidfd (it is not the new daemon's child: no exit code), and its terminal
    # leaves the fd store.
    ended = d.call("session.wait", {"ids": [sid], "until": "exited", "timeout": 30})
    assert ended["done"] is True
    row = d.call("session.get", {"id": sid})
    assert row["status"] == "exited" and row["exit_code"] is None
    sup.wait(lambda: not any(n.startswith(f"pty.{sid}.") for n in sup.store))


def test_a_graceful_restart_under_the_supervisor_keeps_the_fd_store(
        supervised: tuple[Supervisor, HandoffDaemon]) -> None:
    sup, d = supervised
    sup.start()
    d.call("project.create", {"name": "p", "dir": str(d.root)})
    stop = d.root / "c.stop"
    s = d.spawn("counter", [sys.executable, "-c", COUNTER, str(stop), "0.002", "64"])
    Path(f"{stop}.go").touch()
    sup.wait(lambda: len(sup.store) == 1)
    d.restart()  # in place: same pid; the successor still has the terminal in the store
    sup.kill9()  # then a crash
    sup.start()
    got = d.call("session.get", {"id": s["id"]})
    assert got["pid"] == s["pid"] and got["status"] == "idle"
    stop.touch()
    d.wait_output(s["id"], b"END ")


def test_a_pid_reused_by_another_process_is_not_adopted(supervised: tuple[Supervisor, HandoffDaemon]) -> None:
    """The start time in the FDNAME names the process: a session whose process died while the daemon was down
    is not adopted (its fd is closed and removed from the store), it is recorded lost as before."""
    sup, d = supervised
    sup.start()
    d.call("project.create", {"name": "p", "dir": str(d.root)})
    s = d.spawn("cat", ["cat"])
    sup.wait(lambda: len(sup.store) == 1)
    sup.kill9()
    os.kill(s["pid"], 9)
    sup.start()
    got = d.call("session.get", {"id": s["id"]})
    assert got["status"] == "exited" and got["exit_reason"] == "lost"
    sup.wait(lambda: not sup.store)

