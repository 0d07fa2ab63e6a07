"""Hardening item 10: nesting depth is bounded on purpose, not by luck.

The daemon checks a request's decoded value (`shared.jsonrpc.nests_deeper`: orjson already stopped at 1024
levels); the transcript parser checks the bytes of a line its fast decoder refused before repairing it
(`shared.transcript.jsonl.nesting_exceeds`), and bounds tool inputs, the one deep value it keeps.

Before: a transcript line nested ~1000 deep made `maestroctl digest` die of RecursionError (and one nested
~255 deep that needed repair died of orjson's encoder limit); the daemon refused requests only past
orjson's 1024 levels and handled anything shallower with whatever recursion its code happened to have.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import errors
from shared.jsonrpc import MAX_DEPTH, Message, Rejected, Request, nests_deeper, parse_line
from shared.transcript.claude import TranscriptParser
from shared.transcript.jsonl import MAX_NESTING, nesting_exceeds
from tests.conftest import MAESTROCTL, RawClient, maestroctl_env
from tests.test_digest_service_support import prompt, say

DEEP = 100_000


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def nested(levels: int, inner: bytes = b"") -> bytes:
    return b"[" * levels + inner + b"]" * levels


# Strings full of brackets, quotes and backslashes: only the brackets outside strings count.
tricky_text = st.text(alphabet='[]{}"\\ab,:\n\u00e9', max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | tricky_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3),
    max_leaves=40)


@settings(max_examples=500, deadline=None)
@given(json_values, st.integers(0, 12))
def test_both_depth_checks_agree_with_the_real_depth(value: Any, limit: int) -> None:
    expected = depth(value) > limit
    assert nests_deeper(value, limit) == expected  # the daemon's, on the decoded request
    for text in (json.dumps(value).encode(), orjson.dumps(value), json.dumps(value, indent=1).encode()):
        assert nesting_exceeds(text, limit) == expected, (text, limit)  # the transcript repairs', on bytes


def test_nests_deeper_on_scalars_and_long_chains() -> None:
    assert not nests_deeper("x" * 1000, 0) and not nests_deeper(3, 0) and nests_deeper([], 0)
    chain: list[Any] = []
    for _ in range(500):
        chain = [chain]
    assert nests_deeper(chain, 500) and not nests_deeper(chain, 501)


@pytest.mark.parametrize("text, limit, expected", [
    (nested(64), 64, False), (nested(65), 64, True), (nested(DEEP), 64, True),
    (b"[" + b"[]," * 100_000 + b"[]]", 2, False),  # wide, shallow: peeled a level at a time
    (b"[" + b"[]," * 100_000 + nested(3) + b"]", 3, True),
    (b'{"a":"' + b"[" * 500 + b'"}', 1, False),  # brackets inside a string do not count
    (b'["\\"[[[[", [[]]]', 3, False), (b'["\\"[[[[", [[]]]', 2, True),
    (b"[" * 70 + b'"unterminated \\" [[[[', 64, True),  # broken text: what a decoder reads first
])
def test_nesting_exceeds_cases(text: bytes, limit: int, expected: bool) -> None:
    assert nesting_exceeds(text, limit) is expected


def test_an_unterminated_string_costs_one_pass() -> None:
    # `"` followed by millions of `\"` would make a naive string pattern retry at every quote.
    assert nesting_exceeds(b'[' * 100 + b'"' + b'\\"' * 2_000_000, 64) is True
    assert nesting_exceeds(b'"' * 4_000_001 + b"[" * 65, 64) is False  # the brackets are in the last string


# -- the daemon's request decoding --------------------------------------------------------------------


def request(levels: int, **extra: Any) -> bytes:
    body = {"jsonrpc": "2.0", "method": "system.ping", **extra}
    return orjson.dumps(body)[:-1] + b',"params":{"x":' + nested(levels - 2) + b"}}"


def test_a_request_at_the_bound_parses_one_level_deeper_is_refused() -> None:
    ok = parse_line(request(MAX_DEPTH, id=1))
    assert isinstance(ok.items[0], Request) and depth(ok.items[0].params) == MAX_DEPTH - 1
    refused = parse_line(request(MAX_DEPTH + 1, id=7))
    assert refused == Message([Rejected({"jsonrpc": "2.0", "id": 7, "error": {
        "code": errors.INVALID_REQUEST, "message": f"Invalid request: nested deeper than {MAX_DEPTH} arrays/objects"}})],
        batch=False)


def test_a_deep_batch_or_notification_is_refused_with_a_null_id() -> None:
    batch = parse_line(b"[" + request(MAX_DEPTH, id=1) + b"]")
    assert isinstance(batch.items[0], Rejected) and batch.items[0].response["id"] is None
    note = parse_line(request(MAX_DEPTH + 1))
    assert isinstance(note.items[0], Rejected) and note.items[0].response["id"] is None
    assert note.items[0].response["error"]["code"] == errors.INVALID_REQUEST


async def test_deep_lines_over_the_socket_get_an_error_and_the_connection_stays_usable(
        client: RawClient) -> None:
    await client.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"system.ping","params":{"x":' + nested(DEEP) + b"}}\n")
    resp = await client.recv()
    assert resp["id"] is None and resp["error"]["code"] == errors.PARSE_ERROR  # orjson stops at 1024 levels
    await client.send_raw(nested(DEEP) + b"\n")
    assert (await client.recv())["error"]["code"] == errors.PARSE_ERROR
    # Deeper than the bound but within orjson's reach: refused before any handler or validator walks it.
    for levels in (MAX_DEPTH + 1, 300, 1000):
        await client.send_raw(request(levels, id=levels) + b"\n")
        resp = await client.recv()
        assert resp["id"] == levels and resp["error"]["code"] == errors.INVALID_REQUEST, resp
        # hook.event takes a free-form payload: deep there too is refused, not an internal error.
        await client.send_raw(b'{"jsonrpc":"2.0","id":2,"method":"hook.event","params":{"event":"Stop",'
                              b'"payload":{"x":' + nested(levels) + b"}}}\n")
        resp = await client.recv()
        assert resp["id"] == 2 and resp["error"]["code"] == errors.INVALID_REQUEST, resp
    assert await client.call("system.ping") == "pong"


# -- the transcript parser -------------------------------------------------------------------------------


def tool_use(input_json: bytes) -> bytes:
    return (b'{"type":"assistant","uuid":"u-t","message":{"id":"m-t","role":"assistant","content":'
            b'[{"type":"tool_use","id":"toolu_1","name":"Bash","input":' + input_json + b"}]}}\n")


def test_a_line_too_deep_for_the_decoder_is_corrupt_and_the_rest_is_read() -> None:
    parser = TranscriptParser()
    data = prompt("first", 0) + b'{"type":"user","x":' + nested(DEEP) + b"}\n" + nested(DEEP) + b"\n" + say("done", 2)
    parser.feed(data)
    assert parser.stats.corrupt_lines == 2 and parser.stats.records == 2


def test_a_tool_input_deeper_than_the_bound_makes_its_line_corrupt() -> None:
    # Inputs are kept and checkpointed (orjson encodes at most 255 levels): bounded at MAX_NESTING.
    ok, deep = TranscriptParser(), TranscriptParser()
    ok.feed(tool_use(b'{"command":' + nested(MAX_NESTING - 1) + b"}"))
    assert ok.stats.corrupt_lines == 0 and ok.pending_tools == {"toolu_1": "Bash"}
    orjson.dumps(ok.checkpoint())
    deep.feed(tool_use(b'{"command":' + nested(MAX_NESTING) + b"}"))
    assert deep.stats.corrupt_lines == 1 and deep.pending_tools == {}
    orjson.dumps(deep.checkpoint())


@pytest.mark.parametrize("levels", [MAX_NESTING + 1, 254, 300, 900])
def test_a_line_that_needs_repair_and_nests_too_deep_is_corrupt(levels: int) -> None:
    # `content` of the wrong type sends the line to the repairs, which re-encode it with orjson.
    parser = TranscriptParser()
    parser.feed(b'{"type":"user","uuid":"u-1","message":{"role":"user","content":' + nested(levels) + b"}}\n")
    assert parser.stats.corrupt_lines == 1 and parser.stats.records == 0


def test_a_shallow_line_that_needs_repair_is_still_salvaged() -> None:
    parser = TranscriptParser()
    parser.feed(b'{"type":"user","uuid":"u-1","message":{"role":"user","content":' + nested(20) + b"}}\n")
    assert parser.stats.corrupt_lines == 0 and parser.stats.salvaged_records == 1


def test_maestroctl_digest_skips_a_100000_deep_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(prompt("fix the tests", 0) + b'{"type":"assistant","x":' + nested(DEEP) + b"}\n"
                     + say("All tests pass now.", 2))
    env = maestroctl_env(Path("/nonexistent/maestrod.sock"))
    for args in (["digest", str(path), "--mode", "text", "--utc"], ["--json", "digest", str(path)]):
        r = subprocess.run([MAESTROCTL, *args], env=env, capture_output=True, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        assert b"skipped 1 unreadable line(s) (1 corrupt" in r.stderr
        assert b"Traceback" not in r.stderr
        assert b"All tests pass now." in r.stdout
