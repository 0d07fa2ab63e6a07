"""A WebSocket seen as the byte stream :class:`maestrod.connection.Connection` reads NDJSON from.

The connection's request handling (dispatch, batches, ordering, subscriptions, backpressure, EOF) is
the socket's, unchanged: this adapter only translates framing. Each text (or binary) message in is one
JSON value, given to the connection as one line; each line the connection writes goes out as one text
message. Compact JSON never holds a raw newline, so splitting its output on newlines is exact.

A message may itself contain newlines (pretty-printed JSON). Outside strings they are whitespace; inside
strings they are not valid JSON at all. So a message that parses is passed on with its newlines turned
into spaces (same meaning), and one that does not with them turned into ``\\x01`` (still invalid): the
connection answers it with the same parse error the socket would, and one message never becomes two.
"""

from __future__ import annotations

import json

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

#: How long closing waits for the client's close frame before dropping the TCP connection.
CLOSE_TIMEOUT = 2.0


def as_line(message: str | bytes) -> bytes:
    """One WebSocket message -> one NDJSON line (newline-terminated)."""
    data = message.encode("utf-8", "surrogatepass") if isinstance(message, str) else message
    if b"\n" in data or b"\r" in data:
        try:
            json.loads(data)
            valid = True
        except (ValueError, RecursionError):
            valid = False
        filler = b" " if valid else b"\x01"
        data = data.replace(b"\r", filler).replace(b"\n", filler)
    return data + b"\n"


class WebSocketStream(trio.abc.Stream):
    """``receive_some``/``send_all`` over a :class:`trio_websocket.WebSocketConnection`."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._pending = b""

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._pending:
            try:
                message = await self.ws.get_message()
            except ConnectionClosed:
                return b""  # the client closed (or we did): EOF, as a socket would say
            self._pending = as_line(message)
        if max_bytes is None or max_bytes >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        for line in bytes(data).split(b"\n"):
            if not line:
                continue
            try:
                await self.ws.send_message(line.decode("utf-8"))
            except ConnectionClosed:
                raise trio.BrokenResourceError("the WebSocket is closed") from None

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        # A client that never answers the close frame must not hold the daemon: the TCP stream is
        # closed either way (trio-websocket closes it when its close is cancelled).
        with trio.move_on_after(CLOSE_TIMEOUT):
            await self.ws.aclose()
