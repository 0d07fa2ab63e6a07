"""task run throughput: 30 small tasks through ``maestroctl task run --workers 4`` with the real Claude Code
against a scripted model (tests/fake_anthropic.py) that answers every agent turn after a fixed delay.

Each task costs its worker: the agent's own start-up (spawn to its first model request, measured per task),
then its scripted turns (a Bash call to ``maestroctl task report complete``, then a closing text, if the worker
is not stopped before it asks; the time actually scripted, per task). The floor is the ideal schedule of those
costs over the workers: each task, in the order the run started them, to the worker free first, with nothing
in between (:func:`ideal_schedule`; it includes the end of the run, where fewer tasks than workers remain).
Whatever the run's wall time adds beyond it, times the workers and spread over the tasks, is the overhead
maestro adds per task (spawning, noticing the report, stopping the worker, starting the next, and the agent's
own tool call and exit, which a loaded machine slows; goal: under 1 s). The line above the table also gives
the figure against ``sum / workers`` (which counts the idle end as overhead), the daemon's CPU time and how
busy the machine was (4 Claude Code workers on 2 cores keep it near 100%). Also: the most live workers at any
time (from the event stream; goal: never above the 4 asked), and the daemon's peak RSS (VmHWM).

Run: python bench/bench_taskrun.py [--tasks 30] [--workers 4] [--turn-seconds 0.5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _claude  # noqa: E402
from _daemon import running_daemon  # noqa: E402
from _proc import cpu_seconds  # noqa: E402
from _report import Result, goal_met, print_table, spread_of  # noqa: E402

from maestroctl.client import Client  # noqa: E402
from tests.fake_anthropic import FakeAnthropic  # noqa: E402

MAESTROCTL = str(Path(sys.executable).parent / "maestroctl")


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [c.get("text", "") for c in content or [] if isinstance(c, dict) and c.get("type") == "text"]


class Model:
    """The scripted worker: report the task its first prompt names, then say so; each turn after a delay."""

    def __init__(self, turn_seconds: float) -> None:
        self.turn_seconds = turn_seconds
        self.first_request: dict[str, float] = {}
        #: Scripted seconds actually spent answering, per task (a worker stopped after its report never asks
        #: for its closing turn).
        self.scripted: dict[str, float] = {}
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        now = time.time()
        msgs = body.get("messages", [])
        prompt = "\n".join(t for m in msgs if m.get("role") == "user" for t in _texts(m.get("content")))
        task = (re.findall(r"Your task is (t-[0-9a-f]+)", prompt) or ["?"])[-1]
        with self.lock:
            self.first_request.setdefault(task, now)
            self.scripted[task] = self.scripted.get(task, 0.0) + self.turn_seconds
        time.sleep(self.turn_seconds)
        content = msgs[-1].get("content") if msgs else None
        if isinstance(content, list) and any(c.get("type") == "tool_result" for c in content):
            return [{"type": "text", "text": "Reported."}]
        return [{"type": "tool_use", "name": "Bash", "input": {
            "command": f"{MAESTROCTL} task report complete {task} --message done", "description": "report"}}]


class Events(threading.Thread):
    """Every event of the daemon, with its time (the daemon's own ``at``)."""

    def __init__(self, sock: Path) -> None:
        super().__init__(daemon=True)
        self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.conn.connect(str(sock))
        self.conn.sendall(b'{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"topics":'
                          b'["run.","session.status"]}}\n')
        self.items: list[dict[str, Any]] = []
        self.finished = threading.Event()

    def run(self) -> None:
        buf = b""
        while True:
            chunk = self.conn.recv(1 << 16)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if msg.get("method") == "event":
                    self.items.append(msg["params"])
                    if msg["params"]["topic"] == "run.finished":
                        self.finished.set()


def at(event: dict[str, Any]) -> float:
    return dt.datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


def ideal_schedule(costs: list[float], workers: int) -> float:
    """The makespan of ``costs`` (each task's own start-up and scripted turns, in the order the tasks
    started) handed to ``workers`` with nothing in between: each task to the worker free first. This is what
    the run would take if maestro added nothing, including the end, where fewer tasks than workers remain
    and some workers idle (a cost of the task count, not of maestro)."""
    free = [0.0] * workers
    for cost in costs:
        i = free.index(min(free))
        free[i] += cost
    return max(free, default=0.0)


def machine_busy() -> tuple[int, int]:
    """(all, idle) CPU ticks of the machine so far, from /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def peak_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(quick: bool = False, tasks: int = 30, workers: int = 4, turn_seconds: float = 0.5,
        claude_bin: str | None = None) -> list[Result]:
    binary = _claude.find_claude(claude_bin)
    if binary is None:
        print("bench_taskrun: Claude Code not found (MAESTRO_TEST_CLAUDE_BIN, .ci/run's install, PATH): skipped")
        return []
    if quick:
        tasks, workers, turn_seconds = 3, 2, 0.1
    script = Model(turn_seconds)
    model = FakeAnthropic(script).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bt-") as tmp:
            root = Path(tmp)
            work, home = root / "work", root / "home"
            work.mkdir()
            _claude.write_claude_home(home, work)
            cfg = root / "config.toml"
            cfg.write_text(f"[claude]\nbin = {json.dumps(binary)}\n")
            with running_daemon("--config", str(cfg), "--no-web") as (sock, _env), Client(str(sock)) as client:
                pid = client.call("system.version")["pid"]
                client.call("project.create", {"name": "P", "dir": str(work)})
                for i in range(tasks):
                    client.call("task.create", {"project": "P", "title": f"small task {i}"})
                events = Events(sock)
                events.start()
                t0 = time.time()
                cpu0, busy0 = cpu_seconds(pid), machine_busy()
                rid = client.call("run.start", {"project": "P", "workers": workers, "allowed_tools": "Bash",
                                                "permission_mode": "acceptEdits",
                                                "env": _claude.claude_env(home, model.url)})["id"]
                if not events.finished.wait(30 if quick else 60 + tasks * 30):
                    raise SystemExit(f"the run did not finish: {client.call('run.status', {'id': rid})}")
                wall = at(next(e for e in events.items if e["topic"] == "run.finished")) - t0
                status = client.call("run.status", {"id": rid})
                hwm = peak_hwm_mb(pid)
                daemon_cpu = cpu_seconds(pid) - cpu0
                (all1, idle1), (all0, idle0) = machine_busy(), busy0
                busy = 1 - (idle1 - idle0) / max(1, all1 - all0)
    finally:
        model.stop()
    if status["counts"]["done"] != tasks:
        raise SystemExit(f"the run did not complete every task: {status['counts']}")
    started = {e["data"]["task_id"]: at(e) for e in events.items if e["topic"] == "run.task_started"}
    startup = {t: script.first_request[t] - started[t] for t in started}
    startups = list(startup.values())
    costs = [startup[t] + script.scripted.get(t, 0.0) for t in sorted(started, key=started.get)]
    floor = ideal_schedule(costs, workers)
    overhead = (wall - floor) * workers / tasks
    naive = (wall * workers - sum(costs)) / tasks
    workers_of = {w["session_id"] for w in status["workers"]}
    done = {e["data"]["task_id"]: at(e) for e in events.items if e["topic"] == "run.task_done"}
    worker = {e["data"]["task_id"]: e["data"]["session_id"] for e in events.items if e["topic"] == "run.task_started"}
    exited = {e["data"]["session_id"]: at(e) for e in events.items
              if e["topic"] == "session.status" and e["data"]["to"] == "exited"}
    stops = [exited[worker[t]] - done[t] for t in done if worker.get(t) in exited]
    turns = [done[t] - script.first_request[t] for t in done if t in script.first_request]
    # The scheduler's own step: a worker's exit (its slot frees) to the next task's spawn decision.
    starts = sorted(started.values())
    gaps = [min(t for t in starts if t >= e) - e for e in sorted(exited[worker[t]] for t in done if worker.get(t) in exited)
            if any(t >= e for t in starts)]
    print(f"bench_taskrun: first model request to report seen {spread_of(turns, 's')}; report seen to worker exited "
          f"{spread_of(stops, 's')}; worker exited to next task started {spread_of(gaps, 's', digits=3)}")
    live: dict[str, str] = {}
    peak = 0
    for e in events.items:
        if e["topic"] == "session.status" and e["data"]["session_id"] in workers_of:
            live[e["data"]["session_id"]] = e["data"]["to"]
            peak = max(peak, sum(1 for s in live.values() if s not in ("exited", "hibernated", "queued")))
    print(f"bench_taskrun: {tasks} tasks, {workers} workers, {turn_seconds} s per scripted turn: wall {wall:.1f} s; "
          f"agent start-up {spread_of(startups, 's')}; ideal schedule {floor:.1f} s (sum / workers "
          f"{sum(costs) / workers:.1f} s: {naive:.2f} s per task beyond it); daemon CPU {daemon_cpu:.2f} s "
          f"({daemon_cpu / wall * 100:.1f}% of one core); machine {busy * 100:.0f}% busy")
    size = f"{tasks} tasks, --workers {workers}, scripted turns of {turn_seconds} s"
    return [
        Result("task run wall time", wall, "s", floor=floor, floor_label="ideal schedule of start-up + turns",
               runs=tasks, spread=spread_of(startups, "s"), note=size),
        Result("task run overhead per task (beyond agent start-up)", overhead, "s", goal="<= 1 s",
               met=goal_met(overhead, "<= 1 s"), runs=tasks, note=size),
        Result("task run peak live workers", float(peak), "", goal=f"<= {workers}", met=goal_met(peak, f"<= {workers}"),
               note=size),
        Result("task run daemon peak RSS (VmHWM)", hwm, "MB", note=size),
        Result("task run daemon CPU per task", daemon_cpu / tasks * 1000, "ms", note=size),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--turn-seconds", type=float, default=0.5)
    ap.add_argument("--claude-bin")
    a = ap.parse_args()
    print_table(run(a.quick, a.tasks, a.workers, a.turn_seconds, a.claude_bin))
