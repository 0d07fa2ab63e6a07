"""The web feed: a small HTTP front (h11) on 127.0.0.1 serving the dashboard page at ``/`` and, at
``/rpc``, the daemon's JSON-RPC over a WebSocket (trio-websocket), token-checked (docs/web.md).

trio-websocket's own server cannot answer a plain GET, so h11 reads every request head first (bounded
in size and time); a ``/rpc`` request that passes the gate is handed to trio-websocket with the head
bytes replayed in front of the stream, so wsproto sees the handshake exactly as the client sent it.
Each WebSocket then runs the socket's own :class:`~maestrod.connection.Connection` (through
:class:`~maestrod.web.transport.WebSocketStream`), with the peer pid found through ``/proc/net/tcp``:
an agent that presents the token is still judged as that agent.
"""

from __future__ import annotations

import logging
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import h11
import trio
from trio_websocket import wrap_server_stream

from maestrod.connection import Connection
from maestrod.private_files import write_private
from maestrod.web import gate, tcp_peer
from maestrod.web.endpoint import WebEndpoint
from maestrod.web.transport import WebSocketStream
from shared import jsonrpc

if TYPE_CHECKING:
    from maestrod.app import App

log = logging.getLogger("maestrod.web")

#: The dashboard page (one self-contained file, read at every request).
PAGE = Path(__file__).resolve().parent / "static" / "index.html"
#: A request head larger than this is answered 431 and dropped.
MAX_HEAD = 16 * 1024
#: A client has this long to send its request head (and to complete the WebSocket handshake) ...
HEAD_TIMEOUT = 10.0
#: ... and we give up sending a page or an error to a client that does not read after this long.
SEND_TIMEOUT = 10.0
#: Finding the peer's pid walks /proc; bounded like everything else a client can cause.
IDENTIFY_TIMEOUT = 5.0
READ_CHUNK = 64 * 1024
#: After an error answer: how long, and how much, to read what the client still sends (see _linger).
LINGER_SECONDS = 1.0
LINGER_BYTES = 256 * 1024
#: Messages queued between trio-websocket's reader and the connection (each up to MAX_LINE).
MESSAGE_QUEUE = 4

_STATUS_TEXT = {400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
                408: b"Request Timeout", 431: b"Request Header Fields Too Large", 500: b"Internal Server Error"}


def bind_loopback(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (never another interface). Raises OSError (port taken...)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Lets a restarted daemon take its port back from connections in TIME_WAIT; on Linux it does
        # not let two listeners share a port, so a port in use is still refused.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def endpoint_files(socket_path: Path) -> tuple[Path, Path]:
    """The port and token files: next to the socket, named after it (``maestrod.web-port``, ...)."""
    stem = socket_path.stem
    return socket_path.with_name(f"{stem}.web-port"), socket_path.with_name(f"{stem}.web-token")


class ReplayStream(trio.abc.Stream):
    """A stream that first returns bytes already read from it (the request head h11 looked at)."""

    def __init__(self, stream: trio.SocketStream, prefix: bytes) -> None:
        self.stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            n = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            return data
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()


class WebFeed:
    """One listener on 127.0.0.1:``port``; started in the server's nursery by ``maestrod.main``."""

    def __init__(self, app: App, port: int, page: Path = PAGE, *, token: str | None = None) -> None:
        self.app = app
        self.port = port
        #: The token to check (a graceful restart keeps its predecessor's, so open pages reconnect);
        #: None: a new one.
        self.token = token
        self.page = page
        #: Set once listening: the port and token this feed checks against (also published as ``app.web``).
        self.endpoint: WebEndpoint | None = None
        #: Whether /proc can name a TCP peer's process (Linux); elsewhere WebSocket peers have no pid.
        self.proc_net = Path("/proc/net/tcp").exists()

    async def run(self, task_status: trio.TaskStatus[WebEndpoint | None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled. A port that cannot be had is logged and the daemon runs without
        the web feed (``started(None)``): the socket is the daemon's real interface, the page a view."""
        try:
            sock = bind_loopback(self.port)
        except OSError as exc:
            log.warning("web feed off: cannot listen on 127.0.0.1:%d (%s); the daemon runs without it "
                        "(set [web] port, or port = 0 for any free one)", self.port, exc.strerror or exc)
            task_status.started(None)
            return
        endpoint = WebEndpoint(port=sock.getsockname()[1], token=self.token or secrets.token_urlsafe(32))
        port_file, token_file = endpoint_files(self.app.socket_path)
        try:
            write_private(token_file, f"{endpoint.token}\n".encode())
            write_private(port_file, f"{endpoint.port}\n".encode())
        except OSError as exc:
            sock.close()
            log.warning("web feed off: cannot write %s (%s)", token_file, exc)
            task_status.started(None)
            return
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        self.endpoint = endpoint
        self.app.web = endpoint
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._handle, [listener])
                log.info("web feed on %s (WebSocket %s; token in %s)", endpoint.url, endpoint.rpc_url,
                         token_file)
                task_status.started(endpoint)
        finally:
            self.app.web = None
            for path in (port_file, token_file):
                try:
                    path.unlink()
                except OSError:
                    pass

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            await self._serve_one(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        except Exception:
            # A client's mistake (or a broken socket) must never take the feed down.
            log.exception("web connection failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _serve_one(self, stream: trio.SocketStream) -> None:
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        head = bytearray()
        request: h11.Request | None = None
        with trio.move_on_after(HEAD_TIMEOUT) as timer:
            try:
                request = await self._read_head(stream, http, head)
            except h11.RemoteProtocolError as exc:
                await self._refuse(stream, http, gate.Refuse(exc.error_status_hint, "bad request"))
                return
        if timer.cancelled_caught:
            await self._refuse(stream, http, gate.Refuse(408, "the request head took too long"))
            return
        if request is None:
            return
        endpoint = self.endpoint
        assert endpoint is not None  # connections are only accepted once it is set
        decision = gate.decide(request.method, request.target, request.headers, port=endpoint.port,
                               token=endpoint.token)
        if isinstance(decision, gate.Refuse):
            log.info("web: refused %s %s: %d %s", request.method.decode("latin-1"),
                     request.target.split(b"?")[0].decode("latin-1")[:200], decision.status,
                     decision.reason)
            await self._refuse(stream, http, decision)
            return
        if isinstance(decision, gate.Page):
            await self._serve_page(stream, http, request, endpoint)
            return
        await self._serve_rpc(stream, http, bytes(head))

    async def _read_head(self, stream: trio.SocketStream, http: h11.Connection,
                         head: bytearray) -> h11.Request | None:
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                # Never more than one byte past the bound: h11 then refuses the head as too large (431),
                # whether it came in one read or many.
                data = await stream.receive_some(max(1, MAX_HEAD + 1 - len(head)))
                head += data
                http.receive_data(data)  # b"" is EOF
                continue
            if isinstance(event, h11.Request):
                return event
            return None  # ConnectionClosed: the client left before asking anything

    async def _send(self, stream: trio.SocketStream, data: bytes) -> None:
        with trio.move_on_after(SEND_TIMEOUT):
            await stream.send_all(data)

    async def _refuse(self, stream: trio.SocketStream, http: h11.Connection, refusal: gate.Refuse) -> None:
        body = refusal.reason.encode() + b"\n"
        try:
            data = http.send(h11.Response(status_code=refusal.status, reason=_STATUS_TEXT.get(refusal.status, b""),
                                          headers=[(b"content-type", b"text/plain; charset=utf-8"),
                                                   (b"content-length", str(len(body)).encode()),
                                                   (b"connection", b"close"),
                                                   (b"cache-control", b"no-store")]))
            data = (data or b"") + (http.send(h11.Data(data=body)) or b"")
            data += http.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            return  # h11 cannot answer in this state (e.g. the client already closed)
        await self._send(stream, data)
        await self._linger(stream)

    async def _linger(self, stream: trio.SocketStream) -> None:
        """Close our side, then read (and drop) what the client still sends, briefly: closing a socket
        with unread input resets the connection, and the client may lose the answer it was sent."""
        with trio.move_on_after(LINGER_SECONDS):
            await stream.send_eof()
            drained = 0
            while drained < LINGER_BYTES:
                chunk = await stream.receive_some(READ_CHUNK)
                if not chunk:
                    break
                drained += len(chunk)

    async def _serve_page(self, stream: trio.SocketStream, http: h11.Connection, request: h11.Request,
                          endpoint: WebEndpoint) -> None:
        try:
            page = await trio.Path(self.page).read_bytes()
        except OSError as exc:
            log.error("web: cannot read the dashboard page %s: %s", self.page, exc)
            await self._refuse(stream, http, gate.Refuse(500, "the dashboard page is missing"))
            return
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(page)).encode()),
            (b"content-security-policy", gate.content_security_policy(page, endpoint.port).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cache-control", b"no-store"),
            (b"connection", b"close"),
        ]
        data = http.send(h11.Response(status_code=200, reason=b"OK", headers=headers)) or b""
        if request.method != b"HEAD":
            data += http.send(h11.Data(data=page)) or b""
        data += http.send(h11.EndOfMessage()) or b""
        await self._send(stream, data)

    async def _identify(self, stream: trio.SocketStream) -> tuple[bool, int | None]:
        """(allowed, peer pid). Only this uid's processes may connect, as on the Unix socket."""
        if not self.proc_net:
            return True, None
        peer, ours = stream.socket.getpeername(), stream.socket.getsockname()
        found: tcp_peer.PeerProcess | None = None
        with trio.move_on_after(IDENTIFY_TIMEOUT):
            found = await trio.to_thread.run_sync(tcp_peer.peer_process, (peer[0], peer[1]),
                                                  (ours[0], ours[1]), abandon_on_cancel=True)
        if found is None:
            log.warning("web: refused a WebSocket from %s:%d: its process could not be found in /proc",
                        peer[0], peer[1])
            return False, None
        if found.uid != self.app.allowed_uid:
            log.warning("web: refused a WebSocket from uid %d (pid %d): only uid %d may connect",
                        found.uid, found.pid, self.app.allowed_uid)
            return False, found.pid
        return True, found.pid

    async def _serve_rpc(self, stream: trio.SocketStream, http: h11.Connection, head: bytes) -> None:
        allowed, pid = await self._identify(stream)
        if not allowed:
            await self._refuse(stream, http, gate.Refuse(403, "this connection's process may not connect"))
            return
        async with trio.open_nursery() as nursery:
            ws_stream: WebSocketStream | None = None
            with trio.move_on_after(HEAD_TIMEOUT):
                request = await wrap_server_stream(nursery, ReplayStream(stream, head),
                                                   message_queue_size=MESSAGE_QUEUE,
                                                   max_message_size=jsonrpc.MAX_LINE,
                                                   receive_buffer_size=READ_CHUNK)
                ws_stream = WebSocketStream(await request.accept())
            if ws_stream is None:  # wsproto refused the handshake (it answered 400) or it stalled
                nursery.cancel_scope.cancel()
                return
            conn = Connection(self.app, ws_stream, pid)
            # The same rule as the Unix socket (maestrod/identity.py): a process inside an agent's tree is
            # that agent, whatever token it presents; decided once, at connect time.
            conn.session_id = self.app.identity.bind(conn.extras, pid)
            try:
                await conn.serve()
            finally:
                nursery.cancel_scope.cancel()
