"""Paged lists: `task.list` on a project of 10,000 tasks, one call, before and after paging, measured in the
same run: the whole list unpaged (what every call cost before) against one page of 1,000 (the first, and
one from the middle through its cursor), and walking every page; per call wall time at the client and bytes
on the wire. Also `maestroctl --json task list` following the cursor to the end.

Run: python bench/bench_lists.py [--tasks 10000] [--runs 20]
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
from _report import Result, print_table, spread_of  # noqa: E402

PAGE = 1000


class Line:
    """One connection, one request at a time, raw bytes: what a client waits for and receives."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.ids = 0

    def call(self, method: str, params: object) -> tuple[float, bytes]:
        self.ids += 1
        line = json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params}).encode()
        t0 = time.perf_counter()
        self.sock.sendall(line + b"\n")
        answer = self.file.readline()
        elapsed = time.perf_counter() - t0
        if b'"error"' in answer[:200]:
            raise SystemExit(f"{method} failed: {answer[:300]!r}")
        return elapsed, answer

    def batch(self, requests: list[dict[str, object]]) -> None:
        self.sock.sendall(json.dumps(requests).encode() + b"\n")
        answer = self.file.readline()
        if b'"error"' in answer:
            raise SystemExit(f"batch failed: {answer[:300]!r}")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def run(quick: bool = False, tasks: int = 10_000, runs: int = 20) -> list[Result]:
    if quick:
        tasks, runs = 1200, 2
    with running_daemon() as (sock, env):
        line = Line(str(sock))
        _, answer = line.call("project.create", {"name": "P", "dir": str(sock.parent)})
        pid = json.loads(answer)["result"]["id"]
        prios = ["low", "medium", "high", "critical"]
        for start in range(0, tasks, 500):
            line.batch([{"jsonrpc": "2.0", "id": i, "method": "task.create",
                         "params": {"project": pid, "title": f"task {i} of the bench, a title of ordinary length",
                                    "description": "what to do, in a sentence or two " * 3,
                                    "priority": prios[i % 4]}}
                        for i in range(start, min(tasks, start + 500))])
        whole = {"project": pid}
        first = {"project": pid, "limit": PAGE}
        _, answer = line.call("task.list", first)
        middle_cursor = None
        cursor = json.loads(answer)["result"]["next_cursor"]
        for _ in range(tasks // PAGE // 2 - 1):  # walk to the middle
            _, answer = line.call("task.list", {**first, "cursor": cursor})
            cursor = json.loads(answer)["result"]["next_cursor"]
        middle_cursor = cursor
        middle = {**first, "cursor": middle_cursor} if middle_cursor else first

        def walk() -> tuple[float, int, int]:
            total_time, total_bytes, calls, cur = 0.0, 0, 0, None
            while True:
                t, a = line.call("task.list", {**first, **({"cursor": cur} if cur else {})})
                total_time += t
                total_bytes += len(a)
                calls += 1
                cur = json.loads(a)["result"]["next_cursor"]
                if cur is None:
                    return total_time, total_bytes, calls

        samples: dict[str, list[float]] = {"whole": [], "first": [], "middle": [], "walk": []}
        sizes: dict[str, int] = {}
        for _ in range(2):  # warm-up
            line.call("task.list", whole)
            line.call("task.list", first)
        for _ in range(runs):  # interleaved, so background load hits every variant alike
            for name, params in (("whole", whole), ("first", first), ("middle", middle)):
                t, a = line.call("task.list", params)
                samples[name].append(t)
                sizes[name] = len(a)
            t, size, calls = walk()
            samples["walk"].append(t)
            sizes["walk"] = size
        line.close()
        ctl = [str(BIN / "maestroctl"), "--json", "task", "list", "--project", pid]
        ctl_times = []
        for _ in range(max(2, runs // 4)):
            t0 = time.perf_counter()
            out = subprocess.run(ctl, env=env, capture_output=True, check=True).stdout
            ctl_times.append(time.perf_counter() - t0)
        assert len(json.loads(out)) == tasks, "maestroctl must list every task"
    ms = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    for name, label in (("whole", "unpaged (before)"), ("first", f"first page of {PAGE}"),
                        ("middle", f"a middle page of {PAGE} (cursor)"), ("walk", f"every page ({calls} calls)")):
        print(f"task.list {label:<34} median {ms[name]:8.2f} ms  {spread_of(samples[name], 'ms', 1000)}  "
              f"{sizes[name] / 1e6:6.2f} MB")
    print(f"maestroctl --json task list ({tasks:,} tasks, every page)  median "
          f"{statistics.median(ctl_times) * 1000:.1f} ms")
    note = f"{tasks:,} tasks"
    return [
        Result(f"task.list per call, page of {PAGE} vs unpaged", ms["middle"], "ms", floor=ms["whole"],
               floor_label="unpaged (before)", runs=runs,
               spread=f"page {spread_of(samples['middle'], 'ms', 1000)}; unpaged "
                      f"{spread_of(samples['whole'], 'ms', 1000)}", note=note),
        Result(f"task.list bytes per call, page of {PAGE} vs unpaged", sizes["middle"] / 1e6, "MB",
               floor=sizes["whole"] / 1e6, floor_label="unpaged (before)", note=note),
        Result("task.list, every page one after another vs unpaged", ms["walk"], "ms", floor=ms["whole"],
               floor_label="unpaged (before)", runs=runs, spread=spread_of(samples["walk"], "ms", 1000),
               note=f"{calls} calls"),
        Result("maestroctl --json task list, every page", statistics.median(ctl_times) * 1000, "ms",
               runs=len(ctl_times), spread=spread_of(ctl_times, "ms", 1000, 1), note=note),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print_table(run(args.quick, args.tasks, args.runs))


if __name__ == "__main__":
    main()
