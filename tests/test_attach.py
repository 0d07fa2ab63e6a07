"""Attach: the wire protocol (repaint, stream, input, resize, detach, exit) and the real
``maestroctl session attach`` driven through a PTY."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import trio

from maestrod.sessions.pty import PtyProcess
from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient, maestroctl_env, wait_screen
from tests.session_support import _project, _spawn
from tests.test_pty import _read_until


async def _shell(client: RawClient, d: Path) -> dict[str, Any]:
    await _project(client, d)
    return await _spawn(client, ["bash", "--norc", "--noprofile", "-i"], env={"PS1": "READY$ "}, rows=24, cols=80)


class Stream:
    """The notifications of one attach request, decoded."""

    def __init__(self, conn: RawClient, rid: int) -> None:
        self.conn, self.rid = conn, rid
        self.screen = b""
        self.response: dict[str, Any] | None = None
        self.notes: list[dict[str, Any]] = []

    async def until(self, pred: Any, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while not pred(self):
                msg = await self.conn.recv()
                if msg.get("id") == self.rid:
                    self.response = msg
                elif msg.get("method") == "session.output":
                    self.notes.append(msg["params"])
                    self.screen += base64.b64decode(msg["params"]["data"])
                elif "method" in msg:
                    self.notes.append({"method": msg["method"], **msg["params"]})


async def _attach(conn: RawClient, sid: str, rid: int, **size: int) -> Stream:
    await conn.send({"jsonrpc": "2.0", "id": rid, "method": "session.attach", "params": {"id": sid, **size}})
    return Stream(conn, rid)


def _note(method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


async def test_attach_protocol(daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog) -> None:
    s = await _shell(client, short_tmp)
    sid = s["id"]
    await wait_screen(daemon.app, sid, lambda t: "READY$" in t)
    viewer = await daemon.connect()
    st = await _attach(viewer, sid, 1, rows=30, cols=100)
    await st.until(lambda x: x.notes)
    first = st.notes[0]
    assert first["repaint"] is True and first["id"] == sid and first["offset"] > 0
    assert b"READY$" in st.screen and st.screen.startswith(b"\x1b[0m\x1b[H\x1b[2J")
    got = await client.call("session.get", {"id": sid})
    assert (got["rows"], got["cols"], got["viewers"]) == (30, 100, 1)  # follows the attacher

    # Keys in, output out; the DA1 query the program prints is answered by the daemon and hidden here.
    await viewer.send(
        _note(
            "session.input", id=sid, data=base64.b64encode(b"printf 'X\\033[cY\\n'; read -rs -d c\r").decode()
        )
    )
    await st.until(lambda x: b"XY\r\n" in x.screen)
    assert b"\x1b[c" not in st.screen
    await wait_screen(daemon.app, sid, lambda t: "\nXY\n" in t)

    # A second viewer; the session takes the size of the most recent attacher, or a resize.
    other = await daemon.connect()
    st2 = await _attach(other, sid, 7, rows=20, cols=60)
    await st2.until(lambda x: x.notes)
    assert (await client.call("session.get", {"id": sid}))["viewers"] == 2
    assert daemon.app.sessions.sessions[sid].terminal.cols == 60
    await viewer.send(_note("session.resize", id=sid, rows=25, cols=90))
    await viewer.send(_note("session.input", id=sid, data=base64.b64encode(b"stty size\r").decode()))
    await st.until(lambda x: b"25 90" in x.screen)
    await st2.until(lambda x: b"25 90" in x.screen)

    # Detach one: the other keeps streaming; keystrokes of viewers are not timeline rows.
    await other.send({"jsonrpc": "2.0", "id": 8, "method": "session.detach", "params": {"id": sid}})
    await st2.until(lambda x: x.response is not None)
    assert st2.response is not None and st2.response["result"] == {"id": sid, "ended": "detached"}
    hist = daemon.app.timeline.for_subject("session", sid)
    assert not any(h["type"] == "session.input" for h in hist)
    attaches = [h["data"]["attached"] for h in hist if h["type"] == "session.attach"]
    assert attaches == [True, True, False]

    # The program exits: the stream says so and the attach answers.
    await viewer.send(_note("session.input", id=sid, data=base64.b64encode(b"exit 5\r").decode()))
    await st.until(lambda x: x.response is not None)
    assert st.response is not None and st.response["result"]["ended"] == "exited"
    exited = next(n for n in st.notes if n.get("method") == "session.exited")
    assert exited["exit_code"] == 5 and exited["exit_reason"] == "failed"
    # Attaching to an exited session shows its last screen and ends at once.
    late = await _attach(other, sid, 9)
    await late.until(lambda x: x.response is not None)
    assert b"READY$" in late.screen and late.response["result"]["ended"] == "exited"  # type: ignore[index]


async def test_viewer_that_falls_behind_gets_a_repaint(
    daemon: Daemon, client: RawClient, short_tmp: Path, monkeypatch: Any
) -> None:
    from maestrod.sessions import live as live_module

    monkeypatch.setattr(live_module, "VIEWER_BACKLOG", 64)
    s = await _shell(client, short_tmp)
    sid = s["id"]
    await wait_screen(daemon.app, sid, lambda t: "READY$" in t)
    viewer = live_module.Viewer()
    live = daemon.app.sessions.sessions[sid]
    live.viewers.append(viewer)
    await client.call("session.input", {"id": sid, "text": "seq 1 200\r"})
    await wait_screen(daemon.app, sid, lambda t: "\n200\n" in t)
    assert viewer.needs_repaint and viewer.chunks == []
    live.viewers.remove(viewer)


async def test_maestroctl_attach_in_a_terminal(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    s = await _shell(client, short_tmp)
    sid = s["id"]
    await wait_screen(daemon.app, sid, lambda t: "READY$" in t)
    env = maestroctl_env(daemon.socket_path, TERM="xterm-256color")
    p = await PtyProcess.spawn(
        [MAESTROCTL, "session", "attach", "sh"], cwd=str(short_tmp), env=env, rows=22, cols=77
    )
    out = bytearray()
    await _read_until(p, b"READY$", out)
    assert out.startswith(b"\x1b[?1049h")  # the alternate screen, then the repaint
    got = await client.call("session.get", {"id": sid})
    assert (got["rows"], got["cols"]) == (22, 77)
    await p.write(b"echo attached-$((1+1))\r")
    await _read_until(p, b"attached-2", out)
    p.resize(26, 88)  # SIGWINCH to the attach client: the session follows
    with trio.fail_after(10):
        while (await client.call("session.get", {"id": sid}))["cols"] != 88:
            await trio.sleep(0.02)
    await p.write(b"\x1d")  # Ctrl-]: detach
    with trio.fail_after(10):
        while chunk := await p.read():
            out.extend(chunk)
        assert await p.wait() == 0
    p.close()
    assert f"[{sid}: detached]".encode() in out and b"\x1b[?1049l" in out
    got = await client.call("session.get", {"id": sid})
    assert got["status"] == "idle" and got["viewers"] == 0  # the session keeps running
    assert os.path.exists(daemon.socket_path)


async def test_attach_refuses_without_a_terminal(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    s = await _shell(client, short_tmp)
    r = await trio.run_process(
        [MAESTROCTL, "session", "attach", s["id"]],
        capture_stderr=True,
        stdin=b"",
        env=maestroctl_env(daemon.socket_path),
        check=False,
    )
    assert r.returncode == 2 and b"needs a terminal" in r.stderr
