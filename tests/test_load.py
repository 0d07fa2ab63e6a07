"""Load (issue 11, "Keep them closed"): 50 concurrent clients with a mixed workload against a real maestrod,
plus 10 subscribers that read and one that never does, for a bounded time.

Asserts: no request fails, the stalled subscriber is dropped and told (``events.dropped`` with the seq to
resume from, then the end of its connection), the reading ones never are and see every event exactly once,
in order; the daemon still answers. Prints requests/s and p50/p99 latency (not asserted: speed is measured,
not tested; bench/ has the benchmarks).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from tests.test_cli import DaemonProcess


@pytest.fixture
def dp(short_tmp: Path) -> Iterator[DaemonProcess]:
    """A real maestrod subprocess (started by the test), killed at the end if still running."""
    d = DaemonProcess(short_tmp)
    yield d
    for proc in d.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    d.notify.close()

CLIENTS = 50
READERS = 10
#: Seconds of load (the whole test takes about twice this).
SECONDS = 12.0
STALL_SECONDS = 2.0


class Conn:
    """One NDJSON connection; answers are matched in order (every call here is answered in order)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""
        self.ids = itertools.count(1)

    async def line(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = await self.stream.receive_some(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        rid = next(self.ids)
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        await self.stream.send_all(orjson.dumps(msg) + b"\n")
        while True:
            answer = orjson.loads(await self.line())
            if answer.get("id") == rid:
                if "error" in answer:
                    raise AssertionError(f"{method} failed under load: {answer['error']}")
                return answer["result"]


async def _connect(path: Path) -> Conn:
    return Conn(await trio.open_unix_socket(str(path)))


async def test_load_mixed_clients_readers_and_a_stalled_subscriber(dp: DaemonProcess,
                                                                   short_tmp: Path) -> None:
    config = dp.root / "config" / "maestro"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(f"[events]\nsubscriber_stall_seconds = {STALL_SECONDS}\n")
    dp.start()
    dp.wait_ready()
    path = dp.socket
    setup = await _connect(path)
    project = (await setup.call("project.create", {"name": "load", "dir": str(short_tmp)}))["id"]
    seed = [(await setup.call("task.create", {"project": project, "title": f"seed {i}"}))["id"]
            for i in range(200)]

    latencies: list[float] = []
    stop = trio.Event()

    async def client(n: int) -> None:
        conn = await _connect(path)
        rng = random.Random(n)
        mine: list[str] = []
        async with conn.stream:
            await _mix(conn, rng, mine)

    async def _mix(conn: Conn, rng: random.Random, mine: list[str]) -> None:
        n = rng.randrange(1000)
        while not stop.is_set():
            pick = rng.random()
            t0 = time.perf_counter()
            if pick < 0.2:
                mine.append((await conn.call("task.create", {"project": project, "title": f"c{n}"}))["id"])
            elif pick < 0.4:
                await conn.call("task.get", {"id": rng.choice(seed)})
            elif pick < 0.5 and mine:
                await conn.call("task.update", {"id": rng.choice(mine), "priority": rng.choice(["low", "high"])})
            elif pick < 0.6:
                await conn.call("task.list", {"project": project, "limit": 50})
            elif pick < 0.7:
                await conn.call("mail.send", {"to": ["human"], "subject": f"s{n}", "body": "load"})
            elif pick < 0.8:
                await conn.call("mail.inbox", {"limit": 20})
            elif pick < 0.9:
                await conn.call("events.replay", {"since": 0, "limit": 50})
            else:
                await conn.call("system.ping")
            latencies.append(time.perf_counter() - t0)

    readers: list[list[int]] = [[] for _ in range(READERS)]
    reader_starts: list[int] = []
    reader_notices: list[Any] = []

    async def reader(seqs: list[int], task_status: trio.TaskStatus[None]) -> None:
        conn = await _connect(path)
        async with conn.stream:
            reader_starts.append((await conn.call("events.subscribe", {"topics": []}))["last_seq"])
            task_status.started()
            while True:  # until cancelled, once every reader has the last event
                msg = orjson.loads(await conn.line())
                if msg.get("method") == "event":
                    seqs.append(msg["params"]["seq"])
                else:
                    reader_notices.append(msg)
                    return

    stalled = await _connect(path)
    await stalled.call("events.subscribe", {"topics": []})
    t_start = time.perf_counter()
    with trio.fail_after(SECONDS + 40):
        async with trio.open_nursery() as n:
            for seqs in readers:
                await n.start(reader, seqs)
            async with trio.open_nursery() as load:
                for i in range(CLIENTS):
                    load.start_soon(client, i)
                await trio.sleep(SECONDS)
                stop.set()
            elapsed = time.perf_counter() - t_start
            final_seq = (await setup.call("events.replay", {"since": 0, "limit": 1}))["last_seq"]
            while any(not seqs or seqs[-1] < final_seq for seqs in readers) and not reader_notices:
                await trio.sleep(0.05)
            n.cancel_scope.cancel()
        # The stalled subscriber: what was written, in order, then the notice, then the end.
        got: list[int] = []
        notice: dict[str, Any] | None = None
        while True:
            try:
                msg = orjson.loads(await stalled.line())
            except EOFError:
                break
            if msg["method"] == "event":
                got.append(msg["params"]["seq"])
            else:
                notice = msg
    assert not reader_notices, reader_notices[:1]
    for seqs in readers:
        assert seqs and seqs[0] <= max(reader_starts) + 1, "a reader missed the first events"
        assert seqs == list(range(seqs[0], final_seq + 1)), "a reader missed or repeated events"
    assert notice is not None and notice["method"] == "events.dropped", notice
    assert notice["params"]["reason"] in ("stalled", "behind") and notice["params"]["since"] == got[-1]
    assert got == list(range(got[0], got[-1] + 1)) and got[-1] < final_seq
    assert await setup.call("system.ping") == "pong"
    await setup.stream.aclose()
    await stalled.stream.aclose()
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(f"\nload: {CLIENTS} clients + {READERS} readers + 1 stalled, {len(latencies)} requests in "
          f"{elapsed:.1f} s = {len(latencies) / elapsed:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
          f"{final_seq - min(reader_starts)} events to each reader; the stalled one dropped "
          f"({notice['params']['reason']}) after {len(got)} events")
