"""session.screen_model and session.watch_screen over the real Unix socket, with real PTY sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from maestrod.sessions.terminal import Terminal
from tests.conftest import Daemon, RawClient, wait_screen
from tests.session_support import _error, _project, _spawn


def _row_text(model: dict[str, Any], row: int) -> str:
    return "".join(text for text, _style in model["lines"][row])


def _text(model: dict[str, Any]) -> str:
    return "\n".join(_row_text(model, y) for y in range(len(model["lines"])))


def test_screen_model_styles_and_cursor_both_emulators() -> None:
    for emulator in ("avt", "pyte"):
        term = Terminal(4, 30, emulator=emulator)  # type: ignore[arg-type]
        term.process("\x1b[1;31mred\x1b[0m <b>\x1b[38;2;1;2;3;44mx\x1b[0m\r\n\x1b[92mgo\x1b[?25l".encode())
        term.sync_now(full=True)
        model = term.screen_model()
        styles = model["styles"]
        assert isinstance(styles, list) and styles[0] == {}
        lines: Any = model["lines"]
        assert [text for text, _ in lines[0]] == ["red", " <b>", "x"], emulator
        assert styles[lines[0][0][1]] == {"fg": 1, "bold": True}
        assert styles[lines[0][2][1]] == {"fg": "#010203", "bg": 4}
        assert styles[lines[1][0][1]] == {"fg": 10}  # bright green: palette 10
        assert lines[2] == [] and lines[3] == []
        assert model["cursor"] == {"row": 1, "col": 2, "visible": False}
        assert (model["rows"], model["cols"]) == (4, 30)


async def test_screen_model_over_the_socket(client: RawClient, daemon: Daemon, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    s = await _spawn(client, ["sh", "-c", "printf '\\033[1;33mhello\\033[0m there'; exec cat"])
    await wait_screen(daemon.app, s["id"], lambda t: "there" in t)
    model = await client.call("session.screen_model", {"id": s["id"]})
    assert model["id"] == s["id"] and model["status"] in ("working", "waiting_input", "idle")
    assert _row_text(model, 0) == "hello there"
    hello_style = model["styles"][model["lines"][0][0][1]]
    assert hello_style == {"fg": 3, "bold": True}
    assert model["cursor"]["row"] == 0 and model["cursor"]["col"] == len("hello there")
    assert model["revision"] > 0
    err = await _error(client, "session.watch_screen", {"id": s["id"], "max_rate": 0})
    assert err["code"] == -32602 and "max_rate" in err["message"]
    err = await _error(client, "session.screen_model", {"id": "s-nosuch"})
    assert err["code"] == -32001


async def test_watch_streams_changes_at_a_bounded_rate_and_ends(
        client: RawClient, daemon: Daemon, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    s = await _spawn(client, ["cat"])
    sid = s["id"]
    watcher = await daemon.connect()
    await watcher.send({"jsonrpc": "2.0", "id": 99, "method": "session.watch_screen",
                        "params": {"id": sid, "max_rate": 5}})
    first = await watcher.next_notification()
    assert first["method"] == "session.screen_model" and first["params"]["frame"] == 0
    # Typed text is echoed by the PTY: the watcher gets a frame showing it, without asking.
    await client.call("session.input", {"id": sid, "text": "<script>x</script>"})
    with trio.fail_after(5):
        while "<script>x</script>" not in _text((frame := await watcher.next_notification())["params"]):
            pass
    assert frame["params"]["revision"] > first["params"]["revision"]
    # A flood is shown at most max_rate frames a second (5/s here), each different from the one before.
    started = trio.current_time()
    for i in range(40):
        await client.call("session.input", {"id": sid, "text": f"line {i}\r"})
    frames = []
    with trio.fail_after(10):
        while "line 39" not in _text(frames[-1]["params"] if frames else {"lines": []}):
            frames.append(await watcher.next_notification())
    elapsed = trio.current_time() - started
    assert len(frames) <= elapsed * 5 + 2, (len(frames), elapsed)
    # Unwatch ends the stream with its answer; nothing more is pushed for the session.
    assert (await client.call("session.unwatch_screen", {"id": sid}))["unwatched"] == 0  # not this connection's
    await watcher.send({"jsonrpc": "2.0", "id": 100, "method": "session.unwatch_screen", "params": {"id": sid}})
    answers: dict[int, Any] = {}
    with trio.fail_after(5):
        while len(answers) < 2:
            msg = await watcher.recv()
            if "id" in msg:
                answers[msg["id"]] = msg["result"]
    assert answers[100]["unwatched"] == 1
    assert answers[99]["ended"] == "unwatched" and answers[99]["frames"] >= 3
    assert daemon.app.sessions.sessions[sid].screen_feeds == []


async def test_watch_ends_after_the_last_frame_when_the_session_exits(
        client: RawClient, daemon: Daemon, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    s = await _spawn(client, ["sh", "-c", "read x; echo bye-$x; exit 0"])
    watcher = await daemon.connect()
    await watcher.send({"jsonrpc": "2.0", "id": 7, "method": "session.watch_screen", "params": {"id": s["id"]}})
    await watcher.next_notification()
    await client.call("session.input", {"id": s["id"], "text": "now\r"})
    last: dict[str, Any] = {}
    with trio.fail_after(10):
        while True:
            msg = await watcher.recv()
            if msg.get("id") == 7:
                assert msg["result"]["ended"] == "exited"
                break
            last = msg["params"]
    assert "bye-now" in _text(last)


async def test_a_watcher_that_goes_away_is_forgotten(client: RawClient, daemon: Daemon, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    s = await _spawn(client, ["cat"])
    live = daemon.app.sessions.sessions[s["id"]]
    watcher = await daemon.connect()
    await watcher.send({"jsonrpc": "2.0", "id": 1, "method": "session.watch_screen", "params": {"id": s["id"]}})
    await watcher.next_notification()
    assert len(live.screen_feeds) == 1
    await watcher.aclose()
    with trio.fail_after(5):
        while live.screen_feeds:
            await trio.sleep(0.01)
