"""One client connection: read NDJSON requests, answer in order, push events."""

from __future__ import annotations

import contextlib
import logging
import select
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
import trio

from maestrod.dispatch import Context, call
from shared import errors, jsonrpc
from shared.messages.events import DROPPED, Dropped
from shared.methods import CATALOGUE

#: Long polls (waits, attach) run beside later requests; looked up once per message.
_CONCURRENT = frozenset(name for name, spec in CATALOGUE.items() if spec.concurrent)
#: The long waits: on shutdown they end at once with -32006 (``data.retry``: nothing was done, send it again
#: once the daemon is back), instead of leaving their client without an answer.
_WAITS = frozenset({"mail.wait", "session.wait"})

if TYPE_CHECKING:
    from maestrod.app import App
    from maestrod.events import Subscription

log = logging.getLogger("maestrod.connection")

# Below glibc's mmap threshold (128 KiB): a larger recv buffer costs an mmap+munmap per read,
# which measured ~20 us per request.
READ_CHUNK = 64 * 1024

#: How long a dropped subscriber's ``events.dropped`` line may take to be written (it fits at once when the
#: pusher could pace the socket; otherwise the connection is closed without it).
DROPPED_NOTICE_GRACE = 0.5

#: Linux's epoll, which tells when a half-closed client closes for good; None elsewhere.
_EPOLL = getattr(select, "epoll", None)
#: Without it, how often to look.
GONE_POLL_INTERVAL = 1.0


class Connection:
    """Requests are answered in the order they arrive, except methods marked
    ``concurrent`` (long polls), which run beside later requests: a client can
    subscribe, then act, and be sure the subscription is live first.
    """

    def __init__(self, app: App, stream: trio.abc.Stream, peer_pid: int | None = None) -> None:
        self.app = app
        self.stream = stream
        self.peer_pid = peer_pid
        self.session_id: str | None = None
        self.auth_error: str | None = None
        self.subscription: Subscription | None = None
        self._send_lock = trio.Lock()
        self._nursery: trio.Nursery | None = None
        self._cancel = trio.CancelScope()
        self._pusher_done = trio.Event()
        self._pusher_scope = trio.CancelScope()
        #: A pusher's write was cut mid-line: nothing more may be written on this connection.
        self._cut = False
        self.closed = False
        #: Per-connection state that handler groups attach (e.g. attach streams).
        self.extras: dict[str, Any] = {}
        #: Run when the read loop sees EOF (see :meth:`add_eof_callback`).
        self._eof_callbacks: list[Callable[[], None]] = []
        #: The read loop has seen EOF: the client will send nothing more.
        self.eof = False

    def context(self) -> Context:
        return Context(self.app, self, self.session_id)

    async def send(self, data: bytes) -> None:
        # Uncontended (the common case): take the lock without a scheduler round trip;
        # `async with lock` always yields, which measured ~15 us per response.
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._send_lock.acquire()
        try:
            await self.stream.send_all(data)
        finally:
            self._send_lock.release()

    async def notify(self, method: str, params: Any) -> None:
        await self.send(jsonrpc.encode(jsonrpc.notification(method, params)))

    def close_soon(self) -> None:
        """Drop the connection (used when a subscriber overflows)."""
        self.closed = True
        self._cancel.cancel()

    def add_eof_callback(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn()`` when the read loop sees EOF (at once if it already has); returns a remover.

        Long requests (attach, waits) use it to end promptly when their client goes away, instead
        of noticing only at their next write or heartbeat.
        """
        if self.eof:
            fn()
            return lambda: None
        self._eof_callbacks.append(fn)

        def remove() -> None:
            if fn in self._eof_callbacks:
                self._eof_callbacks.remove(fn)

        return remove

    def peer_gone(self) -> bool:
        """True once the client has closed its end for good (or died), not merely half-closed.

        After EOF a client that only shut down its sending side (``socat -t``) still reads the
        answers; one that closed the socket reports POLLHUP on our side.
        """
        if self.closed:
            return True
        sock = getattr(self.stream, "socket", None)
        if sock is None:
            return self.eof
        try:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN | select.POLLHUP)
            ready = poller.poll(0)
        except (OSError, ValueError, AttributeError):
            return self.eof
        return any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _fd, mask in ready)

    async def wait_gone(self) -> None:
        """Return once :meth:`peer_gone` (call it after EOF: before, the client may still be there)."""
        if self.peer_gone():
            return
        sock = getattr(self.stream, "socket", None)
        if sock is not None and _EPOLL is not None:
            # Linux: an epoll set holding only the socket, with no events asked for, is readable exactly
            # when the socket reports EPOLLHUP or EPOLLERR (always reported); trio waits on the set.
            with _EPOLL() as ep:
                try:
                    ep.register(sock.fileno(), 0)
                except (OSError, ValueError):
                    return
                try:
                    while not self.peer_gone():
                        await trio.lowlevel.wait_readable(ep.fileno())
                finally:
                    trio.lowlevel.notify_closing(ep.fileno())
            return
        while not self.peer_gone():
            await trio.sleep(GONE_POLL_INTERVAL)

    @contextlib.contextmanager
    def cancel_when_gone(self) -> Iterator[trio.CancelScope]:
        """A cancel scope for a long request, cancelled as soon as its client is gone (EOF and
        :meth:`peer_gone`); a client that only half-closed still gets its answer."""
        scope = trio.CancelScope()

        def check() -> None:
            if self.peer_gone():
                scope.cancel()

        remove = self.add_eof_callback(check)
        try:
            with scope:
                yield scope
        finally:
            remove()

    def _run_eof_callbacks(self) -> None:
        self.eof = True
        for fn in list(self._eof_callbacks):
            try:
                fn()
            except Exception:
                log.exception("connection EOF hook failed")

    @property
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None
        return self._nursery

    async def serve(self) -> None:
        self.app.connections.open += 1
        try:
            await self._serve()
        finally:
            self.app.connections.open -= 1

    async def _serve(self) -> None:
        with self._cancel:
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await self._read_loop()
                    # EOF: requests in flight finish (nursery join). A subscriber that half-closed
                    # (`socat -t`) keeps receiving events until it goes away.
                    if self.subscription is not None:
                        await self._push_until_gone()
            except* (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        self.closed = True
        if self.subscription is not None:
            self.app.bus.unsubscribe(self.subscription)
        try:
            await self.stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async def _read_loop(self) -> None:
        proto = jsonrpc.ServerConnection(self.app.config.connections.line_max_bytes)
        budget = self.app.connections.input
        held = 0  # this connection's share of the budget: the bytes its unfinished line holds
        try:
            while True:
                event = proto.next_event()
                if isinstance(event, jsonrpc.NeedData):
                    partial = proto.buffered
                    if partial > budget.refuse_above and budget.total - held + partial > budget.limit:
                        log.warning("refusing a %d-byte line: input buffered across connections is over "
                                    "the %d-byte bound", partial, budget.limit)
                        proto.refuse_partial(budget.refusal())
                        budget.total -= held
                        held = 0
                        continue  # the refusal is the next event
                    budget.total += partial - held
                    held = partial
                    try:
                        data = await self.stream.receive_some(READ_CHUNK)
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        data = b""
                    proto.receive_data(data)
                    continue
                if isinstance(event, jsonrpc.Closed):
                    self._run_eof_callbacks()
                    return
                if isinstance(event, jsonrpc.Fatal):
                    log.warning("closing connection: %s", event.response["error"]["message"])
                    await self.send(jsonrpc.encode(event.response))
                    # Cancel concurrent requests too: the stream is no longer trustworthy.
                    self.nursery.cancel_scope.cancel()
                    return
                assert isinstance(event, jsonrpc.Message)
                if any(isinstance(i, jsonrpc.Request) and i.method in _CONCURRENT
                       for i in event.items):
                    self.nursery.start_soon(self._answer, event)
                else:
                    with self.app.connections.answering_request():
                        await self._answer(event)
        finally:
            budget.total -= held

    async def _answer(self, message: jsonrpc.Message) -> None:
        if any(isinstance(i, jsonrpc.Request) and i.method in _WAITS for i in message.items):
            # Counted until the answer is sent: a stopping daemon lets these answers out first.
            with self.app.connections.waiting_answer():
                await self._answer_now(message)
        else:
            await self._answer_now(message)

    async def _answer_now(self, message: jsonrpc.Message) -> None:
        responses: list[dict[str, Any] | None] = []
        for item in message.items:
            if isinstance(item, jsonrpc.Rejected):
                responses.append(item.response)
            elif item.method in _WAITS:
                responses.append(await self._wait_unless_shutdown(item))
            else:
                responses.append(await call(self.context(), item))
        try:
            data = jsonrpc.response_for_batch(responses, message.batch)
        except TypeError:
            # A handler returned something JSON cannot carry: answer with -32603 per item.
            log.exception("unserialisable result")
            responses = [r if r is None or _encodable(r) else jsonrpc.error_response(
                r.get("id"), errors.INTERNAL_ERROR, "Internal error (unserialisable result; see the daemon log)")
                for r in responses]
            data = jsonrpc.response_for_batch(responses, message.batch)
        if data is not None:
            await self.send(data)

    async def _wait_unless_shutdown(self, item: jsonrpc.Request) -> dict[str, Any] | None:
        """A long wait that the daemon's shutdown ends with -32006 ``{retry: true}`` before it did anything
        (mail.wait marks mail read only once it returns, in the same step as its answer)."""
        response: dict[str, Any] | None = None
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as waiting:
                async def end_on_shutdown() -> None:
                    await self.app.shutting_down.wait()
                    waiting.cancel()

                nursery.start_soon(end_on_shutdown)
                response = await call(self.context(), item)
            nursery.cancel_scope.cancel()
        if waiting.cancelled_caught and response is None and not item.is_notification:
            return jsonrpc.error_response(item.id, errors.UNAVAILABLE,
                                          f"maestrod is shutting down: {item.method} ended before anything "
                                          "was done; retry once it is back", {"retry": True})
        return response

    def start_pusher(self, sub: Subscription) -> None:
        # Each pusher has its own: one replaced by a new subscription ends (its outbox closed) on its own.
        self._pusher_done = done = trio.Event()
        self._pusher_scope = scope = trio.CancelScope()
        self.nursery.start_soon(self._push, sub, scope, done)

    async def _push(self, sub: Subscription, scope: trio.CancelScope, done: trio.Event) -> None:
        """Drain the subscriber's outbox into the connection, a batch of whole lines at a time, until it is
        closed (unsubscribed: quietly) or dropped (told, then the connection is closed)."""
        try:
            with scope:
                sock = getattr(self.stream, "socket", None)
                chunk = _push_chunk(sock)
                while True:
                    await sub.wait()
                    if sub.closed:
                        return
                    if sub.dropped or not await self._push_batch(sub, sock, chunk):
                        break
                await self._tell_dropped(sub)
        finally:
            done.set()

    async def _push_batch(self, sub: Subscription, sock: Any, chunk: int) -> bool:
        """Write one batch of pending lines; False when the subscriber was dropped (or closed) instead.

        On a socket it writes only when the kernel's send buffer is at most a quarter full (poll's
        "writable" for a Unix stream), and at most a quarter of it at once: room for the final
        ``events.dropped`` line always remains, even when the client has not read for a long time.
        The send lock is held throughout, so responses and events never interleave mid-line.
        """
        deadline = sub.stall_deadline()
        with trio.CancelScope(deadline=deadline) as waiting:
            sub.wait_scope = waiting
            await self._send_lock.acquire()
        if waiting.cancelled_caught:
            sub.drop("stalled")  # no-op when dropped or closed already
            return False
        try:
            if sock is not None:
                with trio.CancelScope(deadline=deadline) as waiting:
                    sub.wait_scope = waiting
                    await sock.wait_writable()
                if waiting.cancelled_caught or sub.dropped or sub.closed:
                    sub.drop("stalled")
                    return False
            sub.wait_scope = None
            data, last = sub.take(chunk)
            if not data:
                return True
            with trio.CancelScope(deadline=deadline) as sending:
                await self.stream.send_all(data)
            if sending.cancelled_caught:
                # Cut mid-line (no socket to pace, or one line larger than the room): nothing more can be
                # written on this connection, not even the notice.
                sub.drop("stalled")
                self._cut = True
                return False
            sub.sent(last, trio.current_time())
            return True
        finally:
            sub.wait_scope = None
            self._send_lock.release()

    async def _tell_dropped(self, sub: Subscription) -> None:
        """Send ``events.dropped`` if the connection takes it at once, then close the connection."""
        if sub.closed:
            return
        if sub.dropped == "stalled":
            why = f"the connection took no output for {sub.stall_seconds:g} s"
        else:
            why = f"more than {sub.max_bytes} bytes of output were waiting for the client"
        log.warning("dropping a subscriber: %s (%d bytes discarded; resumes after seq %d)",
                    why, sub.dropped_bytes, sub.since)
        if not self._cut:
            notice = Dropped("stalled" if sub.dropped == "stalled" else "behind", sub.since, sub.dropped_bytes,
                             f"subscriber dropped: {why}; reconnect, events.subscribe, then "
                             f"events.replay since {sub.since}")
            with trio.move_on_after(DROPPED_NOTICE_GRACE):
                await self.notify(DROPPED, attrs.asdict(notice))
        self.close_soon()

    async def _push_until_gone(self) -> None:
        """After EOF on a subscriber's connection: push until the client is gone for good, then stop at
        once -- not at the next matching event, which for an unused topic never comes."""
        async with trio.open_nursery() as nursery:
            async def stop_when_gone() -> None:
                await self.wait_gone()
                self._pusher_scope.cancel()

            nursery.start_soon(stop_when_gone)
            await self._pusher_done.wait()
            nursery.cancel_scope.cancel()


def _push_chunk(sock: Any) -> int:
    """Bytes the pusher writes at once: a quarter of the socket's send buffer (64 KiB without one)."""
    if sock is None:
        return 64 * 1024
    try:
        sndbuf = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    except (OSError, AttributeError, TypeError, ValueError):
        return 64 * 1024
    return max(4096, min(64 * 1024, sndbuf // 4))


def _encodable(response: dict[str, Any]) -> bool:
    try:
        jsonrpc.encode(response)
    except TypeError:
        return False
    return True
