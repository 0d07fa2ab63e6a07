"""RPC round trips on one connection: `system.ping` and `task.get` through maestrod, against a
bare NDJSON echo server (trio, same kind of Unix socket) measured in the same run.

Prints p50, p99 and requests/s for each, and the ratio of maestrod's `system.ping` rate to the
echo's. Goal (issue 2): >= 0.8x.
Run: python bench/bench_rpc.py [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import BIN, running_daemon  # noqa: E402
from _stats import pct  # noqa: E402


def measure(path: str, lines: list[bytes]) -> tuple[float, float, float]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("rb")
    for line in lines[:500]:  # warm-up
        s.sendall(line)
        f.readline()
    lat = []
    t_start = time.perf_counter()
    for line in lines:
        t0 = time.perf_counter()
        s.sendall(line)
        resp = f.readline()
        lat.append(time.perf_counter() - t0)
        if b'"error"' in resp:
            raise SystemExit(f"error response: {resp!r}")
    total = time.perf_counter() - t_start
    s.close()
    return statistics.median(lat) * 1e6, pct(lat, 0.99) * 1e6, len(lines) / total


def req(i: int, method: str, params: dict | None = None) -> bytes:
    msg = {"jsonrpc": "2.0", "id": i, "method": method}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg).encode() + b"\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()
    with running_daemon() as (sock, env):
        work = sock.parent
        subprocess.run([str(BIN / "maestroctl"), "project", "create", "--name", "P", "--dir", str(work)],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        out = subprocess.run([str(BIN / "maestroctl"), "--json", "task", "create", "--project", "P", "--title",
                              "bench"], env=env, check=True, capture_output=True)
        tid = json.loads(out.stdout)["id"]
        echo_path = str(work / "echo.sock")
        echo = subprocess.Popen([sys.executable, str(Path(__file__).parent / "_echo_server.py"), echo_path],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
            pings = [req(i, "system.ping") for i in range(args.n)]
            gets = [req(i, "task.get", {"id": tid}) for i in range(args.n)]
            results = {}
            # Interleave rounds so background load hits both sides alike.
            for _ in range(2):
                for name, path, lines in (("echo", echo_path, pings), ("system.ping", str(sock), pings),
                                          ("task.get", str(sock), gets)):
                    r = measure(path, lines)
                    if name not in results or r[2] > results[name][2]:
                        results[name] = r
        finally:
            echo.terminate()
            echo.wait()
    for name, (p50, p99, rate) in results.items():
        print(f"{name:<12} p50 {p50:7.1f} us   p99 {p99:7.1f} us   {rate:9.0f} req/s")
    ratio = results["system.ping"][2] / results["echo"][2]
    print(f"system.ping rate / bare echo rate = {ratio:.2f}x   (goal >= 0.80x)")
    print(f"task.get    rate / bare echo rate = {results['task.get'][2] / results['echo'][2]:.2f}x")


if __name__ == "__main__":
    main()
