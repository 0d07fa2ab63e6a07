"""Helpers for the shell tests: a real maestrod subprocess, and `maestroctl shell` in a real PTY read
through a pyte screen (which answers the shell's cursor-position requests, as a terminal does)."""

from __future__ import annotations

import functools
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ptyprocess
import pyte
import pytest

from tests.conftest import MAESTROCTL, MAESTROD

ROWS, COLS = 30, 120


class Daemon:
    """maestrod as a process, in its own XDG directories; stop and start it again on the same socket."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "XDG_", "NOTIFY_"))}
        self.env.update(XDG_RUNTIME_DIR=str(root / "run"), XDG_DATA_HOME=str(root / "data"),
                        XDG_CONFIG_HOME=str(root / "config"), XDG_STATE_HOME=str(root / "state"))
        (root / "run").mkdir(mode=0o700, exist_ok=True)
        self.socket = root / "run" / "maestro" / "maestrod.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *args: str) -> None:
        self.starts += 1
        with open(self.root / f"maestrod-{self.starts}.log", "wb") as log:
            self.proc = subprocess.Popen([MAESTROD, *_no_web(), *args], env=self.env, stdout=subprocess.DEVNULL,
                                         stderr=log)
        deadline = time.monotonic() + 20
        ping = ["--socket", args[args.index("--socket") + 1], "ping"] if "--socket" in args else ["ping"]
        while self.ctl(*ping, check=False).returncode != 0:
            assert self.proc.poll() is None, (self.root / f"maestrod-{self.starts}.log").read_text()
            assert time.monotonic() < deadline, "maestrod did not answer within 20 s"
            time.sleep(0.05)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([MAESTROCTL, *args], env=self.env, capture_output=True, text=True, timeout=30)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r


@functools.cache
def _no_web() -> tuple[str, ...]:
    """``--no-web`` where maestrod has a web feed: the shell needs none, and tests must not share a port."""
    r = subprocess.run([MAESTROD, "--help"], capture_output=True, text=True, timeout=30)
    return ("--no-web",) if "--no-web" in r.stdout else ()


class _Screen(pyte.Screen):
    """A terminal screen that answers what the program asks of the terminal (cursor position: CPR)."""

    def __init__(self, pty: ptyprocess.PtyProcess) -> None:
        super().__init__(COLS, ROWS)
        self.pty = pty

    def write_process_input(self, data: str) -> None:
        self.pty.write(data.encode())


class Shell:
    """`maestroctl shell` in a PTY. Every check awaits a screen condition with a deadline."""

    def __init__(self, env: dict[str, str], argv: list[str] | None = None) -> None:
        self.pty = ptyprocess.PtyProcess.spawn(argv or [MAESTROCTL, "shell"], env=dict(env, TERM="xterm"),
                                               dimensions=(ROWS, COLS))
        self.screen = _Screen(self.pty)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""

    def pump(self, timeout: float = 0.05) -> None:
        ready, _, _ = select.select([self.pty.fd], [], [], timeout)
        if ready:
            try:
                data = self.pty.read(65536)
            except EOFError:
                return
            self.raw += data
            self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def bottom(self, n: int = 2) -> str:
        """The last ``n`` rows: where the toolbar is."""
        return "\n".join(line.rstrip() for line in self.screen.display[-n:])

    def wait(self, pred: Callable[[Shell], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not seen within {timeout} s; the screen:\n{self.text()}")
            if not self.pty.isalive():
                self.pump(0)
                raise AssertionError(f"{what}: the shell exited; the screen:\n{self.text()}")
            self.pump()

    def wait_text(self, needle: str, timeout: float = 15.0) -> None:
        self.wait(lambda s: needle in s.text(), repr(needle), timeout)

    def line(self) -> str:
        """The prompt line being edited (the last one on screen that starts with the prompt)."""
        lines = [line.rstrip() for line in self.screen.display if line.startswith("maestro>")]
        return lines[-1] if lines else ""

    def wait_line(self, expected: str, timeout: float = 15.0) -> None:
        self.wait(lambda s: s.line() == expected, f"the prompt line {expected!r}", timeout)

    def wait_toolbar(self, pred: Callable[[str], bool], what: str, timeout: float = 15.0) -> None:
        self.wait(lambda s: pred(s.bottom()), f"toolbar {what}", timeout)

    def type(self, keys: str) -> None:
        self.pty.write(keys.encode())

    def close(self) -> None:
        if self.pty.isalive():
            self.pty.terminate(force=True)
        self.pty.close(force=True)


@pytest.fixture
def maestro(short_tmp: Path) -> Iterator[Daemon]:
    d = Daemon(short_tmp)
    d.start()
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()


@pytest.fixture
def shell_in(maestro: Daemon) -> Iterator[Callable[..., Shell]]:
    shells: list[Shell] = []

    def open_(**kw: Any) -> Shell:
        s = Shell(maestro.env, **kw)
        shells.append(s)
        s.wait_text("maestro>")
        return s

    yield open_
    for s in shells:
        s.close()
