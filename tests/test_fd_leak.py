"""A subscriber that goes away is dropped at once (its socket closed, its subscription gone), whatever
its topics: not at the next matching event, which for an unused topic never comes.

The daemon runs in this process (the ``daemon`` fixture), so its open descriptors are this process's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from maestrod import connection
from maestrod.app import App
from tests.conftest import Daemon, RawClient

UNUSED: dict[str, object] = {"topics": ["no.such.topic."]}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def subscribers(app: App) -> int:
    return len(app.bus._subs)


async def until(condition: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (bounded) for ``check()`` to hold."""
    with trio.move_on_after(timeout):
        while not check():
            await trio.sleep(0.01)
    assert check(), f"still not {condition} after {timeout} s"


async def subscribe_and_abandon(daemon: Daemon, params: dict[str, object]) -> None:
    stream = await trio.open_unix_socket(str(daemon.socket_path))
    client = RawClient(stream)
    await client.call("events.subscribe", params)
    await stream.aclose()


async def test_abandoned_subscribers_leave_no_descriptor(daemon: Daemon) -> None:
    app = daemon.app
    start = open_fds()
    assert subscribers(app) == 0
    for i in range(200):
        # Unused topics mostly; a few "everything" and re-subscribed ones too.
        await subscribe_and_abandon(daemon, UNUSED if i % 10 else {"topics": []})
    await until("all dropped", lambda: subscribers(app) == 0 and open_fds() <= start + 10)


async def test_a_subscriber_that_subscribed_twice_and_closed_is_dropped(daemon: Daemon) -> None:
    app = daemon.app
    start = open_fds()
    client = await daemon.connect()
    await client.call("events.subscribe", UNUSED)
    await client.call("events.subscribe", {"topics": ["also.unused."]})
    assert subscribers(app) == 1
    await client.aclose()
    await until("dropped", lambda: subscribers(app) == 0 and open_fds() <= start)


@pytest.fixture(params=["epoll", "polling"])
def wakeup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the daemon learns that a half-closed client closed: epoll (Linux), else by looking now and then."""
    if request.param == "polling":
        monkeypatch.setattr(connection, "_EPOLL", None)
        monkeypatch.setattr(connection, "GONE_POLL_INTERVAL", 0.02)
    return str(request.param)


async def test_half_closed_subscriber_is_dropped_when_it_closes(daemon: Daemon, short_tmp: Path,
                                                                wakeup: str) -> None:
    """`socat -t`: after EOF it still gets events; once it closes for good it is dropped, with no event."""
    app = daemon.app
    start = open_fds()
    sub = await daemon.connect()
    await sub.send({"jsonrpc": "2.0", "id": 1, "method": "events.subscribe", "params": {"topics": ["project."]}})
    await sub.stream.send_eof()
    assert (await sub.recv())["id"] == 1
    other = await daemon.connect()
    await other.call("project.create", {"name": "hc", "dir": str(short_tmp)})
    assert (await sub.next_notification())["params"]["topic"] == "project.created"
    assert subscribers(app) == 1
    await other.aclose()
    await sub.aclose()
    await until("dropped", lambda: subscribers(app) == 0 and open_fds() <= start)


async def test_a_subscriber_that_vanishes_without_eof_is_dropped(daemon: Daemon) -> None:
    """Closed with unread data in the daemon's direction (an RST rather than a clean EOF)."""
    app = daemon.app
    start = open_fds()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(daemon.socket_path))
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    client = RawClient(stream)
    await client.call("events.subscribe", UNUSED)
    await client.send({"jsonrpc": "2.0", "id": 9, "method": "system.ping"})
    await stream.aclose()  # the answer to the ping is never read
    await until("dropped", lambda: subscribers(app) == 0 and open_fds() <= start)
