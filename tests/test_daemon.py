"""The daemon in-process, over a real Unix socket: protocol behaviour, errors, events."""

from __future__ import annotations

import json
import logging
import socket
import struct
from typing import Any

import pytest
import trio

from maestrod import dispatch
from shared import errors
from shared.jsonrpc import MAX_LINE
from shared.methods import CATALOGUE
from tests.conftest import Daemon, RawClient


async def test_ping_version_methods(client: RawClient) -> None:
    assert await client.call("system.ping") == "pong"
    v = await client.call("system.version")
    assert v["protocol"] >= 1 and v["daemon"]
    methods = await client.call("system.methods")
    names = {m["name"] for m in methods}
    assert {"system.ping", "task.create", "events.replay"} <= names
    assert names == set(CATALOGUE) & set(dispatch.HANDLERS)
    for m in methods:
        assert m["description"] and isinstance(m["params"], list)
    create = next(m for m in methods if m["name"] == "task.create")
    prio = next(p for p in create["params"] if p["name"] == "priority")
    assert prio["type"] == "low|medium|high|critical" and prio["required"] is False


def test_every_catalogued_method_has_a_handler() -> None:
    import maestrod.handlers  # noqa: F401

    assert set(CATALOGUE) == set(dispatch.HANDLERS)


async def test_parse_error_keeps_connection(client: RawClient) -> None:
    await client.send_raw(b'{"jsonrpc": "2.0", "id": 1, "method": "system.ping"\n')
    resp = await client.recv()
    assert resp["id"] is None and resp["error"]["code"] == errors.PARSE_ERROR
    assert await client.call("system.ping") == "pong"


async def test_invalid_request(client: RawClient) -> None:
    await client.send({"jsonrpc": "2.0", "id": 5, "method": 12})
    resp = await client.recv()
    assert resp["id"] == 5 and resp["error"]["code"] == errors.INVALID_REQUEST


async def test_method_not_found_names_the_method(client: RawClient) -> None:
    resp = await client.request("task.frobnicate")
    assert resp["error"]["code"] == errors.METHOD_NOT_FOUND
    assert "task.frobnicate" in resp["error"]["message"]


async def test_invalid_params_names_every_field(client: RawClient) -> None:
    resp = await client.request("task.create", {"project": 1, "priority": "urgent", "depends_on": "t-1",
                                                "bogus": True})
    err = resp["error"]
    assert err["code"] == errors.INVALID_PARAMS
    msg = err["message"]
    assert 'priority: expected one of low|medium|high|critical, got "urgent"' in msg
    assert "project: expected string, got number" in msg
    assert "title: required field missing" in msg
    assert "depends_on: expected array, got string" in msg
    assert "bogus: unknown field" in msg
    resp = await client.request("task.list", [1, 2])
    assert resp["error"]["code"] == errors.INVALID_PARAMS


async def test_no_silent_coercion(client: RawClient, short_tmp: Any) -> None:
    resp = await client.request("project.create", {"name": 1, "dir": str(short_tmp)})
    assert resp["error"]["code"] == errors.INVALID_PARAMS
    resp = await client.request("events.replay", {"since": "3"})
    assert "since: expected integer, got string" in resp["error"]["message"]
    resp = await client.request("task.delete", {"id": "t-1", "cascade": 1})
    assert "cascade: expected boolean, got number" in resp["error"]["message"]


async def test_internal_error_is_logged_not_leaked(client: RawClient, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    async def boom(ctx: Any, p: Any) -> Any:
        raise RuntimeError("secret detail /etc/shadow")

    monkeypatch.setitem(dispatch.HANDLERS, "system.ping", boom)
    with caplog.at_level(logging.ERROR):
        resp = await client.request("system.ping")
    assert resp["error"]["code"] == errors.INTERNAL_ERROR
    assert "secret" not in json.dumps(resp)
    assert any("secret detail" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    monkeypatch.undo()
    assert await client.call("system.ping") == "pong"


async def test_notifications_get_no_response(client: RawClient) -> None:
    await client.send({"jsonrpc": "2.0", "method": "system.ping"})
    await client.send({"jsonrpc": "2.0", "method": "no.such.method"})
    resp = await client.request("system.version")
    assert "result" in resp


async def test_batch(client: RawClient) -> None:
    await client.send([
        {"jsonrpc": "2.0", "id": 1, "method": "system.ping"},
        {"jsonrpc": "2.0", "method": "system.ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        {"foo": 1},
    ])
    resp = await client.recv()
    assert isinstance(resp, list) and len(resp) == 3
    assert resp[0] == {"jsonrpc": "2.0", "id": 1, "result": "pong"}
    assert resp[1]["error"]["code"] == errors.METHOD_NOT_FOUND
    assert resp[2]["error"]["code"] == errors.INVALID_REQUEST
    # A batch of notifications only: nothing comes back.
    await client.send([{"jsonrpc": "2.0", "method": "system.ping"}])
    assert await client.call("system.ping") == "pong"


async def test_oversized_line_gets_error_and_clean_close(daemon: Daemon) -> None:
    c = await daemon.connect()
    big = b'{"jsonrpc":"2.0","id":1,"method":"system.ping","params":{"x":"' + b"a" * MAX_LINE + b'"}}\n'

    async def sender() -> None:
        try:
            await c.send_raw(big)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the server closed while we were still sending: expected

    async with trio.open_nursery() as n:
        n.start_soon(sender)
        resp = await c.recv()
        assert resp["error"]["code"] == errors.TOO_LARGE
        with pytest.raises((EOFError, trio.BrokenResourceError)):
            while True:
                await c.recv()
        n.cancel_scope.cancel()
    other = await daemon.connect()
    assert await other.call("system.ping") == "pong"


async def test_not_found_and_conflict(client: RawClient, short_tmp: Any) -> None:
    resp = await client.request("project.get", {"id": "p-nothere"})
    assert resp["error"]["code"] == errors.NOT_FOUND
    await client.call("project.create", {"name": "a", "dir": str(short_tmp)})
    resp = await client.request("project.create", {"name": "a", "dir": str(short_tmp)})
    assert resp["error"]["code"] == errors.CONFLICT


async def test_forbidden_on_bad_token(client: RawClient) -> None:
    resp = await client.request("system.auth", {"token": "not-a-token"})
    assert resp["error"]["code"] == errors.FORBIDDEN
    resp = await client.request("project.list")
    assert resp["error"]["code"] == errors.FORBIDDEN
    assert "token" in resp["error"]["message"]


async def test_unavailable_while_shutting_down(daemon: Daemon, client: RawClient) -> None:
    daemon.app.shutting_down.set()
    resp = await client.request("project.list")
    assert resp["error"]["code"] == errors.UNAVAILABLE
    assert await client.call("system.ping") == "pong"


async def test_server_survives_connection_reset(daemon: Daemon) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(daemon.socket_path))
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"system.methods"}\n' * 50)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    c = await daemon.connect()
    assert await c.call("system.ping") == "pong"


async def test_other_uid_is_refused(daemon: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    daemon.app.allowed_uid = 4242424
    c = await daemon.connect()
    with caplog.at_level(logging.WARNING):
        await c.send({"jsonrpc": "2.0", "id": 1, "method": "system.ping"})
        with pytest.raises((EOFError, trio.BrokenResourceError)):
            await c.recv()
    assert any("refused a connection from uid" in r.getMessage() for r in caplog.records)


async def test_events_subscribe_filter_and_replay(daemon: Daemon, short_tmp: Any) -> None:
    sub = await daemon.connect()
    r = await sub.call("events.subscribe", {"topics": ["task."]})
    start = r["last_seq"]
    actor = await daemon.connect()
    await actor.call("project.create", {"name": "p", "dir": str(short_tmp)})
    t = await actor.call("task.create", {"project": "p", "title": "x"})
    ev = await sub.next_notification()
    assert ev["method"] == "event"
    e = ev["params"]
    assert e["topic"] == "task.created" and e["data"]["task"]["id"] == t["id"] and e["seq"] > start
    await actor.call("task.update", {"id": t["id"], "status": "in_progress"})
    ev2 = (await sub.next_notification())["params"]
    assert ev2["topic"] == "task.status_changed" and ev2["seq"] > e["seq"]
    rep = await actor.call("events.replay", {"since": start})
    topics = [x["topic"] for x in rep["events"]]
    assert topics == ["project.created", "task.created", "task.status_changed"]
    seqs = [x["seq"] for x in rep["events"]]
    assert seqs == sorted(seqs) and rep["gap"] is False
    only_tasks = await actor.call("events.replay", {"since": start, "topics": ["task."], "limit": 1})
    assert [x["topic"] for x in only_tasks["events"]] == ["task.created"] and only_tasks["more"] is True


async def test_replay_reports_a_gap_after_pruning(daemon: Daemon, client: RawClient) -> None:
    bus = daemon.app.bus
    bus.retention = 5
    for i in range(20):
        bus.publish("test.tick", {"i": i})
    bus.prune()
    rep = await client.call("events.replay", {"since": 1})
    assert rep["gap"] is True and len(rep["events"]) == 5


async def test_slow_subscriber_is_dropped_others_unaffected(daemon: Daemon) -> None:
    daemon.app.config.events.subscriber_max_bytes = 256 * 1024
    slow = await daemon.connect()
    await slow.call("events.subscribe", {"topics": ["bulk."]})
    fast = await daemon.connect()
    await fast.call("events.subscribe", {"topics": ["bulk."]})
    payload = "x" * 65536
    received = 0
    progress = trio.Event()

    async def read_fast() -> None:
        nonlocal received, progress
        while received < 200:
            await fast.next_notification()
            received += 1
            progress.set()

    async with trio.open_nursery() as n:
        n.start_soon(read_fast)
        for i in range(200):
            daemon.app.bus.publish("bulk.item", {"i": i, "pad": payload})
            # A reading subscriber keeps pace; the slow one never reads at all.
            while received <= i:
                progress = trio.Event()
                await progress.wait()
    assert received == 200
    assert all(s.topics != ("bulk.",) or not s.dropped for s in daemon.app.bus._subs)
    assert len([s for s in daemon.app.bus._subs if s.topics == ("bulk.",)]) == 1
    # The slow subscriber's connection was closed: reading drains what was sent (in order), then the
    # notice naming the last seq written, then the end.
    seqs: list[int] = []
    told: list[dict[str, Any]] = []
    with pytest.raises((EOFError, trio.BrokenResourceError)):
        while True:
            msg = await slow.recv()
            assert not told, "nothing after the notice"
            if msg["method"] == "event":
                seqs.append(msg["params"]["seq"])
            else:
                assert msg["method"] == "events.dropped"
                told.append(msg["params"])
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and 0 < len(seqs) < 200
    assert told[0]["reason"] == "behind" and told[0]["since"] == seqs[-1]


async def test_half_closed_subscriber_keeps_receiving(daemon: Daemon, short_tmp: Any) -> None:
    """`socat -t` style: send subscribe, shut down the write side, keep reading events."""
    sub = await daemon.connect()
    await sub.send({"jsonrpc": "2.0", "id": 1, "method": "events.subscribe", "params": {"topics": ["project."]}})
    await sub.stream.send_eof()
    assert (await sub.recv())["id"] == 1
    other = await daemon.connect()
    await other.call("project.create", {"name": "hc", "dir": str(short_tmp)})
    ev = await sub.next_notification()
    assert ev["params"]["topic"] == "project.created"
