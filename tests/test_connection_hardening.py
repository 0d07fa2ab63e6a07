"""Connections under pressure (issue 11 items 2, 11, 12): who gets dropped, input memory, answer order.

Before: with two clients writing at full speed every subscriber, even one reading as fast as it could, was
dropped after 71-84 events (a count-bounded buffer a burst fills); nothing bounded the input buffered
across connections; session.stop/kill answers overtook later requests on the same connection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from maestrod.events import Subscription
from shared import errors
from tests.conftest import MAESTROCTL, Daemon, RawClient, maestroctl_env
from tests.session_support import _project, _spawn

# --- the outbox alone (sans-I/O) ------------------------------------------------------------------------------


def test_outbox_drops_by_bytes_not_by_count() -> None:
    sub = Subscription(("",), max_bytes=1000, stall_seconds=5.0, since=7)
    for seq in range(8, 108):  # a burst of 100 small events fits: no count limit
        assert sub.offer(seq, b"x" * 9 + b"\n", now=1.0)
    data, last = sub.take(limit=450)
    assert len(data) == 450 and last == 52
    sub.sent(last, now=2.0)
    assert sub.since == 52 and sub.stall_deadline() == 7.0  # progress restarts the clock
    assert not sub.offer(200, b"y" * 600, now=2.0)  # 550 pending + 600 > 1000
    assert sub.dropped == "behind" and sub.dropped_bytes == 550 and not sub.pending and sub.since == 52


def test_outbox_stall_clock_runs_only_while_output_waits() -> None:
    sub = Subscription((), max_bytes=1 << 20, stall_seconds=2.0, since=0)
    assert sub.stall_deadline() == float("inf")
    sub.offer(1, b"a\n", now=10.0)
    assert sub.stall_deadline() == 12.0
    _data, last = sub.take(limit=1 << 16)
    sub.sent(last, now=11.0)
    assert sub.stall_deadline() == float("inf")  # nothing waits: an idle subscriber is never stalled
    sub.offer(2, b"b\n", now=30.0)
    assert sub.stall_deadline() == 32.0


# --- real daemon, real sockets --------------------------------------------------------------------------------


async def test_fast_subscribers_keep_up_with_two_writers_at_full_speed(daemon: Daemon, short_tmp: Path) -> None:
    """Two writers at full speed; a raw subscriber and a real `maestroctl events watch` that read: never
    dropped, every event once, in order."""
    setup = await daemon.connect()
    project = (await setup.call("project.create", {"name": "w", "dir": str(short_tmp)}))["id"]
    sub = await daemon.connect()
    start = (await sub.call("events.subscribe", {"topics": ["task."]}))["last_seq"]
    per_writer = 1500
    watch = await trio.lowlevel.open_process(
        [MAESTROCTL, "--json", "events", "watch", "--topic", "task.", "--since", str(start)],
        env=maestroctl_env(daemon.socket_path), stdout=-1, stderr=-1)
    try:
        got: list[int] = []
        told: list[Any] = []

        async def read_sub() -> None:
            while len(got) < 2 * per_writer:
                msg = await sub.next_notification()
                if msg["method"] == "event":
                    got.append(msg["params"]["seq"])
                else:
                    told.append(msg)
                    return

        async def write(name: str) -> None:
            w = await daemon.connect()
            batch = 50
            for i in range(0, per_writer, batch):  # pipelined: as fast as the daemon answers
                for j in range(batch):
                    await w.send({"jsonrpc": "2.0", "id": i + j, "method": "task.create",
                                  "params": {"project": project, "title": f"{name} {i + j}"}})
                for _ in range(batch):
                    assert "result" in await w.recv_response()

        with trio.fail_after(60):
            async with trio.open_nursery() as n:
                n.start_soon(read_sub)
                n.start_soon(write, "a")
                n.start_soon(write, "b")
            assert not told and got == list(range(start + 1, start + 1 + 2 * per_writer))
            # The watch printed the same events, once each, and said nothing on stderr.
            assert watch.stdout is not None and watch.stderr is not None
            out = b""
            while out.count(b"\n") < 2 * per_writer:
                out += await watch.stdout.receive_some(1 << 20)
            watch.terminate()
            err = b""
            async for chunk in watch.stderr:
                err += chunk
    finally:
        watch.kill()
        await watch.wait()
        for pipe in (watch.stdout, watch.stderr):
            if pipe is not None:
                await pipe.aclose()
    seqs = [json.loads(line)["seq"] for line in out.splitlines()]
    assert seqs == got and err == b""
    assert all(not s.dropped for s in daemon.app.bus._subs)


async def test_a_subscriber_that_stops_reading_is_dropped_after_the_stall_time_and_told(daemon: Daemon) -> None:
    daemon.app.config.events.subscriber_stall_seconds = 0.3
    stalled = await daemon.connect()
    await stalled.call("events.subscribe", {"topics": ["bulk."]})
    with trio.fail_after(20):
        i = 0
        while any(not s.dropped for s in daemon.app.bus._subs) and daemon.app.bus._subs:
            daemon.app.bus.publish("bulk.item", {"i": i, "pad": "z" * 2000})
            i += 1
            await trio.sleep(0.001)
        # Everything written reaches the client in order, then the notice, then the end.
        seqs: list[int] = []
        while True:
            try:
                msg = await stalled.recv()
            except EOFError:
                break
            if msg["method"] == "event":
                seqs.append(msg["params"]["seq"])
            else:
                notice = msg["params"]
    assert notice["reason"] == "stalled" and notice["since"] == seqs[-1] and notice["pending_bytes"] > 0
    assert seqs == list(range(seqs[0], seqs[-1] + 1))


async def test_input_memory_bound_refuses_big_lines_keeps_connections_and_daemon(daemon: Daemon) -> None:
    """Item 11: past [connections] input_total_bytes a line over 64 KiB gets -32005 (id null) and is skipped;
    its connection stays usable, the others are untouched, short requests always pass."""
    limit = 1 << 20
    daemon.app.connections.input.limit = limit
    big = await daemon.connect()
    await big.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"system.ping","params":{"pad":"' + b"a" * 700_000)
    other = await daemon.connect()
    with trio.fail_after(10):
        while daemon.app.connections.input.total < 700_000:  # the first line is buffered
            await trio.sleep(0.01)
        await other.send_raw(b'{"jsonrpc":"2.0","id":2,"method":"system.ping","params":{"pad":"'
                             + b"b" * 500_000)
        refused = await other.recv()
        assert refused["id"] is None and refused["error"]["code"] == errors.TOO_LARGE
        assert "input_total_bytes" in refused["error"]["message"]
        # The rest of the refused line is skipped; the connection is still usable.
        await other.send_raw(b"b" * 300_000 + b'"}}\n')
        assert await other.call("system.ping") == "pong"
        # A third client's short requests pass even now.
        third = await daemon.connect()
        assert await third.call("system.ping") == "pong"
        # The first line, under the bound when it grew, completes normally (unknown param: -32602).
        await big.send_raw(b'"}}\n')
        answer = await big.recv()
        assert answer["id"] == 1 and answer["error"]["code"] == errors.INVALID_PARAMS
        while daemon.app.connections.input.total:  # given back once the line is consumed
            await trio.sleep(0.01)
    assert await big.call("system.ping") == "pong"


async def test_stop_is_answered_in_order(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    """Item 12: a session.stop that takes a while is answered before the ping sent after it."""
    daemon.app.config.sessions.stop_timeout = 0.5
    await _project(client, short_tmp)
    # Ignores SIGHUP, so the stop needs SIGTERM after stop_timeout.
    s = await _spawn(client, ["sh", "-c", "trap '' HUP; echo ready; while :; do sleep 0.05; done"])
    await client.send_raw(
        json.dumps({"jsonrpc": "2.0", "id": "stop", "method": "session.stop", "params": {"id": s["id"]}}).encode()
        + b"\n" + json.dumps({"jsonrpc": "2.0", "id": "ping", "method": "system.ping"}).encode() + b"\n")
    with trio.fail_after(15):
        first, second = await client.recv_response(), await client.recv_response()
    assert first["id"] == "stop" and first["result"]["status"] == "exited"
    assert second["id"] == "ping"


async def test_waits_end_with_retry_on_shutdown(daemon: Daemon, client: RawClient) -> None:
    """A long wait in progress when the daemon stops is answered -32006 {retry: true} (nothing was done)."""
    await client.send({"jsonrpc": "2.0", "id": 1, "method": "mail.wait", "params": {}})
    with trio.fail_after(10):
        while daemon.app.connections.waiting == 0:
            await trio.sleep(0.01)
        daemon.app.shutting_down.set()
        answer = await client.recv_response()
        await daemon.app.connections.wait_answered()
    assert answer["error"]["code"] == errors.UNAVAILABLE and answer["error"]["data"] == {"retry": True}
