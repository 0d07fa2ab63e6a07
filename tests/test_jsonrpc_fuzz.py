"""Property tests on framing: arbitrary bytes, arbitrary split points, never a crash,
always a spec-conformant answer."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared import errors, jsonrpc
from shared.jsonrpc import CLOSED, NEED_DATA, Fatal, Message, Rejected, Request, ServerConnection

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12)

requests = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "method": st.text(min_size=1, max_size=12)},
    optional={"id": st.none() | st.integers(min_value=-2**63, max_value=2**63 - 1) | st.text(max_size=8),
              "params": st.dictionaries(st.text(max_size=5), json_values, max_size=3) | st.lists(json_values,
                                                                                                   max_size=3)})


def drain(conn: ServerConnection) -> list[Any]:
    out = []
    while True:
        ev = conn.next_event()
        if ev is NEED_DATA or ev is CLOSED:
            return out
        out.append(ev)
        if isinstance(ev, Fatal):
            return out


def check_conformant(ev: Any) -> None:
    if isinstance(ev, Fatal):
        assert ev.response["error"]["code"] == errors.TOO_LARGE
        return
    assert isinstance(ev, Message)
    assert ev.items
    for item in ev.items:
        if isinstance(item, Rejected):
            r = item.response
            assert r["jsonrpc"] == "2.0" and "id" in r
            assert r["error"]["code"] in (errors.PARSE_ERROR, errors.INVALID_REQUEST)
            assert isinstance(r["error"]["message"], str) and r["error"]["message"]
            json.dumps(r)  # always serialisable
        else:
            assert isinstance(item, Request)
            assert isinstance(item.method, str) and item.method
            assert isinstance(item.params, (dict, list))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_arbitrary_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    conn = ServerConnection(max_line=128)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for a, b in zip(points, points[1:]):
        conn.receive_data(data[a:b])
        for ev in drain(conn):
            check_conformant(ev)
    conn.receive_data(b"")
    for ev in drain(conn):
        check_conformant(ev)


@settings(max_examples=200, deadline=None)
@given(st.lists(requests, min_size=1, max_size=6), st.lists(st.integers(min_value=1, max_value=50), max_size=10))
def test_valid_requests_survive_any_chunking(reqs: list[dict[str, Any]], sizes: list[int]) -> None:
    stream = b"".join(json.dumps(r).encode() + b"\n" for r in reqs)
    conn = ServerConnection()
    got: list[Any] = []
    pos = 0
    for size in sizes + [len(stream)]:
        conn.receive_data(stream[pos:pos + size])
        pos += size
        got.extend(drain(conn))
        if pos >= len(stream):
            break
    assert len(got) == len(reqs)
    for ev, req in zip(got, reqs):
        assert isinstance(ev, Message) and not ev.batch
        item = ev.items[0]
        assert isinstance(item, Request)
        assert item.method == req["method"]
        assert item.is_notification == ("id" not in req)
        if "id" in req:
            assert item.id == req["id"]


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_json_value_gets_an_answer(value: Any) -> None:
    msg = jsonrpc.parse_line(json.dumps(value).encode())
    check_conformant(msg)
