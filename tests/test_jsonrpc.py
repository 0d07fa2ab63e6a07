"""The sans-I/O protocol core, without sockets."""

from __future__ import annotations

import json

import orjson
import pytest

from shared import errors, jsonrpc
from shared.jsonrpc import CLOSED, NEED_DATA, Fatal, Message, Rejected, Request, ServerConnection


def events(conn: ServerConnection) -> list[object]:
    out = []
    while True:
        ev = conn.next_event()
        out.append(ev)
        if ev is NEED_DATA or ev is CLOSED or isinstance(ev, Fatal):
            return out


def test_single_request() -> None:
    c = ServerConnection()
    c.receive_data(b'{"jsonrpc":"2.0","id":1,"method":"system.ping"}\n')
    evs = events(c)
    assert evs[0] == Message([Request("system.ping", {}, 1, False)], batch=False)
    assert evs[1] is NEED_DATA


def test_request_split_across_chunks_and_two_in_one_chunk() -> None:
    c = ServerConnection()
    data = b'{"jsonrpc":"2.0","id":"a","method":"m"}\n{"jsonrpc":"2.0","method":"n","params":[1]}\n'
    for i in range(len(data)):
        c.receive_data(data[i:i + 1])
    evs = events(c)
    assert [type(e) for e in evs] == [Message, Message, type(NEED_DATA)]
    assert evs[0].items[0] == Request("m", {}, "a", False)  # type: ignore[union-attr]
    assert evs[1].items[0] == Request("n", [1], None, True)  # type: ignore[union-attr]


def test_parse_error_has_null_id_and_connection_stays_usable() -> None:
    c = ServerConnection()
    c.receive_data(b'{"jsonrpc": "2.0", "id": 3, "method": \n{"jsonrpc":"2.0","id":4,"method":"x"}\n')
    first, second = c.next_event(), c.next_event()
    assert isinstance(first, Message)
    rej = first.items[0]
    assert isinstance(rej, Rejected)
    assert rej.response["id"] is None and rej.response["error"]["code"] == errors.PARSE_ERROR
    assert isinstance(second, Message) and second.items[0] == Request("x", {}, 4, False)


@pytest.mark.parametrize("obj, fragment", [
    ({"jsonrpc": "2.0", "id": 1}, "method"),
    ({"jsonrpc": "1.0", "id": 1, "method": "m"}, "jsonrpc"),
    ({"jsonrpc": "2.0", "id": True, "method": "m"}, "id must be"),
    ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "m"}, "id must be"),
    ({"jsonrpc": "2.0", "id": 2**70, "method": "m"}, "within 64 bits"),
    ({"jsonrpc": "2.0", "id": 1.5, "method": "m"}, "id must be"),
    ({"jsonrpc": "2.0", "id": 1, "method": "m", "params": 3}, "params"),
    ({"jsonrpc": "2.0", "id": 1, "method": ""}, "method"),
    ({"jsonrpc": "2.0", "id": 1, "method": "m", "extra": 1}, "unexpected members: extra"),
    (5, "expected an object"),
])
def test_invalid_requests(obj: object, fragment: str) -> None:
    msg = jsonrpc.parse_line(json.dumps(obj).encode())
    item = msg.items[0]
    assert isinstance(item, Rejected)
    assert item.response["error"]["code"] == errors.INVALID_REQUEST
    assert fragment in item.response["error"]["message"]


def test_invalid_request_keeps_a_valid_id() -> None:
    item = jsonrpc.parse_line(b'{"jsonrpc":"2.0","id":7,"method":5}').items[0]
    assert isinstance(item, Rejected) and item.response["id"] == 7


def test_batch_and_empty_batch() -> None:
    msg = jsonrpc.parse_line(b'[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"},3]')
    assert msg.batch and len(msg.items) == 3
    assert isinstance(msg.items[2], Rejected)
    empty = jsonrpc.parse_line(b"[]")
    assert not empty.batch and isinstance(empty.items[0], Rejected)
    assert empty.items[0].response["error"]["code"] == errors.INVALID_REQUEST


def test_response_for_batch_skips_notifications() -> None:
    assert jsonrpc.response_for_batch([None, None], batch=True) is None
    data = jsonrpc.response_for_batch([{"a": 1}, None], batch=True)
    assert data == b'[{"a":1}]\n'
    assert jsonrpc.response_for_batch([{"a": 1}], batch=False) == b'{"a":1}\n'


def test_oversized_line_is_fatal_even_without_newline() -> None:
    c = ServerConnection(max_line=100)
    c.receive_data(b"x" * 101)
    ev = c.next_event()
    assert isinstance(ev, Fatal) and ev.response["error"]["code"] == errors.TOO_LARGE
    assert c.state is jsonrpc.State.ERROR
    c.receive_data(b'{"jsonrpc":"2.0","id":1,"method":"m"}\n')
    assert c.next_event() is CLOSED


def test_line_exactly_at_limit_is_accepted() -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"m","params":{"p":"'
    tail = b'"}}'
    line = body + b"y" * (100 - len(body) - len(tail)) + tail
    assert len(line) == 100
    c = ServerConnection(max_line=100)
    c.receive_data(line + b"\n")
    assert isinstance(c.next_event(), Message)


def test_eof_delivers_unterminated_last_line_then_closed() -> None:
    c = ServerConnection()
    c.receive_data(b'{"jsonrpc":"2.0","id":1,"method":"m"}')
    assert c.next_event() is NEED_DATA
    c.receive_data(b"")
    assert isinstance(c.next_event(), Message)
    assert c.next_event() is CLOSED


def test_blank_lines_and_crlf_are_tolerated() -> None:
    c = ServerConnection()
    c.receive_data(b'\n  \r\n{"jsonrpc":"2.0","id":1,"method":"m"}\r\n')
    ev = c.next_event()
    assert isinstance(ev, Message) and ev.items[0] == Request("m", {}, 1, False)


def test_invalid_utf8_is_a_parse_error() -> None:
    item = jsonrpc.parse_line(b'{"jsonrpc":"2.0","id":1,"method":"\xff"}').items[0]
    assert isinstance(item, Rejected) and item.response["error"]["code"] == errors.PARSE_ERROR


def test_encode_is_one_line() -> None:
    data = jsonrpc.encode(jsonrpc.result_response(1, {"text": "a\nb"}))
    assert data.count(b"\n") == 1 and data.endswith(b"\n")
    assert orjson.loads(data) == {"jsonrpc": "2.0", "id": 1, "result": {"text": "a\nb"}}
