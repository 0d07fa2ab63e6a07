"""Idle cost: maestrod's CPU % and RSS with 50 idle sessions (interactive shells waiting at their
prompt) over 10 s, against the same daemon with no session (the floor) measured in the same run.

CPU is utime+stime of the daemon process from /proc over the window; RSS is VmRSS at the end.
Goal (issue 3): <= 1 % CPU and <= 200 MB RSS with 50 idle sessions.
Run: python bench/bench_idle.py [--sessions 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import running_daemon  # noqa: E402
from _proc import cpu_seconds  # noqa: E402
from _report import Result, goal_met, print_table  # noqa: E402

from maestroctl.client import Client  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def window(pid: int, seconds: float) -> tuple[float, float]:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0), rss_mb(pid)


def run(quick: bool = False, sessions: int = 50, seconds: float = 10.0) -> list[Result]:
    if quick:
        sessions, seconds = 2, 0.5
    with running_daemon() as (sock, _env), Client(str(sock)) as client:
        pid = client.call("system.version")["pid"]
        client.call("project.create", {"name": "P", "dir": str(sock.parent)})
        floor_cpu, floor_rss = window(pid, seconds)
        for i in range(sessions):
            client.call("session.spawn", {"project": "P", "name": f"idle{i}", "agent": "command",
                                          "argv": ["bash", "--norc", "--noprofile", "-i"]})
        # Let every shell print its prompt (and the screen models catch up) before measuring.
        deadline = time.monotonic() + 30
        while any(client.call("session.screen", {"id": f"idle{i}"})["text"] == "" for i in range(sessions)):
            if time.monotonic() > deadline:
                raise SystemExit("the shells did not start")
            time.sleep(0.2)
        time.sleep(1)
        listed = client.call("session.list", {"active": True})
        assert len(listed) == sessions and all(s["status"] == "idle" for s in listed)
        cpu, rss = window(pid, seconds)
    print(f"maestrod, no session (floor): CPU {floor_cpu:.2f} %  RSS {floor_rss:.1f} MB")
    print(
        f"maestrod, {sessions} idle sessions, {seconds:g} s: CPU {cpu:.2f} %  RSS {rss:.1f} MB  "
        f"(+{rss - floor_rss:.1f} MB, {(rss - floor_rss) * 1024 / sessions:.0f} KiB per session; "
        f"RSS ratio to floor {rss / floor_rss:.2f}x)"
    )
    note = f"{sessions} idle sessions, {seconds:g} s window"
    return [Result("idle daemon CPU", cpu, "%", floor=floor_cpu, floor_label="no session", ratio=None,
                   goal="<= 1 %", met=goal_met(cpu, "<= 1"), note=note),
            Result("idle daemon RSS", rss, "MB", floor=floor_rss, floor_label="no session", goal="<= 200 MB",
                   met=goal_met(rss, "<= 200"), note=note)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print_table(run(args.quick, args.sessions, args.seconds))


if __name__ == "__main__":
    main()
