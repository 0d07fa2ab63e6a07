"""A small blocking JSON-RPC client over the Unix socket (no trio, no cattrs: start-up is a feature)."""

from __future__ import annotations

import json
import os
import socket

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

TOKEN_ENV = "MAESTRO_SESSION_TOKEN"
MAX_LINE = 16 * 1024 * 1024


class Unreachable(Exception):
    """No daemon answers on the socket."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot reach maestrod at {path}: {reason}\n"
                         "start it with `maestrod` (foreground) or `systemctl --user start maestrod`")
        self.path = path


class RemoteError(Exception):
    """The daemon answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class Client:
    def __init__(self, path: str, token: str | None = None, timeout: float | None = None) -> None:
        self.path = path
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._rfile: Any = None
        self._next_id = 0
        self._pending_out: list[bytes] = []

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except FileNotFoundError:
            s.close()
            raise Unreachable(self.path, "no such socket") from None
        except ConnectionRefusedError:
            s.close()
            raise Unreachable(self.path, "connection refused (stale socket?)") from None
        except (socket.timeout, OSError) as exc:
            s.close()
            raise Unreachable(self.path, str(exc)) from None
        self._sock = s
        self._rfile = s.makefile("rb", buffering=65536)
        if self.token:
            # Sent as a notification and pipelined with the first call: no extra round trip.
            self._pending_out.append(_line({"jsonrpc": "2.0", "method": "system.auth",
                                            "params": {"token": self.token}}))

    def close(self) -> None:
        if self._rfile is not None:
            self._rfile.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = None

    def __enter__(self) -> Client:
        if self._sock is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_request(self, method: str, params: Any | None = None) -> int:
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        self._next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self._pending_out.append(_line(msg))
        data = b"".join(self._pending_out)
        self._pending_out.clear()
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise Unreachable(self.path, f"send failed: {exc}") from None
        return self._next_id

    def read_message(self) -> dict[str, Any]:
        try:
            line = self._rfile.readline(MAX_LINE + 1)
        except socket.timeout:
            raise
        except OSError as exc:
            raise Unreachable(self.path, f"receive failed: {exc}") from None
        if not line:
            raise Unreachable(self.path, "the daemon closed the connection")
        return json.loads(line)  # type: ignore[no-any-return]

    def call(self, method: str, params: Any | None = None) -> Any:
        """Send one request and return its result (notifications arriving meanwhile are skipped)."""
        rid = self.send_request(method, params)
        while True:
            msg = self.read_message()
            if msg.get("id") == rid or ("id" in msg and msg.get("id") is None and "error" in msg):
                if "error" in msg:
                    err = msg["error"]
                    raise RemoteError(err.get("code", 0), err.get("message", ""), err.get("data"))
                return msg.get("result")

    def notifications(self) -> Iterator[dict[str, Any]]:
        """Yield server-pushed notifications until the connection ends."""
        while True:
            msg = self.read_message()
            if "method" in msg and "id" not in msg:
                yield msg


def _line(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
