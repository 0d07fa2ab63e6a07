"""Shared fixtures: an in-process daemon on a real Unix socket, and a raw NDJSON client."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from maestrod.app import App
from maestrod.server import serve
from maestrod.service import bind_unix

REPO = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temp dir: Unix socket paths must stay under 108 bytes."""
    d = Path(tempfile.mkdtemp(prefix="mt-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class RawClient:
    """A trio NDJSON client that exposes everything: responses, notifications, raw bytes."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""
        self.ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send(self, obj: Any) -> None:
        await self.send_raw(json.dumps(obj).encode() + b"\n")

    async def recv(self) -> Any:
        """The next line, decoded; raises EOFError when the server closed."""
        while b"\n" not in self.buf:
            chunk = await self.stream.receive_some(1 << 20)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    async def recv_response(self) -> Any:
        while True:
            msg = await self.recv()
            if isinstance(msg, dict) and "method" in msg and "id" not in msg:
                self.notifications.append(msg)
                continue
            return msg

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        rid = next(self.ids)
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        await self.send(msg)
        resp = await self.recv_response()
        assert resp.get("id") == rid, resp
        return resp  # type: ignore[no-any-return]

    async def call(self, method: str, params: Any = None) -> Any:
        resp = await self.request(method, params)
        if "error" in resp:
            raise AssertionError(f"{method} failed: {resp['error']}")
        return resp["result"]

    async def next_notification(self) -> dict[str, Any]:
        if self.notifications:
            return self.notifications.pop(0)
        while True:
            msg = await self.recv()
            if "method" in msg and "id" not in msg:
                return msg  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.stream.aclose()


class Daemon:
    def __init__(self, app: App, socket_path: Path) -> None:
        self.app = app
        self.socket_path = socket_path
        self._clients: list[RawClient] = []

    async def connect(self) -> RawClient:
        stream = await trio.open_unix_socket(str(self.socket_path))
        client = RawClient(stream)
        self._clients.append(client)
        return client


@pytest.fixture
async def daemon(nursery: trio.Nursery, short_tmp: Path) -> AsyncIterator[Daemon]:
    sock = short_tmp / "d.sock"
    app = App(short_tmp / "data", sock)
    await nursery.start(serve, app, [bind_unix(sock)])
    d = Daemon(app, sock)
    yield d
    for c in d._clients:
        await c.aclose()
    app.close()


@pytest.fixture
async def client(daemon: Daemon) -> RawClient:
    return await daemon.connect()


def maestroctl_env(socket_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    env["MAESTRO_SOCKET"] = str(socket_path)
    env.update(extra)
    return env
