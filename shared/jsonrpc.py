"""Sans-I/O JSON-RPC 2.0 over newline-delimited JSON (NDJSON).

In the style of h11: bytes go in with :meth:`ServerConnection.receive_data`,
events come out of :meth:`ServerConnection.next_event`, and the caller owns
the socket. Nothing here performs I/O, so the whole protocol is tested without
sockets (``tests/test_jsonrpc.py``) and fuzzed (``tests/test_jsonrpc_fuzz.py``).

Wire rules (README "Protocol"):

* one JSON value per line, UTF-8, ``\\n`` terminated (a trailing ``\\r`` is
  tolerated; blank lines are ignored);
* a line longer than :data:`MAX_LINE` bytes is answered with an error and
  the connection is closed: the rest of the stream cannot be re-synchronised
  cheaply, and a peer that sends 16 MiB lines is broken or hostile;
* a line nested deeper than :data:`MAX_DEPTH` arrays/objects is refused
  (``-32600``) before dispatch: recursion in a handler, the validator or a
  serialiser must never depend on the peer's nesting;
* every other mistake is answered and the connection stays usable.
"""

from __future__ import annotations

import enum
from typing import Any, Union

import attrs
import orjson

from shared import errors

MAX_LINE = 16 * 1024 * 1024
#: Arrays/objects a request line may nest (a batch's array counts): far above any method's params, far
#: below what orjson (1024), cattrs or a recursive walk of the params could choke on.
MAX_DEPTH = 64

JsonId = Union[str, int, None]


@attrs.frozen
class Request:
    """One well-formed call. ``is_notification`` means no response may be sent."""

    method: str
    params: Any
    id: JsonId = None
    is_notification: bool = False


@attrs.frozen
class Rejected:
    """A call that is invalid before dispatch; ``response`` is the error to send."""

    response: dict[str, Any]


Item = Union[Request, Rejected]


@attrs.frozen
class Message:
    """One line's worth of calls: a single call, or a batch array."""

    items: list[Item]
    batch: bool


@attrs.frozen
class Fatal:
    """A protocol violation after which the connection must be closed."""

    response: dict[str, Any]


class NeedData:
    """Sentinel event: feed more bytes."""


class Closed:
    """Sentinel event: the peer finished sending and every line was consumed."""


NEED_DATA = NeedData()
CLOSED = Closed()

Event = Union[Message, Fatal, NeedData, Closed]


class State(enum.Enum):
    OPEN = "open"
    EOF = "eof"  # peer half-closed; remaining buffered lines are still delivered
    ERROR = "error"  # a Fatal event was produced; nothing more is parsed


def error_response(id_: JsonId, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def result_response(id_: JsonId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "result": result}


def notification(method: str, params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def encode(obj: Any) -> bytes:
    """Serialise one message (object or batch array) as a single NDJSON line."""
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


def _valid_id(value: Any) -> bool:
    # bool is a subclass of int; JSON-RPC ids are strings, numbers or null.
    return value is None or type(value) is str or type(value) is int


_MEMBERS = frozenset({"jsonrpc", "id", "method", "params"})


def parse_item(obj: Any) -> Item:
    """Validate one request object (a line's value, or one element of a batch)."""
    # Fast path for the well-formed common case; anything unusual gets the full diagnosis below.
    if type(obj) is dict and obj.get("jsonrpc") == "2.0" and obj.keys() <= _MEMBERS:
        method = obj.get("method")
        params = obj.get("params", {})
        if type(method) is str and method and type(params) in (dict, list):
            if "id" not in obj:
                return Request(method, params, None, True)
            id_ = obj["id"]
            if id_ is None or type(id_) is str or type(id_) is int:
                return Request(method, params, id_, False)
    if not isinstance(obj, dict):
        return Rejected(error_response(None, errors.INVALID_REQUEST,
                                       f"Invalid request: expected an object, got {_json_type(obj)}"))
    has_id = "id" in obj
    id_ = obj.get("id")
    if has_id and not _valid_id(id_):
        hint = " (integer ids must be whole numbers within 64 bits)" if isinstance(id_, float) else ""
        return Rejected(error_response(None, errors.INVALID_REQUEST,
                                       f"Invalid request: id must be a string, integer or null, "
                                       f"got {_json_type(id_)}{hint}"))
    problems = []
    if obj.get("jsonrpc") != "2.0":
        problems.append('jsonrpc: expected "2.0"')
    method = obj.get("method")
    if type(method) is not str or not method:
        problems.append(f"method: expected a non-empty string, got {_json_type(method)}")
    params = obj.get("params")
    if "params" in obj and not isinstance(params, (dict, list)):
        problems.append(f"params: expected an object or array, got {_json_type(params)}")
    extra = set(obj) - {"jsonrpc", "id", "method", "params"}
    if extra:
        problems.append(f"unexpected members: {', '.join(sorted(extra))}")
    if problems:
        return Rejected(error_response(id_ if has_id else None, errors.INVALID_REQUEST,
                                       "Invalid request: " + "; ".join(problems)))
    assert isinstance(method, str)
    return Request(method=method, params=params if params is not None else {}, id=id_,
                   is_notification=not has_id)


def nests_deeper(value: Any, limit: int) -> bool:
    """Does a decoded JSON ``value`` nest arrays/objects more than ``limit`` deep?  Level by level, never
    recursing; the cost is one type check per member, less than decoding them cost."""
    if type(value) is not dict and type(value) is not list:
        return False
    level = [value]
    for _ in range(limit):
        deeper = []
        for container in level:
            for member in container.values() if type(container) is dict else container:
                if type(member) is dict or type(member) is list:
                    deeper.append(member)
        if not deeper:
            return False
        level = deeper
    return True


def _too_deep(value: Any) -> Rejected:
    id_ = value.get("id") if isinstance(value, dict) else None
    return Rejected(error_response(id_ if _valid_id(id_) else None, errors.INVALID_REQUEST,
                                   f"Invalid request: nested deeper than {MAX_DEPTH} arrays/objects"))


def parse_line(line: bytes) -> Message:
    """Turn one complete line (without its newline) into a :class:`Message`."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return Message([Rejected(error_response(None, errors.PARSE_ERROR, f"Parse error: {exc}"))],
                       batch=False)
    # orjson stops at 1024 levels; the rest is bounded here (a ping is too short to nest 64 deep).
    if len(line) > 2 * MAX_DEPTH and nests_deeper(value, MAX_DEPTH):
        return Message([_too_deep(value)], batch=False)
    if isinstance(value, list):
        if not value:
            return Message([Rejected(error_response(None, errors.INVALID_REQUEST,
                                                    "Invalid request: empty batch"))], batch=False)
        return Message([parse_item(v) for v in value], batch=True)
    return Message([parse_item(value)], batch=False)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@attrs.define
class LineBuffer:
    """Accumulates bytes and yields complete lines, enforcing ``max_line``.

    The scan for ``\\n`` resumes where it stopped, so a 16 MiB line arriving in
    64 KiB chunks costs O(n), not O(n^2).
    """

    max_line: int = MAX_LINE
    _buf: bytearray = attrs.field(factory=bytearray)
    _scanned: int = 0
    #: Discarding a refused line's bytes until its newline (see :meth:`discard_partial`).
    _skipping: bool = False

    def feed(self, data: bytes | bytearray) -> None:
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return
            self._skipping = False
            data = data[nl + 1:]
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes held (after :meth:`next_line` answered None: the unfinished line's bytes so far)."""
        return len(self._buf)

    def discard_partial(self) -> None:
        """Drop the unfinished line held, and the rest of it as it arrives (up to its newline).

        Call it only after :meth:`next_line` answered None, when the buffer holds nothing else."""
        self._buf = bytearray()  # a new one: the old one's capacity goes back to the allocator
        self._scanned = 0
        self._skipping = True

    def next_line(self) -> bytes | None | Fatal:
        idx = self._buf.find(b"\n", self._scanned)
        if idx < 0:
            self._scanned = len(self._buf)
            if len(self._buf) > self.max_line:
                return self._too_long()
            return None
        if idx > self.max_line:
            return self._too_long()
        line = bytes(self._buf[:idx])
        del self._buf[: idx + 1]
        self._scanned = 0
        return line[:-1] if line.endswith(b"\r") else line

    def take_rest(self) -> bytes:
        """Whatever is buffered after the last newline (the peer's unterminated final line)."""
        rest = bytes(self._buf)
        self._buf.clear()
        self._scanned = 0
        return rest

    def _too_long(self) -> Fatal:
        self._buf.clear()
        self._scanned = 0
        return Fatal(error_response(None, errors.TOO_LARGE,
                                    f"Message too large: lines are limited to {self.max_line} bytes; "
                                    "closing the connection"))


class ServerConnection:
    """The server side of one NDJSON JSON-RPC connection, without I/O."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._lines = LineBuffer(max_line)
        self.state = State.OPEN
        self._refused: list[Message] = []

    @property
    def buffered(self) -> int:
        """Input bytes held: after :data:`NEED_DATA`, the unfinished line's bytes so far."""
        return self._lines.buffered

    def refuse_partial(self, message: str) -> None:
        """Refuse the unfinished line held (call it after :data:`NEED_DATA`): its bytes so far are dropped,
        the rest is skipped as it arrives, and the next event is a ``-32005`` answer (id null: the line was
        never parsed). The connection stays usable: the line after it is read as usual."""
        self._lines.discard_partial()
        self._refused.append(Message([Rejected(error_response(None, errors.TOO_LARGE, message))], batch=False))

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes read from the peer (trio streams may return a bytearray); ``b""`` means it closed."""
        if self.state is State.ERROR:
            return
        if data:
            if self.state is State.EOF:
                raise RuntimeError("data after EOF")
            self._lines.feed(data)
        else:
            self.state = State.EOF

    def next_event(self) -> Event:
        if self.state is State.ERROR:
            return CLOSED
        if self._refused:
            return self._refused.pop(0)
        while True:
            line = self._lines.next_line()
            if isinstance(line, Fatal):
                self.state = State.ERROR
                return line
            if line is None:
                if self.state is State.EOF:
                    # An unterminated final line is still a message: `printf '{...}' | nc -U` is common.
                    rest = self._lines.take_rest()
                    if rest.strip():
                        return parse_line(rest)
                    return CLOSED
                return NEED_DATA
            if not line.strip():
                continue
            return parse_line(line)


def response_for_batch(responses: list[dict[str, Any] | None], batch: bool) -> bytes | None:
    """Encode the answers to one :class:`Message`; ``None`` means send nothing."""
    kept = [r for r in responses if r is not None]
    if not kept:
        return None
    return encode(kept if batch else kept[0])
