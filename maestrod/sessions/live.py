"""The in-memory side of a session this daemon started: its PTY, terminal, viewers and status machine."""

from __future__ import annotations

import trio

from maestrod.sessions.pty import PtyProcess
from maestrod.sessions.screen import ScreenWatch
from maestrod.sessions.scrollback import Scrollback
from maestrod.sessions.status import AgentKind, Decision, StatusMachine
from maestrod.sessions.terminal import Terminal

#: An attached viewer that falls this far behind gets a fresh repaint instead of the backlog.
VIEWER_BACKLOG = 4 * 1024 * 1024


class Viewer:
    """One attached terminal: a bounded buffer of output the attach stream has not sent yet."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.needs_repaint = False
        self.detached = False
        self._wake = trio.Event()

    def push(self, data: bytes) -> None:
        if self.needs_repaint:
            return
        self.chunks.append(data)
        self.size += len(data)
        if self.size > VIEWER_BACKLOG:
            self.chunks.clear()
            self.size = 0
            self.needs_repaint = True
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        return data

    async def wait(self) -> None:
        await self._wake.wait()
        self._wake = trio.Event()


class ScreenFeed:
    """One client watching the screen model (``session.watch_screen``): woken when output arrives."""

    def __init__(self) -> None:
        self.ended = False
        self._wake = trio.Event()

    def poke(self) -> None:
        self._wake.set()

    async def wait(self) -> None:
        await self._wake.wait()
        self._wake = trio.Event()


class LiveSession:
    """A session whose process this daemon started (running, or exited and kept for a while)."""

    def __init__(self, sid: str, kind: AgentKind, pty: PtyProcess, rows: int, cols: int,
                 scrollback_bytes: int) -> None:
        self.id = sid
        self.kind = kind
        self.pty = pty
        self.terminal = Terminal(rows, cols)
        self.scrollback = Scrollback(scrollback_bytes)
        self.viewers: list[Viewer] = []
        #: Clients watching the screen model (maestrod.sessions.screen_feed).
        self.screen_feeds: list[ScreenFeed] = []
        self.write_lock = trio.Lock()
        #: Held from "which prompt is next, may it be typed" to "typed": one prompt at a time, never twice.
        self.prompt_lock = trio.Lock()
        self.exited = trio.Event()
        self.reader_done = trio.Event()
        self.changed = trio.Event()
        self.stop_requested: str | None = None
        self.stopping = False
        self.exit_code: int | None = None
        self.machine = StatusMachine(kind)
        #: The decision last written to the store.
        self.decision = Decision("spawning", "starting", "daemon")
        #: The attention reason the status machine wrote (it clears only its own).
        self.attention_written: str | None = None
        #: A delivered prompt holds back the next one until the agent confirms it (or this passes).
        self.awaiting_confirm_until = 0.0
        #: Why the head of the prompt queue waits (as stored), to write it only when it changes.
        self.held: str | None = None
        #: The screen witness (set right after the session starts).
        self.screen_watch: ScreenWatch | None = None
        #: The FDNAME its PTY master is kept under in systemd's file descriptor store (None: not kept).
        self.fd_store_name: str | None = None

    @property
    def status(self) -> str:
        return self.decision.status

    def kick(self) -> None:
        """Wake whoever waits for this session to change (status, readiness, queue)."""
        ev, self.changed = self.changed, trio.Event()
        ev.set()

    @property
    def is_exited(self) -> bool:
        return self.exited.is_set()
