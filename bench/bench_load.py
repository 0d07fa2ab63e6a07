"""Performance under load: 50 concurrent clients against one maestrod, a light mix against a full mix.

The light mix is what agents do most (ping, task.get, project.list, mail.inbox, session.list,
task.history, a task.update write); the full mix replaces one request in five with `task.list` or
`task.ready` on a project of a few hundred tasks (with dependencies and subtasks). Both run in the
same daemon, interleaved, each for a fixed time; clients are closed-loop (send, wait, send), spread
over several processes so that the client side is not what is measured.

Prints req/s and p50/p99 for each mix and the ratio light/full. Goal (issue 11): full mix within 2x.
Run: python bench/bench_load.py [--clients 50] [--seconds 5] [--tasks 300] [--rounds 2] [--profile FILE]
  --profile FILE runs the daemon under cProfile (full mix only) and writes its stats to FILE.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import running_daemon  # noqa: E402
from _proc import cpu_seconds  # noqa: E402
from _report import Result, goal_met, print_table, spread_of  # noqa: E402
from _stats import pct  # noqa: E402

PROCESSES = 5


class Conn:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb", buffering=1 << 20)  # a 100 KB answer in one or two reads
        self.next_id = 0

    def send(self, method: str, params: dict[str, Any] | None) -> bytes:
        self.next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return self.file.readline()

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        resp = json.loads(self.send(method, params))
        if "error" in resp:
            raise SystemExit(f"{method} failed: {resp['error']}")
        return resp["result"]

    def call_unparsed(self, method: str, params: dict[str, Any] | None) -> None:
        """The load loop: the client's own CPU is not what is measured, so a 100 KB answer is not decoded;
        maestrod writes ``"result"`` or ``"error"`` right after the id."""
        line = self.send(method, params)
        if b'"result":' not in line[:64]:
            raise SystemExit(f"{method} failed: {line[:500]!r}")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def setup(path: str, work: Path, n_tasks: int) -> dict[str, Any]:
    """A project of ``n_tasks`` tasks (some subtasks, some dependencies), a few mails."""
    c = Conn(path)
    pid = c.call("project.create", {"name": "load", "dir": str(work)})["id"]
    rng = random.Random(7)
    ids: list[str] = []
    for i in range(n_tasks):
        params: dict[str, Any] = {"project": pid, "title": f"task {i} " + "x" * rng.randrange(10, 60),
                                  "description": "d" * rng.randrange(0, 200),
                                  "priority": rng.choice(["low", "medium", "high", "critical"])}
        if ids and i % 4 == 0:
            params["parent"] = rng.choice(ids)
        if len(ids) > 3 and i % 3 == 0:
            params["depends_on"] = rng.sample(ids, 2)
        ids.append(c.call("task.create", params)["id"])
    for i in range(1, n_tasks, 3):  # a third (none with dependencies) completed, so task.ready has something to show
        c.call("task.update", {"id": ids[i], "status": "completed"})
    for i in range(20):
        c.call("mail.send", {"to": ["human"], "subject": f"s{i}", "body": "b" * 100})
    daemon_pid = c.call("system.version")["pid"]
    c.close()
    return {"project": pid, "tasks": ids, "pid": daemon_pid}


def light_request(rng: random.Random, ctx: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    r = rng.random()
    tid = rng.choice(ctx["tasks"])
    if r < 0.25:
        return "system.ping", None
    if r < 0.55:
        return "task.get", {"id": tid}
    if r < 0.65:
        return "project.list", None
    if r < 0.75:
        return "mail.inbox", {"limit": 20}
    if r < 0.82:
        return "session.list", None
    if r < 0.90:
        return "task.history", {"id": tid, "limit": 20}
    return "task.update", {"id": tid, "description": f"touched {rng.random()}"}


def full_request(rng: random.Random, ctx: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    r = rng.random()
    if r < 0.10:
        return "task.list", {"project": ctx["project"]}
    if r < 0.20:
        return "task.ready", {"project": ctx["project"]}
    return light_request(rng, ctx)


def client_process(args: tuple[str, str, dict[str, Any], int, float, float, int]) -> list[float]:
    """One process running ``n`` closed-loop clients (threads) from ``start`` until ``deadline`` (time.time())."""
    path, mix, ctx, n, start, deadline, seed = args
    pick = light_request if mix == "light" else full_request
    lat: list[list[float]] = [[] for _ in range(n)]

    def run(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        c = Conn(path)
        out = lat[i]
        time.sleep(max(0.0, start - time.time()))
        while time.time() < deadline:
            method, params = pick(rng, ctx)
            t0 = time.perf_counter()
            c.call_unparsed(method, params)
            out.append(time.perf_counter() - t0)
        c.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for per in lat for x in per]


def measure(pool: Any, path: str, mix: str, ctx: dict[str, Any], clients: int, seconds: float,
            seed: int) -> tuple[float, float, float, float]:
    """(req/s, p50 ms, p99 ms, daemon CPU us per request) of ``clients`` closed-loop clients running ``mix``
    for ``seconds``."""
    per = [clients // PROCESSES + (1 if i < clients % PROCESSES else 0) for i in range(PROCESSES)]
    start = time.time() + 0.3  # every client connects first, then all start together
    deadline = start + seconds
    jobs = [(path, mix, ctx, n, start, deadline, seed * 100 + i) for i, n in enumerate(per) if n]
    cpu0 = cpu_seconds(ctx["pid"])
    results = pool.map(client_process, jobs)
    cpu = cpu_seconds(ctx["pid"]) - cpu0
    lat = [x for r in results for x in r]
    return len(lat) / seconds, pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3, cpu / len(lat) * 1e6


def run(quick: bool = False, clients: int = 50, seconds: float = 5.0, tasks: int = 300, rounds: int = 2,
        profile: str | None = None) -> list[Result]:
    """The light and the full mix, ``rounds`` times each, interleaved; the best round of each counts."""
    if quick:
        clients, seconds, tasks, rounds = 5, 0.5, 30, 1
    command = None
    if profile:
        command = [sys.executable, "-m", "cProfile", "-o", str(Path(profile).resolve()), "-m", "maestrod"]
    samples: dict[str, list[tuple[float, float, float, float]]] = {}
    with running_daemon(command=command) as (sock, _env):
        ctx = setup(str(sock), sock.parent, tasks)
        mixes = ["full"] if profile else ["light", "full"]
        with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
            for rnd in range(rounds):  # interleaved, so background load hits both mixes alike
                for mix in mixes:
                    samples.setdefault(mix, []).append(
                        measure(pool, str(sock), mix, ctx, clients, seconds, rnd))
    best = {mix: max(runs) for mix, runs in samples.items()}
    print(f"{clients} clients, {tasks} tasks in the project, best of {rounds} x {seconds:g} s, "
          f"{os.cpu_count()} CPUs")
    for mix, (rate, p50, p99, cpu) in best.items():
        print(f"{mix + ' mix':<10} {rate:8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
              f"daemon CPU {cpu:6.1f} us/request")
    if "light" not in best:
        return []
    light, full = best["light"], best["full"]
    ratio = light[0] / full[0]
    print(f"light/full rate = {ratio:.2f}x   (goal <= 2.00x)")
    return [Result(f"load: full mix ({clients} clients, task.list/ready on {tasks} tasks) vs light mix",
                   full[0], "req/s", floor=light[0], floor_label="light mix, same daemon", ratio=ratio,
                   goal="<= 2.0x", met=goal_met(ratio, "<= 2.0x"), runs=rounds,
                   spread=f"{spread_of([r[0] for r in samples['full']], 'req/s', 1, 0)}; p99 full {full[2]:.1f} ms, "
                          f"light {light[2]:.1f} ms",
                   note=f"daemon CPU per request: full {full[3]:.0f} us, light {light[3]:.0f} us")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, the numbers mean nothing")
    ap.add_argument("--profile", help="write the daemon's cProfile stats (full mix only) to this file")
    args = ap.parse_args()
    print_table(run(args.quick, args.clients, args.seconds, args.tasks, args.rounds, args.profile))


if __name__ == "__main__":
    main()
