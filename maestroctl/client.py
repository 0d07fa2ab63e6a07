"""A small blocking JSON-RPC client over the Unix socket.

No trio, no cattrs, not even the ``socket`` or ``json`` modules: ``_socket`` and
:mod:`maestroctl.wire` (CPython's C JSON scanner) keep an agent's call at a
couple of milliseconds above bare interpreter start-up.
"""

from __future__ import annotations

import _socket
import os

from maestroctl import wire

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

TOKEN_ENV = "MAESTRO_SESSION_TOKEN"
MAX_LINE = 16 * 1024 * 1024


class DaemonConnectionError(Exception):
    """The call could not complete on the socket (see the two kinds below)."""

    def __init__(self, path: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


class Unreachable(DaemonConnectionError):
    """No daemon answers on the socket: nothing was sent (maestroctl exits 3)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason, f"cannot reach maestrod at {path}: {reason}\n"
                         "start it with `maestrod` (foreground) or `systemctl --user start maestrod`")


class ConnectionLost(DaemonConnectionError):
    """The daemon was reached but the answer did not arrive whole: it closed the connection, or answered a
    line larger than :data:`MAX_LINE` (``too_large``). A request may or may not have run (exit 1)."""

    def __init__(self, path: str, reason: str, too_large: bool = False) -> None:
        super().__init__(path, reason, f"maestrod at {path}: {reason}")
        self.too_large = too_large


class RemoteError(Exception):
    """The daemon answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def remote_error(err: dict[str, Any]) -> RemoteError:
    """The exception for a JSON-RPC ``error`` member."""
    return RemoteError(err.get("code", 0), err.get("message", ""), err.get("data"))


class Client:
    def __init__(self, path: str, token: str | None = None, timeout: float | None = None) -> None:
        self.path = path
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.timeout = timeout
        self._sock: Any = None
        self._buf = bytearray()
        self._next_id = 0
        self._pending_out: list[bytes] = []
        #: Server-pushed notifications that arrived while a call waited for its answer.
        self._notifications: list[dict[str, Any]] = []

    def connect(self) -> None:
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except FileNotFoundError:
            s.close()
            raise Unreachable(self.path, "no such socket") from None
        except ConnectionRefusedError:
            s.close()
            raise Unreachable(self.path, "connection refused (stale socket?)") from None
        except OSError as exc:
            s.close()
            raise Unreachable(self.path, str(exc)) from None
        self._sock = s
        if self.token:
            # Sent as a notification and pipelined with the first call: no extra round trip.
            self._pending_out.append(_line({"jsonrpc": "2.0", "method": "system.auth",
                                            "params": {"token": self.token}}))

    @property
    def sock(self) -> Any:
        """The connected socket (for callers that multiplex it with other fds, like attach)."""
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._buf.clear()  # a partial line of a closed connection means nothing on the next one

    def __enter__(self) -> Client:
        if self._sock is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_timeout(self, timeout: float | None) -> None:
        self.timeout = timeout
        if self._sock is not None:
            self._sock.settimeout(timeout)

    def send_request(self, method: str, params: Any | None = None) -> int:
        if self._sock is None:
            self.connect()
        self._next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self._pending_out.append(_line(msg))
        data = b"".join(self._pending_out)
        self._pending_out.clear()
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise
        except OSError as exc:
            # Connected, then refused what we sent: the daemon closed (or is closing) this connection.
            raise ConnectionLost(self.path, f"the daemon closed the connection ({exc.strerror or exc})") from None
        return self._next_id

    def read_line(self) -> bytes:
        """One raw line from the daemon (TimeoutError if the client timeout passes)."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[: nl + 1])
                del self._buf[: nl + 1]
                return line
            if len(self._buf) > MAX_LINE:
                self.close()  # the rest of that line is still coming: this connection is spent
                raise ConnectionLost(self.path, f"the daemon's answer is larger than {MAX_LINE >> 20} MiB, more "
                                     "than maestroctl reads; ask for less (e.g. --limit)", too_large=True)
            if self._sock is None:
                raise ConnectionLost(self.path, "the connection is closed")
            try:
                chunk = self._sock.recv(262144)
            except TimeoutError:
                raise
            except OSError as exc:
                raise ConnectionLost(self.path, f"the daemon closed the connection ({exc.strerror or exc})") \
                    from None
            if not chunk:
                raise ConnectionLost(self.path, "the daemon closed the connection before answering")
            self._buf += chunk

    def read_message(self) -> dict[str, Any]:
        return wire.loads(self.read_line())  # type: ignore[no-any-return]

    def call_raw(self, method: str, params: Any | None = None) -> tuple[Any, bytes | None]:
        """Like :meth:`call`; also returns the result's JSON bytes as sent when they can be cut out
        without decoding (then the decoded value is None: decode only what you need)."""
        rid = self.send_request(method, params)
        while True:
            line = self.read_line()
            raw = wire.raw_result(line, rid)
            if raw is not None:
                return None, raw
            msg = wire.loads(line)
            if not isinstance(msg, dict):
                continue
            if "method" in msg and "id" not in msg:
                self._notifications.append(msg)  # kept for notifications(), in order
                continue
            if msg.get("id") == rid or ("id" in msg and msg.get("id") is None and "error" in msg):
                if "error" in msg:
                    raise remote_error(msg["error"])
                return msg.get("result"), None

    def call(self, method: str, params: Any | None = None) -> Any:
        """Send one request and return its result (notifications arriving meanwhile are queued)."""
        value, raw = self.call_raw(method, params)
        return wire.loads(raw) if raw is not None else value

    def next_notification(self) -> dict[str, Any]:
        """The next server-pushed notification (queued ones first); ConnectionLost when the connection ends."""
        if self._notifications:
            return self._notifications.pop(0)
        while True:
            msg = self.read_message()
            if isinstance(msg, dict) and "method" in msg and "id" not in msg:
                return msg

    def notifications(self) -> Iterator[dict[str, Any]]:
        """Yield server-pushed notifications (queued ones first) until the connection ends."""
        while True:
            yield self.next_notification()


def _line(obj: Any) -> bytes:
    return wire.dumps(obj).encode() + b"\n"
