"""Client start-up: wall time of `maestroctl --json task list --project P` against
`python3 -I -c pass` (the floor), median of N runs each, interleaved.

Goal (issue 2): <= 1.3x the floor.
Run: python bench/bench_client_startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import BIN, running_daemon  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--tasks", type=int, default=20)
    args = ap.parse_args()
    with running_daemon() as (sock, env):
        # Measure what a user gets: cached bytecode. (PYTHONDONTWRITEBYTECODE=1 would make every
        # run recompile maestroctl's modules, ~10 ms that no installed copy pays.)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        work = sock.parent
        out = subprocess.run([str(BIN / "maestroctl"), "--json", "project", "create", "--name", "P", "--dir",
                              str(work)], env=env, capture_output=True, check=True)
        json.loads(out.stdout)
        for i in range(args.tasks):
            subprocess.run([str(BIN / "maestroctl"), "task", "create", "--project", "P", "--title", f"task {i}"],
                           env=env, stdout=subprocess.DEVNULL, check=True)
        ctl = [str(BIN / "maestroctl"), "--json", "task", "list", "--project", "P"]
        floor_cmd = [sys.executable, "-I", "-c", "pass"]
        for _ in range(3):  # warm the page cache
            timed(ctl, env)
            timed(floor_cmd, env)
        floors, ctls = [], []
        for _ in range(args.runs):
            floors.append(timed(floor_cmd, env))
            ctls.append(timed(ctl, env))
    f, c = statistics.median(floors), statistics.median(ctls)
    print(f"floor  python3 -I -c pass          median {f * 1000:7.2f} ms  (n={args.runs})")
    print(f"client maestroctl --json task list  median {c * 1000:7.2f} ms  ({args.tasks} tasks)")
    print(f"ratio  {c / f:.2f}x the floor   (goal <= 1.30x)")


if __name__ == "__main__":
    main()
