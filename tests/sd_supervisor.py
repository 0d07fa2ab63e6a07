"""A small supervisor that speaks systemd's documented protocol, for the crash-survival tests (systemd itself
cannot run in CI).

What it does, as systemd does for a ``Type=notify`` unit with ``FileDescriptorStoreMax=`` (sd_notify(3),
sd_listen_fds(3), "File Descriptor Store" in systemd.service(5)):

* it binds the notify socket (``NOTIFY_SOCKET``, a datagram socket) and reads every datagram with its
  ``SCM_RIGHTS``: ``READY=1``; ``FDSTORE=1`` with ``FDNAME=`` keeps the passed descriptors under that name;
  ``FDSTOREREMOVE=1`` with ``FDNAME=`` closes and forgets them;
* it starts maestrod with the stored descriptors as fds 3, 4, ... and ``LISTEN_FDS``, ``LISTEN_PID`` (the pid
  of maestrod itself: a tiny exec wrapper sets it) and ``LISTEN_FDNAMES`` (colon-separated);
* the test SIGKILLs maestrod (a crash) and starts it again: the store outlives the process, as it outlives
  a service's automatic restart (``Restart=``).
"""

from __future__ import annotations

import array
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import MAESTROD
from tests.subprocess_daemon import _die_with_parent

#: Sets LISTEN_PID to its own pid, then becomes maestrod (same pid), as systemd's exec does.
_WRAPPER = "import os, sys; os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.argv[1], sys.argv[1:])"


class Supervisor:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.notify_path = root / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        #: FDNAME -> the descriptor kept (the supervisor's own copy).
        self.store: dict[str, int] = {}
        self.log = root / "maestrod.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._cond = threading.Condition()
        self._ready = 0
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    # -- the notify socket -----------------------------------------------------------------------------------

    def _receive(self) -> None:
        while True:
            fds = array.array("i")
            try:
                msg, ancdata, _flags, _addr = self.notify.recvmsg(4096, socket.CMSG_SPACE(253 * fds.itemsize))
            except OSError:
                return
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            fields = dict(line.split("=", 1) for line in msg.decode().splitlines() if "=" in line)
            with self._cond:
                name = fields.get("FDNAME", "stored")
                if fields.get("FDSTORE") == "1":
                    for fd in fds:
                        if name in self.store:  # systemd keeps both; a name is one terminal here
                            os.close(self.store[name])
                        self.store[name] = fd
                    fds = array.array("i")
                if fields.get("FDSTOREREMOVE") == "1" and name in self.store:
                    os.close(self.store.pop(name))
                if fields.get("READY") == "1":
                    self._ready += 1
                self._cond.notify_all()
            for fd in fds:  # passed without FDSTORE=1: not kept
                os.close(fd)

    def wait(self, predicate: object, timeout: float = 60.0) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, timeout), "the supervisor was not told what it waited for"  # type: ignore[arg-type]

    # -- the service ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start maestrod with the fd store's descriptors (LISTEN_FDS...) and wait for READY=1."""
        with self._cond:
            ready = self._ready
            names = list(self.store)
            fds = [self.store[n] for n in names]
        env = dict(self.env, NOTIFY_SOCKET=str(self.notify_path))
        if fds:
            env.update(LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=":".join(names))

        def child() -> None:  # in the child, before exec: the stored fds become 3, 4, ...
            _die_with_parent()
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1000) for fd in fds]
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i)  # dup2 leaves the copy inheritable

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, MAESTROD, "--no-web"], env=env,
                                         stdout=subprocess.DEVNULL, stderr=log, preexec_fn=child,
                                         close_fds=False)
        self.wait(lambda: self._ready > ready)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.notify.close()
        with self._cond:
            for fd in self.store.values():
                os.close(fd)
            self.store.clear()
