"""Start a throwaway maestrod for a benchmark and wait for READY=1 (no sleeps)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent


@contextlib.contextmanager
def running_daemon(*args: str, command: list[str] | None = None) -> Iterator[tuple[Path, dict[str, str]]]:
    """``command`` replaces the ``maestrod`` executable (e.g. ``python -m cProfile -o F -m maestrod``)."""
    root = Path(tempfile.mkdtemp(prefix="mb-", dir="/tmp"))
    sock_path = root / "d.sock"
    notify_path = root / "n.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    env.update(XDG_DATA_HOME=str(root / "data"), XDG_CONFIG_HOME=str(root / "cfg"), MAESTRO_SOCKET=str(sock_path))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(30)
    proc = subprocess.Popen([*(command or [str(BIN / "maestrod")]), "--log-level", "warning", *args],
                            env=dict(env, NOTIFY_SOCKET=str(notify_path)))
    try:
        assert b"READY=1" in notify.recv(4096)
        yield sock_path, env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        notify.close()
        shutil.rmtree(root, ignore_errors=True)
