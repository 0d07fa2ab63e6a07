"""Client start-up: wall time of the installed `maestroctl --json task list --project P`, run as a user runs
it (the launcher in the environment's bin/, exec'd through its shebang, cached bytecode), against
`python3 -I -c pass` (the floor), N runs each, interleaved so background load hits both alike.

Reports the medians, the ratio of the medians and each side's spread; and the same for the CPU time each
process used (user + system, from wait4), which a busy machine disturbs less than the wall time.
Goal (issue 11): <= 1.3x the floor.
Run: python bench/bench_client_startup.py [--runs 40] [--tasks 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import BIN, running_daemon  # noqa: E402
from _report import Result, goal_met, median, print_table, spread_of  # noqa: E402

GOAL = "<= 1.3x"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time, and the CPU time (user + system) the process used: on a busy machine the wall time
    waits for a core, the CPU time much less so."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{cmd} failed ({status})")
    return wall, usage.ru_utime + usage.ru_stime


def run(quick: bool = False, runs: int = 40, tasks: int = 20) -> list[Result]:
    if quick:
        runs, tasks = 3, 2
    launcher = BIN / "maestroctl"
    with running_daemon() as (sock, env):
        # Measure what a user gets: cached bytecode. (PYTHONDONTWRITEBYTECODE=1 would make every
        # run recompile maestroctl's modules, ~10 ms that no installed copy pays.)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        work = sock.parent
        out = subprocess.run([str(launcher), "--json", "project", "create", "--name", "P", "--dir",
                              str(work)], env=env, capture_output=True, check=True)
        json.loads(out.stdout)
        for i in range(tasks):
            subprocess.run([str(launcher), "task", "create", "--project", "P", "--title", f"task {i}"],
                           env=env, stdout=subprocess.DEVNULL, check=True)
        ctl = [str(launcher), "--json", "task", "list", "--project", "P"]
        listed = json.loads(subprocess.run(ctl, env=env, capture_output=True, check=True).stdout)
        assert len(listed) == tasks, f"maestroctl listed {len(listed)} of {tasks} tasks"
        floor_cmd = [sys.executable, "-I", "-c", "pass"]
        for _ in range(3):  # warm the page cache
            timed(ctl, env)
            timed(floor_cmd, env)
        floor_runs, ctl_runs = [], []
        for _ in range(runs):
            floor_runs.append(timed(floor_cmd, env))
            ctl_runs.append(timed(ctl, env))
    floors, ctls = [w for w, _ in floor_runs], [w for w, _ in ctl_runs]
    floor_cpu, ctl_cpu = [c for _, c in floor_runs], [c for _, c in ctl_runs]
    f, c = median(floors), median(ctls)
    fc, cc = median(floor_cpu), median(ctl_cpu)
    ratios = sorted(b / a for a, b in zip(floors, ctls))
    print(f"floor  python3 -I -c pass          median {f * 1000:7.2f} ms  {spread_of(floors, 'ms', 1000)}"
          f"  (n={runs})")
    print(f"client {launcher} --json task list  median {c * 1000:7.2f} ms  {spread_of(ctls, 'ms', 1000)}"
          f"  ({tasks} tasks)")
    print(f"ratio  {c / f:.2f}x the floor (per-pair ratios {spread_of(ratios, 'x')})  (goal {GOAL})")
    print(f"CPU time (user+system): client {cc * 1000:.2f} ms vs floor {fc * 1000:.2f} ms = {cc / fc:.2f}x")
    return [Result("client start-up: installed maestroctl --json task list", c * 1000, "ms",
                   floor=f * 1000, floor_label="python -I -c pass", goal=GOAL, met=goal_met(c / f, GOAL),
                   runs=runs, spread=f"client {spread_of(ctls, 'ms', 1000)}; floor {spread_of(floors, 'ms', 1000)}",
                   note=f"{tasks} tasks"),
            Result("client start-up CPU time (user+system), same runs", cc * 1000, "ms", floor=fc * 1000,
                   floor_label="python -I -c pass", goal=GOAL, met=goal_met(cc / fc, GOAL), runs=runs,
                   spread=f"client {spread_of(ctl_cpu, 'ms', 1000)}; floor {spread_of(floor_cpu, 'ms', 1000)}")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print_table(run(args.quick, args.runs, args.tasks))


if __name__ == "__main__":
    main()
