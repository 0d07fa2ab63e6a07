"""Hibernate and wake with the real Claude Code, offline (bench/_claude.py's scripted model server).

Per trial, in one maestrod: a Claude session is spawned and waited for (``session.wait --until idle``: its
SessionStart hook ran, the TUI is up); the memory of its process tree is read; it is hibernated; it is woken
(``claude --resume``) and waited for the same way. The floors, measured in the same run: the spawn of that
same session (wake is a relaunch: it should cost about what a start costs), and ``session.stop`` of a second
session started alike (hibernate is a stop plus bookkeeping).

    python bench/bench_resume.py [--trials 5] [--claude-bin PATH]

Without the Claude Code binary it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _claude  # noqa: E402
from _daemon import running_daemon  # noqa: E402
from _report import Result, goal_met, median, print_table, spread_of  # noqa: E402

from maestroctl.client import Client  # noqa: E402


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and every descendant (Claude Code's node process and its helpers)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return total / 1024


def idle(client: Client, sid: str) -> None:
    r = client.call("session.wait", {"ids": [sid], "until": "idle", "timeout": 120})
    if not r["done"]:
        raise SystemExit(f"session {sid} did not get to its prompt: {r}")


def run(quick: bool = False, trials: int = 5, claude_bin: str | None = None) -> list[Result]:
    binary = _claude.find_claude(claude_bin)
    if binary is None:
        print("bench_resume: Claude Code not found (MAESTRO_TEST_CLAUDE_BIN, .ci/run's install, PATH): skipped")
        return []
    trials = 1 if quick else trials
    spawns, wakes, stops, hibernates, rss = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="br-") as tmp, _claude.slow_model(100.0, 1.0) as model:
        root = Path(tmp)
        work, home = root / "work", root / "home"
        work.mkdir()
        _claude.write_claude_home(home, work)
        cfg = root / "config.toml"
        cfg.write_text(f"[claude]\nbin = {json.dumps(binary)}\n")  # a JSON string is a TOML basic string
        env = _claude.claude_env(home, model.url)
        with running_daemon("--config", str(cfg)) as (sock, _env), Client(str(sock)) as client:
            client.call("project.create", {"name": "P", "dir": str(work)})

            def spawn(name: str) -> str:
                sid: str = client.call("session.spawn", {"project": "P", "name": name, "cwd": str(work),
                                                         "env": env})["id"]
                idle(client, sid)
                return sid

            for i in range(trials):
                t0 = time.perf_counter()
                sid = spawn(f"a{i}")
                spawns.append(time.perf_counter() - t0)
                rss.append(tree_rss_mib(client.call("session.get", {"id": sid})["pid"]))
                t0 = time.perf_counter()
                client.call("session.hibernate", {"id": sid})
                hibernates.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                client.call("session.wake", {"id": sid})
                idle(client, sid)
                wakes.append(time.perf_counter() - t0)
                client.call("session.hibernate", {"id": sid})  # keep memory free for the next trials

                other = spawn(f"b{i}")
                t0 = time.perf_counter()
                client.call("session.stop", {"id": other})
                stops.append(time.perf_counter() - t0)
    version = _claude.claude_version(binary)
    print(f"Claude Code {version}, {trials} trial(s): spawn->idle {median(spawns):.2f} s, wake->idle "
          f"{median(wakes):.2f} s, stop {median(stops):.2f} s, hibernate {median(hibernates):.2f} s, "
          f"agent RSS freed by hibernating {median(rss):.0f} MiB")
    wake, spawn_floor = median(wakes), median(spawns)
    hib, stop_floor = median(hibernates), median(stops)
    note = f"real Claude Code {version}, offline; idle = session.wait --until idle"
    return [
        Result("wake a hibernated session (claude --resume) to idle", wake, "s", floor=spawn_floor,
               floor_label="spawn the same session to idle", ratio=wake / spawn_floor, goal="<= 1.5x",
               met=goal_met(wake / spawn_floor, "<= 1.5x"), runs=trials, spread=spread_of(wakes, "s"), note=note),
        Result("hibernate an idle session", hib, "s", floor=stop_floor, floor_label="session.stop of one alike",
               ratio=hib / stop_floor, goal="<= 1.2x", met=goal_met(hib / stop_floor, "<= 1.2x"), runs=trials,
               spread=spread_of(hibernates, "s"),
               note=f"{note}; the agent's process tree held {median(rss):.0f} MiB RSS before"),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--claude-bin")
    args = ap.parse_args()
    print_table(run(args.quick, args.trials, args.claude_bin))
