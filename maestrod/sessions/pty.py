"""A child process on a PTY whose master the daemon owns, under trio.

``pty.openpty()`` + ``trio.lowlevel.open_process`` (not ptyprocess, whose close and terminate block): trio
owns reaping, and ``await proc.wait()`` uses a pidfd on Linux (kqueue on macOS). The master
fd is non-blocking; reads and writes wait with ``wait_readable``/``wait_writable``.

EIO on the master means "no slave fd open any more", not "the child exited" (a grandchild
may hold the slave; the child may not be a zombie yet): exit is only ever taken from
:meth:`PtyProcess.wait`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import Mapping, Sequence
from typing import Protocol

import trio


_RESET_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGHUP)


def _make_controlling_tty() -> None:  # pragma: no cover - runs in the child
    # After setsid() (start_new_session) and dup2(slave -> 0, 1, 2): make the slave our tty.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # An agent gets a normal terminal whatever the daemon inherited: a daemon started as a
    # background job of a non-interactive shell (`maestrod &`) has SIGINT/SIGQUIT ignored, which
    # exec would pass on, and a shell cannot even trap a signal ignored at its start.
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_winsize(fd: int) -> tuple[int, int]:
    rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


class Child(Protocol):
    """The process on the PTY: a :class:`trio.Process` this daemon started, or one it adopted from its
    predecessor (:class:`maestrod.sessions.adopt.AdoptedChild`)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int | None: ...


class PtyProcess:
    def __init__(self, proc: Child, master: int) -> None:
        self.proc = proc
        self.master = master
        self.pid: int = proc.pid
        self._closed = False

    @classmethod
    async def spawn(
        cls, argv: Sequence[str], *, cwd: str, env: Mapping[str, str], rows: int = 40, cols: int = 120
    ) -> PtyProcess:
        """Start ``argv`` on a new PTY (its own session and process group, the PTY its controlling tty).

        Raises OSError (e.g. FileNotFoundError) if the program cannot be executed.
        """
        master, slave = pty.openpty()  # both non-inheritable (PEP 446); the child gets dup2'd copies
        try:
            set_winsize(master, rows, cols)
            os.set_blocking(master, False)
            proc = await trio.lowlevel.open_process(
                list(argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_make_controlling_tty,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # else EIO never comes
        return cls(proc, master)

    # -- I/O --------------------------------------------------------------------------------

    async def read(self, max_bytes: int = 65536) -> bytes:
        """The next chunk of output; ``b""`` once no slave is open any more (EIO) or after close().

        Bytes read are returned without another checkpoint: the reader is never suspended holding output,
        so whatever the daemon does meanwhile (a graceful restart execs in place) loses none of it."""
        # A flood must not starve the other tasks: one checkpoint per chunk, taken before reading it.
        await trio.lowlevel.checkpoint()
        while True:
            if self._closed:
                return b""
            try:
                return os.read(self.master, max_bytes)
            except BlockingIOError:
                try:
                    await trio.lowlevel.wait_readable(self.master)
                except trio.ClosedResourceError:
                    return b""
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return b""
                raise

    async def write(self, data: bytes) -> None:
        """Write all of ``data``, waiting while the tty input queue (~4 KiB) is full."""
        view = memoryview(data)
        while view:
            if self._closed:
                raise trio.ClosedResourceError("the session's terminal is closed")
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.master)
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    raise trio.ClosedResourceError("the session's terminal is gone") from None
                raise

    def resize(self, rows: int, cols: int) -> None:
        """TIOCSWINSZ on the master: the kernel sends SIGWINCH to the foreground process group."""
        if not self._closed:
            set_winsize(self.master, rows, cols)

    # -- the process ------------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def wait(self) -> int | None:
        """The exit code; None when it cannot be known (an adopted process that is not our child)."""
        return await self.proc.wait()

    def signal(self, sig: int) -> bool:
        """Send ``sig`` to the child's process group (it is a session leader); False if it is gone."""
        if self.proc.returncode is not None:
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                return False
        except PermissionError:
            return False
        return True

    def kill(self) -> bool:
        return self.signal(signal.SIGKILL)

    def close(self) -> None:
        """Close the master (hangs up the tty). Tasks waiting on it are woken first."""
        if self._closed:
            return
        self._closed = True
        try:
            trio.lowlevel.notify_closing(self.master)
        except RuntimeError:  # not in trio (tests, shutdown)
            pass
        os.close(self.master)
