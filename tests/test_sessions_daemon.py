"""Sessions through maestrod as a real subprocess (ready = the sd_notify READY=1 datagram) and the real
maestroctl: spawn, type, screen, prompt, stop; daemon shutdown stops sessions; a daemon killed
with sessions running finds them ``lost`` when it starts again."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from maestrod.sessions.manager import pid_alive as _alive
from tests.test_cli import DaemonProcess, dproc  # noqa: F401  (the subprocess daemon fixture)


def _screen_until(d: DaemonProcess, sid: str, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        r = d.ctl("session", "screen", sid)
        assert r.returncode == 0, r.stderr
        if text in r.stdout:
            return r.stdout
        assert time.monotonic() < deadline, f"{text!r} never on screen:\n{r.stdout}"
        time.sleep(0.05)


def _ready(d: DaemonProcess) -> None:
    """READY=1 of the daemon just started (a previous one's STOPPING=1 may still be queued)."""
    while "READY=1" not in d.notify.recv(4096).decode():
        pass


def test_sessions_with_a_subprocess_daemon(dproc: DaemonProcess, short_tmp: Path) -> None:  # noqa: F811
    d = dproc
    d.start()
    _ready(d)
    d.ctl_json("project", "create", "--name", "P", "--dir", str(short_tmp))
    s: dict[str, Any] = d.ctl_json("session", "spawn", "--project", "P", "--name", "N", "--cwd", str(short_tmp),
                                   "--", "bash", "--norc", "--noprofile", "-i")
    sid = s["id"]
    assert s["status"] == "idle" and s["cwd"] == str(short_tmp)
    r = d.ctl("session", "input", "N", "--text", "echo sub-$((2+3))", "--key", "enter")
    assert r.returncode == 0, r.stderr
    _screen_until(d, sid, "sub-5")
    r = d.ctl("session", "prompt", sid, "--message", "echo prompted-$((3*3))")
    assert r.returncode == 0 and "delivered" in r.stdout, r.stderr
    _screen_until(d, sid, "prompted-9")
    assert [x["id"] for x in d.ctl_json("session", "list", "--project", "P")] == [sid]
    stopped = d.ctl_json("session", "stop", sid)
    assert stopped["status"] == "exited" and stopped["exit_reason"] == "stopped"

    # SIGTERM with a session running: the daemon stops it (HUP) and exits cleanly.
    live = d.ctl_json("session", "spawn", "--project", "P", "--name", "sleeper", "--", "sleep", "1000")
    assert d.stop() == 0
    assert not _alive(live["pid"])
    d.start()
    _ready(d)
    got = d.ctl_json("session", "get", live["id"])
    assert got["status"] == "exited" and got["exit_reason"] == "stopped"

    # Killed outright with a session running: on the next start it is `lost`.
    orphan = d.ctl_json("session", "spawn", "--project", "P", "--name", "orphan", "--", "sleep", "1000")
    assert d.proc is not None
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=10)
    try:
        d.start()
        _ready(d)
        got = d.ctl_json("session", "get", orphan["id"])
        assert got["status"] == "exited" and got["exit_reason"] == "lost" and got["exit_code"] is None
        r = d.ctl("session", "prompt", orphan["id"], "--message", "hello?")
        assert r.returncode == 1 and "no terminal in this daemon" in r.stderr
        assert d.stop() == 0
    finally:
        if _alive(orphan["pid"]):  # the kernel hangs up the tty when the master goes; belt and braces
            os.kill(orphan["pid"], signal.SIGKILL)
