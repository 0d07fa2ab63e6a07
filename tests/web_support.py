"""Helpers for the web feed tests: the feed beside an in-process daemon, a WebSocket JSON-RPC client
(trio-websocket's own client), and raw HTTP requests."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionRejected, WebSocketConnection, open_websocket_url, wrap_client_stream

from maestrod.web.endpoint import WebEndpoint
from maestrod.web.feed import WebFeed
from tests.conftest import Daemon, RawClient


async def start_feed(nursery: trio.Nursery, daemon: Daemon) -> WebEndpoint:
    endpoint = await nursery.start(WebFeed(daemon.app, 0).run)
    assert endpoint is not None
    return endpoint  # type: ignore[no-any-return]


class WsClient(RawClient):
    """JSON-RPC over a WebSocket: one JSON value per text message. The request/response/notification logic
    is the socket client's; only the transport differs."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []

    async def send(self, obj: Any) -> None:
        await self.ws.send_message(json.dumps(obj))

    async def recv(self) -> Any:
        return json.loads(await self.ws.get_message())

    async def aclose(self) -> None:
        await self.ws.aclose()


@asynccontextmanager
async def ws_client(endpoint: WebEndpoint, *, token: str | None = None,
                    origin: str | None = None) -> AsyncIterator[WsClient]:
    url = endpoint.rpc_url + f"?token={endpoint.token if token is None else token}"
    headers = [(b"Origin", origin.encode())] if origin is not None else None
    async with open_websocket_url(url, extra_headers=headers, connect_timeout=10,
                                  disconnect_timeout=5) as ws:
        yield WsClient(ws)


async def ws_rejected(endpoint: WebEndpoint, *, token: str | None = None,
                      origin: str | None = None) -> ConnectionRejected:
    """Open a WebSocket that must be refused: the refusal (status, body).

    trio-websocket's ``open_websocket_url`` leaves its socket open when the handshake is rejected, so the
    client here wraps a stream the test owns and closes."""
    resource = f"/rpc?token={endpoint.token if token is None else token}"
    headers = [(b"Origin", origin.encode())] if origin is not None else None
    stream = await trio.open_tcp_stream("127.0.0.1", endpoint.port)
    rejected: list[ConnectionRejected] = []
    async with stream:
        with trio.fail_after(10):
            try:
                async with trio.open_nursery() as nursery:
                    await wrap_client_stream(nursery, stream, f"127.0.0.1:{endpoint.port}", resource,
                                             extra_headers=headers)
                    nursery.cancel_scope.cancel()
            except* ConnectionRejected as group:
                rejected.extend(e for e in group.exceptions if isinstance(e, ConnectionRejected))
    assert rejected, "the WebSocket was accepted"
    return rejected[0]


async def http_request(port: int, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes: (status, headers lower-cased, body)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head)
        data = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                data += chunk
    header_block, _, body = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def get(path: str, port: int, *extra: str, host: str | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
