"""The web feed against the Unix socket, on one maestrod, measured in the same run with the same trio client:

* ``system.ping`` round trips on one connection: WebSocket (trio-websocket) vs NDJSON over the socket;
* connecting and getting the first answer: a WebSocket (HTTP head through h11, the token gate, the peer's
  pid found by walking /proc/net/tcp and /proc/*/fd, the handshake) vs a socket connection (SO_PEERCRED).

No goal is set in the issue; the figures say what the browser path costs next to the agents' path.
Run: python bench/bench_web.py [--n 5000] [--connects 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import running_daemon  # noqa: E402
from _report import Result, print_table, spread_of  # noqa: E402
from _stats import pct  # noqa: E402

PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "system.ping"})


async def _socket_pings(path: Path, n: int) -> list[float]:
    stream = await trio.open_unix_socket(str(path))
    line = PING.encode() + b"\n"
    lat: list[float] = []
    async with stream:
        for _ in range(n):
            t0 = time.perf_counter()
            await stream.send_all(line)
            buf = b""
            while not buf.endswith(b"\n"):
                buf += await stream.receive_some(65536)
            lat.append(time.perf_counter() - t0)
    return lat


async def _ws_pings(url: str, n: int) -> list[float]:
    lat: list[float] = []
    async with open_websocket_url(url) as ws:
        for _ in range(n):
            t0 = time.perf_counter()
            await ws.send_message(PING)
            await ws.get_message()
            lat.append(time.perf_counter() - t0)
    return lat


async def _socket_connects(path: Path, n: int) -> list[float]:
    lat: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        stream = await trio.open_unix_socket(str(path))
        async with stream:
            await stream.send_all(PING.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                buf += await stream.receive_some(65536)
        lat.append(time.perf_counter() - t0)
    return lat


async def _ws_connects(url: str, n: int) -> list[float]:
    lat: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with open_websocket_url(url) as ws:
            await ws.send_message(PING)
            await ws.get_message()
        lat.append(time.perf_counter() - t0)
    return lat


def run(quick: bool = False, n: int = 5000, connects: int = 200) -> list[Result]:
    if quick:
        n, connects = 200, 10
    with tempfile.TemporaryDirectory(prefix="mbw-") as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text("[web]\nport = 0\n")
        with running_daemon("--config", str(config)) as (sock, _env):
            port = int(sock.with_name(f"{sock.stem}.web-port").read_text())
            token = sock.with_name(f"{sock.stem}.web-token").read_text().strip()
            url = f"ws://127.0.0.1:{port}/rpc?token={token}"

            async def measure() -> dict[str, list[float]]:
                best: dict[str, list[float]] = {}
                # Interleaved rounds, best rate kept: background load hits both sides alike.
                for _ in range(2):
                    for name, sample in (("socket ping", _socket_pings(sock, n)), ("ws ping", _ws_pings(url, n)),
                                         ("socket connect", _socket_connects(sock, connects)),
                                         ("ws connect", _ws_connects(url, connects))):
                        lat = await sample
                        if name not in best or sum(lat) < sum(best[name]):
                            best[name] = lat
                return best

            got = trio.run(measure)
    for name, lat in got.items():
        print(f"{name:<15} p50 {statistics.median(lat) * 1e6:8.1f} us   p99 {pct(lat, 0.99) * 1e6:8.1f} us   "
              f"{len(lat) / sum(lat):9.0f} /s")
    ws_rate = len(got["ws ping"]) / sum(got["ws ping"])
    sock_rate = len(got["socket ping"]) / sum(got["socket ping"])
    ws_conn = statistics.median(got["ws connect"]) * 1e3
    sock_conn = statistics.median(got["socket connect"]) * 1e3
    return [
        Result("system.ping over the WebSocket (one connection)", ws_rate, "req/s", floor=sock_rate,
               floor_label="same over the Unix socket", runs=len(got["ws ping"]),
               spread=spread_of([1e6 * x for x in got["ws ping"]], "us"),
               note="ratio = WebSocket rate / socket rate (higher is better); trio client on both"),
        Result("WebSocket connect + first answer (h11, gate, /proc peer lookup, handshake)", ws_conn, "ms",
               floor=sock_conn, floor_label="Unix socket connect + first answer", runs=len(got["ws connect"]),
               spread=spread_of([1e3 * x for x in got["ws connect"]], "ms")),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--connects", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print_table(run(a.quick, a.n, a.connects))
