"""PtyProcess: a child on a non-blocking PTY master under trio; exit from the process, not from EIO."""

from __future__ import annotations

import os
import signal

import trio

from maestrod.sessions.pty import PtyProcess, get_winsize


async def _read_until(p: PtyProcess, marker: bytes, out: bytearray) -> None:
    with trio.fail_after(10):
        while marker not in out:
            chunk = await p.read()
            assert chunk, f"EOF before {marker!r}; got {bytes(out)!r}"
            out += chunk


async def test_spawn_read_write_resize_and_controlling_tty() -> None:
    p = await PtyProcess.spawn(
        ["sh", "-c", "tty; stty size; read x; echo got-$x; stty size"],
        cwd="/",
        env={**os.environ, "TERM": "xterm-256color"},
        rows=20,
        cols=70,
    )
    out = bytearray()
    await _read_until(p, b"20 70", out)
    assert b"/dev/pts/" in out
    p.resize(33, 99)
    assert get_winsize(p.master) == (33, 99)
    await p.write(b"hello\r")
    await _read_until(p, b"33 99", out)
    assert b"got-hello" in out
    assert await p.wait() == 0
    p.close()
    assert await p.read() == b""


async def test_no_output_lost_before_exit_and_exit_code() -> None:
    p = await PtyProcess.spawn(
        ["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x; exit 7"], cwd="/", env=dict(os.environ)
    )
    total = 0
    while chunk := await p.read():
        total += len(chunk)
    assert total == 200_000
    assert await p.wait() == 7


async def test_eio_is_not_exit_a_grandchild_holds_the_terminal() -> None:
    # The child exits at once; a background grandchild keeps the slave open (no EIO yet).
    p = await PtyProcess.spawn(
        ["sh", "-c", "trap '' HUP; (sleep 0.3; echo late) & echo early"], cwd="/", env=dict(os.environ)
    )
    assert await p.wait() == 0
    out = bytearray()
    await _read_until(p, b"late", out)
    assert b"early" in out


async def test_signals_go_to_the_process_group() -> None:
    p = await PtyProcess.spawn(["sh", "-c", "sleep 100 & wait"], cwd="/", env=dict(os.environ))
    assert p.signal(signal.SIGTERM)
    with trio.fail_after(5):
        assert await p.wait() == -signal.SIGTERM
    assert not p.signal(signal.SIGTERM)  # already gone: no error
    p.close()


async def test_big_write_waits_for_the_input_queue() -> None:
    p = await PtyProcess.spawn(
        ["sh", "-c", "stty -icanon -echo; echo ready; head -c 100000 | wc -c"], cwd="/", env=dict(os.environ)
    )
    out = bytearray()
    await _read_until(p, b"ready", out)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(p.write, b"y" * 100_000)
        await _read_until(p, b"100000", out)
    assert await p.wait() == 0
    p.close()
