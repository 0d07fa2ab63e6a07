"""Hardening item 9: integer params must fit SQLite's signed 64 bits, and every `limit` has a range.

Before: `events.replay {since: 2**63}` overflowed in the store (-32603) and `task.history {limit: -1}` meant
"unbounded".  Now the strict converter answers -32602 naming the field, through a real daemon too.
"""

from __future__ import annotations

from typing import Any, Optional

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import errors
from shared.convert import INT_MAX, INT_MIN, structure_params
from shared.errors import RpcError
from shared.messages.digest import SessionDigestParams
from shared.messages.events import Replay
from shared.messages.mail import MailInbox
from shared.messages.session import SessionHistory, SessionOutput
from shared.messages.task import TaskHistory
from tests.conftest import RawClient

RANGE = f"must be between {INT_MIN} and {INT_MAX}"


@attrs.define
class Ints:
    a: int
    b: Optional[int] = None
    c: list[int] = attrs.field(factory=list)
    d: dict[str, int] = attrs.field(factory=dict)
    f: float = 0.0


def problems(params: Any, cls: type) -> list[str]:
    with pytest.raises(RpcError) as exc:
        structure_params(params, cls)
    assert exc.value.code == errors.INVALID_PARAMS
    return list(exc.value.data["errors"])


def test_the_64_bit_bounds_are_accepted() -> None:
    assert structure_params({"a": INT_MIN, "b": INT_MAX, "c": [0, -1], "d": {"k": INT_MAX}}, Ints) == Ints(
        INT_MIN, INT_MAX, [0, -1], {"k": INT_MAX})


def test_every_integer_beyond_64_bits_is_named() -> None:
    got = problems({"a": 2**63, "b": -(2**63) - 1, "c": [1, 2**64], "d": {"k": -(2**70)}}, Ints)
    assert sorted(got) == sorted([f"a: {RANGE}", f"b: {RANGE}", f"c[1]: {RANGE}", f"d: {RANGE}"])


def test_huge_integers_read_as_floats_are_out_of_range_not_coerced() -> None:
    # orjson reads integer literals beyond 64 bits as floats: still "out of range", never a silent float.
    assert problems({"a": 1.8446744073709552e19}, Ints) == [f"a: {RANGE}"]
    assert problems({"a": 1.5}, Ints) == ["a: expected integer, got number"]
    assert problems({"a": 1, "f": 10**400}, Ints) == ["f: number out of range"]


@given(st.integers())
def test_an_integer_is_accepted_exactly_when_it_fits(v: int) -> None:
    if INT_MIN <= v <= INT_MAX:
        assert structure_params({"a": v}, Ints).a == v
    else:
        assert problems({"a": v}, Ints) == [f"a: {RANGE}"]


@pytest.mark.parametrize("cls, params, low, high", [
    (Replay, {"since": 0}, 1, 10_000),
    (TaskHistory, {"id": "t-1"}, 1, 10_000),
    (MailInbox, {}, 1, 1000),
    (SessionOutput, {"id": "s-1"}, 1, 1 << 20),
    (SessionHistory, {"id": "s-1"}, 1, 10_000),
])
def test_every_limit_has_a_range(cls: type, params: dict[str, Any], low: int, high: int) -> None:
    assert structure_params({**params, "limit": low}, cls).limit == low
    assert structure_params({**params, "limit": high}, cls).limit == high
    for bad in (low - 1, -1, high + 1):
        assert problems({**params, "limit": bad}, cls) == [f"limit: must be between {low} and {high}, got {bad}"]
    assert problems({**params, "limit": 2**64 - 1}, cls) == [f"limit: {RANGE}"]


def test_digest_last_keeps_its_range() -> None:
    assert structure_params({"id": "s", "last": 0}, SessionDigestParams).last == 0
    assert problems({"id": "s", "last": -1}, SessionDigestParams) == [
        "last: must be between 0 and 10000, got -1"]


# -- through a real daemon ---------------------------------------------------------------------------


async def test_replay_since_beyond_64_bits_is_invalid_params(client: RawClient) -> None:
    for since in (2**63, -(2**63) - 1):
        resp = await client.request("events.replay", {"since": since})
        err = resp["error"]
        assert err["code"] == errors.INVALID_PARAMS, err
        assert err["data"]["errors"] == [f"since: {RANGE}"]
    ok = await client.call("events.replay", {"since": INT_MAX})
    assert ok["events"] == []
    resp = await client.request("events.replay", {"since": 0, "limit": -1})
    assert resp["error"]["data"]["errors"] == ["limit: must be between 1 and 10000, got -1"]


async def test_task_history_limit_is_bounded(client: RawClient, short_tmp: Any) -> None:
    project = await client.call("project.create", {"name": "p", "dir": str(short_tmp)})
    task = await client.call("task.create", {"project": project["id"], "title": "t"})
    for limit, message in ((-1, "limit: must be between 1 and 10000, got -1"),
                           (0, "limit: must be between 1 and 10000, got 0"),
                           (2**64, f"limit: {RANGE}"),
                           (2**63, f"limit: {RANGE}")):
        resp = await client.request("task.history", {"id": task["id"], "limit": limit})
        err = resp["error"]
        assert err["code"] == errors.INVALID_PARAMS, (limit, err)
        assert err["data"]["errors"] == [message]
    history = await client.call("task.history", {"id": task["id"], "limit": 1})  # one page, newest first
    assert len(history["items"]) == 1 and history["total"] == 1
    assert await client.call("system.ping") == "pong"  # the connection is still fine
