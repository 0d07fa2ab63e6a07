"""maestrod as a real subprocess (its own data directory and socket), for the suites that must kill it or
watch its descriptors and memory from outside: the protocol fuzzer and the kill -9 rounds."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import MAESTROD


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, so a killed test run leaves no daemon behind."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class SubprocessDaemon:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "d.sock"
        self.db_path = root / "data" / "maestro" / "maestro.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "XDG_", "NOTIFY_"))}
        self.env.update(XDG_DATA_HOME=str(root / "data"), XDG_CONFIG_HOME=str(root / "config"),
                        XDG_RUNTIME_DIR=str(root), MAESTRO_SOCKET=str(self.socket))
        self.log = root / "maestrod.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start maestrod and return once it said READY=1 (sd_notify), its socket listening."""
        notify_path = self.root / "n.sock"
        notify_path.unlink(missing_ok=True)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        notify.settimeout(60)
        try:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen([MAESTROD, "--no-web", "--log-level", "info"],
                                             env=dict(self.env, NOTIFY_SOCKET=str(notify_path)),
                                             stdout=subprocess.DEVNULL, stderr=log,
                                             preexec_fn=_die_with_parent)
            assert b"READY=1" in notify.recv(4096)
        finally:
            notify.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class LineConn:
    """A blocking NDJSON connection."""

    def __init__(self, path: Path, timeout: float = 20.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""
        self.closed = False
        self.next_id = 0

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes | None:
        """The next line, or None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """The result; raises ConnectionError if the daemon went away before answering in full."""
        self.next_id += 1
        self.send(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                              "params": params or {}}).encode() + b"\n")
        while True:
            line = self.line()
            if line is None:
                raise ConnectionError("maestrod closed the connection")
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                break
        if "error" in msg:
            raise AssertionError(f"{method}: {msg['error']}")
        return msg["result"]

    def close(self) -> None:
        self.sock.close()
