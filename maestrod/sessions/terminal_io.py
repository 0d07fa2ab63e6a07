"""Bytes in and out of a session's PTY: the reader, terminal-query answers, and typing.

The reader never waits for anyone: output goes to the scrollback, the terminal (which answers the
program's queries and tracks modes), attached viewers and the screen witness, in that order. Typing
holds the session's write lock, so a paste and its Enter are never split by another writer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import trio

from maestrod.sessions.live import LiveSession
from shared import errors

log = logging.getLogger("maestrod.sessions")

#: Pause between a paste and its Enter, so the TUI has consumed the paste.
PASTE_SETTLE = 0.05
#: Typing into a program that does not read its input gives up after this long.
WRITE_TIMEOUT = 10.0


async def read_loop(s: LiveSession, nursery: trio.Nursery, on_output: Callable[[], None]) -> None:
    """Read until EOF (the program and every holder of the PTY's slave side are gone)."""
    pty, term, scrollback = s.pty, s.terminal, s.scrollback
    paste_mode = term.bracketed_paste
    try:
        while True:
            data = await pty.read()
            if not data:
                return
            scrollback.append(data)
            out, replies = term.process(data)
            if replies:
                reply(s, nursery, b"".join(replies))
            if out:
                for v in s.viewers:
                    v.push(out)
            on_output()
            for feed in s.screen_feeds:
                feed.poke()
            if term.bracketed_paste != paste_mode:  # the TUI came up (or is leaving)
                paste_mode = term.bracketed_paste
                s.kick()
    finally:
        s.reader_done.set()


def reply(s: LiveSession, nursery: trio.Nursery, data: bytes) -> None:
    """Answer a terminal query now; never makes the reader wait (a paste may hold the input)."""
    if not s.write_lock.locked():
        try:
            n = os.write(s.pty.master, data)
        except OSError:  # BlockingIOError included: the rest goes through the write lock
            n = 0
        data = data[n:]
        if not data:
            return
    nursery.start_soon(_write_reply, s, data)


async def _write_reply(s: LiveSession, data: bytes) -> None:
    try:
        await write(s, data)
    except errors.RpcError as exc:  # exited, or not reading: nobody is waiting for the answer
        log.debug("session %s: terminal reply not written: %s", s.id, exc.message)


async def write(s: LiveSession, *parts: bytes) -> None:
    """Type ``parts`` into the terminal, :data:`PASTE_SETTLE` apart, holding the write lock.

    CONFLICT if the session exits meanwhile; UNAVAILABLE if it does not read its input.
    """
    with trio.move_on_after(WRITE_TIMEOUT) as scope:
        async with s.write_lock:
            try:
                for i, part in enumerate(parts):
                    if i:
                        await trio.sleep(PASTE_SETTLE)
                    await s.pty.write(part)
            except trio.ClosedResourceError:
                raise errors.conflict(f"session {s.id} exited while its input was being typed",
                                      {"session": s.id, "status": "exited"}) from None
    if scope.cancelled_caught:
        raise errors.RpcError(errors.UNAVAILABLE,
                              f"session {s.id} is not reading its input (gave up after {WRITE_TIMEOUT:g} s)")
