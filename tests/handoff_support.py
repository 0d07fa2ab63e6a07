"""A real maestrod subprocess that can be restarted in place (``daemon.restart``), and the programs the handoff
tests run in its sessions: a counter that writes numbered lines in raw mode (every byte it writes reaches the
PTY unchanged, so the scrollback can be checked byte for byte) and a viewer attached through a real PTY."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from maestrod.sessions.pty import set_winsize
from tests.conftest import MAESTROCTL, MAESTROD
from tests.subprocess_daemon import LineConn, SubprocessDaemon, _die_with_parent

#: Writes ``<n>\n`` lines (padded with dots to ``width``), raw mode, until the file argv[1] exists, then
#: ``END <lines> <bytes>\n`` and exits. It starts once the file argv[1] + ".go" exists, and sleeps argv[2]
#: seconds between lines.
COUNTER = r"""
import os, sys, time, tty
tty.setraw(1)
stop, delay, width = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
while not os.path.exists(stop + ".go"):
    time.sleep(0.01)
i = n = 0
while not os.path.exists(stop):
    line = (b"%d" % i).ljust(width - 1, b".") + b"\n"
    view = memoryview(line)
    while view:
        view = view[os.write(1, view):]
    n += len(line)
    i += 1
    if delay:
        time.sleep(delay)
os.write(1, b"END %d %d\n" % (i, n))
"""


class HandoffDaemon(SubprocessDaemon):
    def __init__(self, root: Path, config: str = "", program: list[str] | None = None) -> None:
        super().__init__(root)
        self.program = program or [MAESTROD]
        cfg = root / "config" / "maestro" / "config.toml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(config)
        self.config_path = cfg

    def start(self) -> None:
        import socket

        notify_path = self.root / "n.sock"
        notify_path.unlink(missing_ok=True)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        notify.settimeout(60)
        try:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen([*self.program, "--no-web", "--log-level", "info"],
                                             env=dict(self.env, NOTIFY_SOCKET=str(notify_path)),
                                             stdout=subprocess.DEVNULL, stderr=log, preexec_fn=_die_with_parent)
            assert b"READY=1" in notify.recv(4096)
        finally:
            notify.close()

    # -- calls (a connection each: a restart closes them) ---------------------------------------------------

    def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        conn = LineConn(self.socket, timeout=timeout)
        try:
            conn.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}).encode()
                      + b"\n")
            while True:
                line = conn.line()
                assert line is not None, f"{method}: the daemon closed the connection"
                msg = json.loads(line)
                if msg.get("id") == 1:
                    return msg
        finally:
            conn.close()

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        msg = self.request(method, params)
        assert "error" not in msg, (method, msg["error"])
        return msg["result"]

    def restart(self) -> tuple[dict[str, Any], float]:
        """``daemon.restart``, then wait until the new daemon answers: (the answer, seconds from the exec's
        start, as the log does not know it, to the first answer of the new daemon)."""
        before = self.call("system.version")
        started = time.monotonic()
        answer = self.call("daemon.restart")
        self.wait_new_daemon(started)
        assert self.call("system.version")["pid"] == before["pid"]
        return answer, time.monotonic() - started

    def wait_new_daemon(self, since: float, timeout: float = 60.0) -> None:
        """Until a daemon started after ``since`` (monotonic) answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.call("system.version")
                if info["uptime_s"] < time.monotonic() - since:
                    return
            except (OSError, AssertionError):
                pass
            assert time.monotonic() < deadline, "the restarted daemon did not answer"
            time.sleep(0.01)

    # -- sessions ------------------------------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], **kw: Any) -> dict[str, Any]:
        return self.call("session.spawn", {"project": "p", "name": name, "agent": "command", "argv": argv,
                                           "cwd": str(self.root), **kw})  # type: ignore[no-any-return]

    def output(self, sid: str, offset: int = 0) -> tuple[int, bytes]:
        """(the offset of the first byte still held, every byte from there) of the session's scrollback."""
        chunks: list[bytes] = []
        first: int | None = None
        while True:
            r = self.call("session.output", {"id": sid, "offset": offset, "limit": 1 << 20})
            if first is None:
                first = r["offset"]
            data = base64.b64decode(r["data"])
            chunks.append(data)
            offset = r["next_offset"]
            if not data or offset >= r["total"]:
                break
        return first or 0, b"".join(chunks)

    def wait_output(self, sid: str, pattern: bytes, timeout: float = 60.0) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            _start, data = self.output(sid)
            if pattern in data:
                return data
            assert time.monotonic() < deadline, f"{pattern!r} not in the output of {sid}: {data[-300:]!r}"
            time.sleep(0.05)

    def wait_screen(self, sid: str, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.call("session.screen", {"id": sid})["text"]
            if text in screen:
                return str(screen)
            assert time.monotonic() < deadline, f"{text!r} not on the screen of {sid}:\n{screen}"
            time.sleep(0.05)

    def counter(self, name: str, delay: float, width: int = 64, *, go: bool = True) -> tuple[str, Path]:
        """A counter session (started unless ``go`` is false: touch ``<stop>.go``): (its id, the file that
        stops it)."""
        stop = self.root / f"{name}.stop"
        s = self.spawn(name, [sys.executable, "-c", COUNTER, str(stop), str(delay), str(width)])
        if go:
            Path(f"{stop}.go").touch()
        return s["id"], stop


def check_counter(data: bytes) -> tuple[int, int]:
    """The counter's whole output, every line present once and in order, and as many bytes as it says it
    wrote: (lines, bytes)."""
    body, end, tail = data.rpartition(b"END ")
    assert end, f"no END line: {data[-200:]!r}"
    lines_said, bytes_said = (int(x) for x in tail.split()[:2])
    numbers = [int(line.split(b".", 1)[0]) for line in body.split(b"\n")[:-1]]
    bad = next((i for i, n in enumerate(numbers) if n != i), None)
    assert bad is None and len(numbers) == lines_said, \
        f"lines missing or repeated from line {bad}: {numbers[max(0, (bad or 0) - 3):(bad or 0) + 3]}"
    assert len(body) == bytes_said, f"{len(body)} bytes reached the scrollback, the counter wrote {bytes_said}"
    return lines_said, bytes_said


class AttachedViewer:
    """``maestroctl session attach ID`` on a real PTY; everything it draws is collected."""

    def __init__(self, env: dict[str, str], sid: str) -> None:
        master, slave = pty.openpty()
        set_winsize(slave, 40, 120)
        self.master = master
        self.proc = subprocess.Popen([MAESTROCTL, "session", "attach", sid], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, start_new_session=True, preexec_fn=None)
        os.close(slave)
        self.data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.data += chunk

    def wait_for(self, pattern: bytes, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while pattern not in self.snapshot():
            ended = self.proc.poll() is not None and not self._thread.is_alive()
            assert not ended and time.monotonic() < deadline, f"{pattern!r} not shown: {self.snapshot()[-300:]!r}"
            time.sleep(0.02)

    def snapshot(self) -> bytes:
        with self._lock:
            return bytes(self.data)

    def numbers(self) -> list[int]:
        """The counter lines it showed, in order."""
        return [int(m) for m in re.findall(rb"(\d+)\.*\n", self.snapshot().split(b"END ")[0])]

    def detach(self) -> str:
        os.write(self.master, b"\x1d")
        self.proc.wait(timeout=30)
        self._thread.join(timeout=5)
        os.close(self.master)
        return self.snapshot().decode("utf-8", "replace")
