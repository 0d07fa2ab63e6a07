"""One connection to maestrod that outlives the connection: the client every long-running command uses.

``events watch``, ``session log --follow`` and ``mail wait`` (and anything else that waits or follows)
must not end because the daemon restarted, or dropped a subscriber that fell behind. This client
reconnects by itself and says so in one line on stderr; it never repeats what it must not repeat.

Following events, with no gap and no repeat::

    rc = ReconnectingClient(socket_path)
    rc.subscribe(["task."])            # answers the seq the subscription starts after
    for event in rc.events():          # {"seq", "at", "topic", "data"}, seq strictly increasing
        ...

When the connection ends (the daemon closed it, restarted, or sent ``events.dropped`` because the
client stopped reading), the client reconnects with bounded retries and backoff (``retry_for``
seconds in all), subscribes again, and asks ``events.replay`` for everything after the last seq it
yielded, page by page, before the pushed events; any seq at or below the last one yielded is skipped.
If the daemon no longer keeps some of those events (``gap``: retention), ``on_gap`` is told (by
default a note on stderr) and the stream continues from the oldest kept.

Calls, and which ones are sent again::

    rc.call("session.digest", {...}, repeatable=True)   # a read: resent after any lost connection
    rc.call("task.create", {...})                       # resent only if it provably never started
    rc.wait("mail.wait", {...}, timeout=None)          # a long wait, resumed across restarts

A call is sent again only when it did nothing: the connection could not be made, or the daemon answered
``-32006`` with ``data.retry`` (it was shutting down: the request was refused before it started, or a
long wait ended before it did anything). A call that was sent and whose answer never came may have run,
so unless it is ``repeatable`` it raises :class:`~maestroctl.client.ConnectionLost` (maestroctl exits 1
saying so): a ``task.create``, ``mail.send``, ``session.spawn`` or a ``mail.wait`` that marked mail read
never runs twice. The first connection is not retried (no daemon: :class:`~maestroctl.client.Unreachable`,
exit 3); giving up on a reconnect raises it too.

Plain ``_socket`` I/O through :class:`maestroctl.client.Client`: no trio, cattrs or maestrod (start-up).
"""

from __future__ import annotations

import sys
import time

from maestroctl.client import Client, ConnectionLost, RemoteError, Unreachable

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

#: -32006: the daemon is unavailable (shutting down...). Sent again only with ``data.retry`` true.
UNAVAILABLE = -32006
#: Reconnecting gives up after this many seconds (a daemon restart takes well under one).
RETRY_FOR = 30.0
FIRST_DELAY = 0.05
MAX_DELAY = 1.0
#: ``events.replay`` after this finds nothing: a request with no effect, to learn that a daemon takes requests.
NO_EVENT_AFTER = (1 << 63) - 1
#: Events asked of ``events.replay`` per page.
REPLAY_PAGE = 1000


class _Dropped(Exception):
    """The daemon sent ``events.dropped``: this subscriber must reconnect and resume."""


def _stderr_note(text: str) -> None:
    sys.stderr.write(f"maestroctl: {text}\n")
    sys.stderr.flush()


def _retryable(exc: RemoteError) -> bool:
    return exc.code == UNAVAILABLE and isinstance(exc.data, dict) and exc.data.get("retry") is True


class ReconnectingClient:
    """A :class:`~maestroctl.client.Client` that reconnects (see the module docstring for the rules).

    ``note`` receives the one-line notes (default: stderr); ``on_gap(since)`` is called when events after
    ``since`` were pruned before they could be replayed.
    """

    def __init__(self, path: str, token: str | None = None, *, timeout: float | None = None,
                 retry_for: float = RETRY_FOR, note: Callable[[str], None] = _stderr_note,
                 on_gap: Callable[[int], None] | None = None) -> None:
        self.path = path
        self.token = token
        self.timeout = timeout
        self.retry_for = retry_for
        self.note = note
        self.on_gap = on_gap
        #: The seq of the last event yielded by :meth:`events` (or the one the subscription started after).
        self.last_seq = 0
        #: How many times the connection was made again.
        self.reconnects = 0
        self._client: Client | None = None
        self._ever_connected = False
        self._topics: list[str] | None = None
        #: Events after last_seq still to fetch with events.replay (after a reconnect, or subscribe(since=)).
        self._replay_pending = False

    # -- connection -------------------------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The current connection (made now if there is none; the first one is not retried)."""
        if self._client is None:
            if self._ever_connected:
                self._reconnect("the connection was closed")
            else:
                self._client = self._connect()
                self._ever_connected = True
        assert self._client is not None
        return self._client

    def _connect(self) -> Client:
        client = Client(self.path, token=self.token, timeout=self.timeout)
        client.connect()
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    def __enter__(self) -> ReconnectingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_timeout(self, timeout: float | None) -> None:
        self.timeout = timeout
        if self._client is not None:
            self._client.set_timeout(timeout)

    def _lost(self, reason: str) -> None:
        """The connection ended: forget it and make a new one (subscribed again if we were)."""
        self.close()
        self._reconnect(reason)

    def _reconnect(self, reason: str) -> None:
        self.note(f"{reason}; reconnecting to maestrod" +
                  (f" (resuming after event {self.last_seq})" if self._topics is not None else ""))
        deadline = time.monotonic() + self.retry_for
        delay = FIRST_DELAY
        while True:
            try:
                client = self._connect()
                # A stopping daemon still accepts connections but refuses every request (-32006 retry):
                # resend nothing until one that takes requests answers (the subscription, or a no-op read).
                if self._topics is not None:
                    client.call("events.subscribe", {"topics": self._topics})
                    self._replay_pending = True
                else:
                    client.call("events.replay", {"since": NO_EVENT_AFTER, "limit": 1})
                self._client = client
                self.reconnects += 1
                return
            except (Unreachable, ConnectionLost) as exc:
                why = exc.reason
            except RemoteError as exc:
                if not _retryable(exc):
                    raise
                why = exc.message
            if time.monotonic() + delay > deadline:
                raise Unreachable(self.path, f"{reason}, and no daemon answered again within {self.retry_for:g} s "
                                             f"({why})")
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)

    # -- calls ------------------------------------------------------------------------------------------------

    def call_raw(self, method: str, params: Any | None = None, *,
                 repeatable: bool = False) -> tuple[Any, bytes | None]:
        """Like :meth:`maestroctl.client.Client.call_raw`, across reconnects (see :meth:`call`)."""
        while True:
            client = self.client
            try:
                return client.call_raw(method, params)
            except RemoteError as exc:
                if not _retryable(exc):
                    raise
                self._lost(f"maestrod refused {method} while shutting down")
            except ConnectionLost as exc:
                if not repeatable or exc.too_large:
                    raise ConnectionLost(self.path, f"{exc.reason}; {method} may or may not have run, so it was "
                                                    "not sent again", exc.too_large) from None
                self._lost(exc.reason)

    def call(self, method: str, params: Any | None = None, *, repeatable: bool = False) -> Any:
        """Send ``method`` and return its result. Sent again after a reconnect only if it did nothing
        (-32006 with ``data.retry``), or, when ``repeatable`` (reads), after any lost connection."""
        from maestroctl import wire

        value, raw = self.call_raw(method, params, repeatable=repeatable)
        return wire.loads(raw) if raw is not None else value

    def wait_raw(self, method: str, params: dict[str, Any], timeout: float | None,
                 grace: float = 30.0) -> tuple[Any, bytes | None]:
        """A long wait (``mail.wait``, ``session.wait``) whose ``timeout`` param counts from now, across
        reconnects: each attempt asks for what is left. The socket waits ``grace`` seconds longer than the
        daemon, so the daemon always answers first. Not repeatable: resent only on -32006 ``retry``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.set_timeout(None if left is None else left + grace)
            client = self.client
            try:
                return client.call_raw(method, {**params, "timeout": left})
            except RemoteError as exc:
                if not _retryable(exc):
                    raise
                self._lost(f"maestrod ended {method} while shutting down")
            except ConnectionLost as exc:
                raise ConnectionLost(self.path, f"{exc.reason}; {method} may have been answered, so it was "
                                                "not sent again", exc.too_large) from None

    # -- events -----------------------------------------------------------------------------------------------

    def subscribe(self, topics: list[str], since: int | None = None) -> int:
        """Subscribe to ``topics`` (prefixes; [] = all); answers the seq the subscription starts after.

        With ``since``, :meth:`events` first replays every event after it (resuming an earlier watch)."""
        self._topics = list(topics)
        result = self.call("events.subscribe", {"topics": self._topics}, repeatable=True)
        current = int(result.get("last_seq", 0))
        if since is None or since >= current:
            self.last_seq = current
        else:
            self.last_seq = since
            self._replay_pending = True
        return current

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event after :attr:`last_seq`, in seq order, with no gap and no repeat, across reconnects
        (call :meth:`subscribe` first). Ends only by raising (Unreachable once reconnecting gives up)."""
        if self._topics is None:
            raise RuntimeError("subscribe() first")
        while True:
            try:
                if self._replay_pending:
                    yield from self._replay()
                event = self._next_event()
            except ConnectionLost as exc:
                self._lost(exc.reason)
                continue
            except _Dropped as exc:
                self._lost(str(exc))
                continue
            if event is not None and event["seq"] > self.last_seq:
                self.last_seq = event["seq"]
                yield event

    def _next_event(self) -> dict[str, Any] | None:
        msg = self.client.next_notification()
        method = msg.get("method")
        params = msg.get("params")
        if method == "events.dropped":
            why = params.get("message") if isinstance(params, dict) else None
            raise _Dropped(f"maestrod dropped this subscriber ({why or 'it fell behind'})")
        if method == "event" and isinstance(params, dict) and isinstance(params.get("seq"), int):
            return params
        return None  # another notification (e.g. attach output): not an event

    def _replay(self) -> Iterator[dict[str, Any]]:
        """events.replay after last_seq, page by page, until nothing more is kept."""
        assert self._topics is not None
        while True:
            page = self.client.call("events.replay", {"since": self.last_seq, "topics": self._topics,
                                                      "limit": REPLAY_PAGE})
            if page.get("gap"):
                self._gap(self.last_seq)
            for event in page.get("events", []):
                if event["seq"] > self.last_seq:
                    self.last_seq = event["seq"]
                    yield event
            if not page.get("more"):
                break
        self._replay_pending = False

    def _gap(self, since: int) -> None:
        if self.on_gap is not None:
            self.on_gap(since)
        else:
            self.note(f"events after seq {since} are no longer kept by maestrod ([events] retention); "
                      "continuing from the oldest kept")
