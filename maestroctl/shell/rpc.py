"""JSON-RPC 2.0 over the daemon's Unix socket on plain asyncio streams (NDJSON, one value per line).

One reader task matches responses to their requests by id and queues notifications (events) in
arrival order; the connection is over when the daemon closes it, and every waiting call fails then.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from maestroctl import wire
from maestroctl.client import TOKEN_ENV, RemoteError, remote_error

#: Lines as long as the daemon may send (its own limit for a request line).
MAX_LINE = 16 * 1024 * 1024


class ConnectionLost(Exception):
    """The daemon closed the connection (or it broke) while a call waited."""


class RpcConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        #: Server-pushed notifications in arrival order; None once the connection is over.
        self.notifications: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop())
        self.closed = False

    @classmethod
    async def open(cls, path: str, timeout: float = 5.0) -> RpcConnection:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path, limit=MAX_LINE), timeout)
        conn = cls(reader, writer)
        token = os.environ.get(TOKEN_ENV)
        if token:  # an agent running the shell acts as itself, as every maestroctl call does
            conn._send({"jsonrpc": "2.0", "method": "system.auth", "params": {"token": token}})
        return conn

    def _send(self, msg: dict[str, Any]) -> None:
        if self.closed:
            raise ConnectionLost("the connection to maestrod is closed")
        self._writer.write(wire.dumps(msg).encode() + b"\n")

    async def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
        """The result of one request; RemoteError for a JSON-RPC error, ConnectionLost if the daemon went."""
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        try:
            self._send(msg)
            await self._writer.drain()
            return await asyncio.wait_for(fut, timeout)
        except (ConnectionError, OSError) as exc:
            raise ConnectionLost(str(exc)) from None
        finally:
            self._waiting.pop(rid, None)

    async def _read_loop(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line.endswith(b"\n"):
                    break  # EOF (or a partial line at EOF)
                msg = wire.loads(line)
                if not isinstance(msg, dict):
                    continue
                if "method" in msg and "id" not in msg:
                    self.notifications.put_nowait(msg)
                    continue
                fut = self._waiting.get(msg.get("id"))  # type: ignore[arg-type]
                if fut is None or fut.done():
                    continue
                if "error" in msg:
                    fut.set_exception(remote_error(msg["error"]))
                else:
                    fut.set_result(msg.get("result"))
        except (ConnectionError, OSError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            self.closed = True
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionLost("maestrod closed the connection"))
            self.notifications.put_nowait(None)

    async def aclose(self) -> None:
        self.closed = True
        self._reader_task.cancel()
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        try:
            await self._reader_task
        except asyncio.CancelledError:
            pass


__all__ = ["ConnectionLost", "RemoteError", "RpcConnection"]
