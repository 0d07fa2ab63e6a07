"""Graceful restart in place (``daemon.restart``): how long the socket does not answer with 50 live sessions,
and how many bytes of PTY output are lost across 20 handoffs under a steady flood.

The pause: a client thread sends a cheap request (``events.replay`` after the newest seq) in a loop, on one
connection, reconnecting when it is closed; the pause is the longest gap between two answers that did work
(an -32006 refusal while the daemon hands over counts as no answer), per restart. The floor, measured in the
same run: a cold ``maestrod`` start to its first answer (no sessions), i.e. what any restart costs at least.
Goal (issue 9): <= 300 ms. Measured with the web feed on (the default configuration: its imports follow the
socket's first answers, in a thread, so they compete with them for the CPU) and off (``--no-web``).

Bytes lost: a session writes numbered lines (raw mode: every byte it writes reaches the PTY unchanged) as fast
as the PTY takes them, at a bounded rate, while the daemon restarts 20 times; then it writes how many bytes it
wrote, and the scrollback (64 MiB, large enough to hold them all) is compared with that. Goal: 0.

Run: python bench/bench_handoff.py [--sessions 50] [--restarts 5] [--flood-restarts 20]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import running_daemon  # noqa: E402
from _report import Result, goal_met, print_table, spread_of  # noqa: E402

from maestroctl.client import Client, DaemonConnectionError, RemoteError  # noqa: E402

#: Numbered lines, raw mode, until argv[1] exists; then END <lines> <bytes>. (tests/handoff_support.py has the
#: same program for the tests.)
COUNTER = r"""
import os, sys, time, tty
tty.setraw(1)
stop, delay = sys.argv[1], float(sys.argv[2])
i = n = 0
while not os.path.exists(stop):
    line = (b"%d" % i).ljust(127, b".") + b"\n"
    view = memoryview(line)
    while view:
        view = view[os.write(1, view):]
    n += len(line)
    i += 1
    time.sleep(delay)
os.write(1, b"END %d %d\n" % (i, n))
"""
NO_EVENT_AFTER = (1 << 63) - 1


class Pinger(threading.Thread):
    """Answers to a cheap request, timestamped, on one connection (a new one when it is closed)."""

    def __init__(self, sock: str) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.answers: list[float] = []
        self.stopping = False

    def run(self) -> None:
        client: Client | None = None
        while not self.stopping:
            try:
                if client is None:
                    client = Client(self.sock, timeout=30)
                    client.connect()
                client.call("events.replay", {"since": NO_EVENT_AFTER, "limit": 1})
                self.answers.append(time.monotonic())
            except RemoteError:
                time.sleep(0.001)  # -32006 while it hands over: no work done
            except (DaemonConnectionError, OSError):
                if client is not None:
                    client.close()
                client = None
                time.sleep(0.001)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest gap between two answers in [start, end]: ``start`` is when the restart was asked
        (the daemon hands over only after its state check answered), so a window never holds the previous
        restart's pause."""
        times = [t for t in self.answers if start <= t <= end]
        return max((b - a for a, b in zip(times, times[1:])), default=end - start)


def call(sock: str, method: str, params: dict[str, object] | None = None) -> dict[str, object]:
    with Client(sock, timeout=60) as c:
        return c.call(method, params)  # type: ignore[no-any-return]


def restart(sock: str) -> float:
    """daemon.restart; returns when the new daemon answers (the time it was asked, monotonic)."""
    asked = time.monotonic()
    call(sock, "daemon.restart")
    while True:
        try:
            if call(sock, "system.version")["uptime_s"] < time.monotonic() - asked:  # type: ignore[operator]
                return asked
        except (DaemonConnectionError, RemoteError, OSError):
            pass
        time.sleep(0.005)


def daemon_args(web: bool) -> tuple[str, ...]:
    """The web feed on (the default configuration; a free port, so that runs do not collide) or off."""
    if not web:
        return ("--no-web",)
    config = Path(tempfile.mkdtemp(prefix="mb-cfg-", dir="/tmp")) / "config.toml"
    config.write_text("[web]\nport = 0\n")
    return ("--config", str(config))


def cold_start(web: bool) -> float:
    """A fresh maestrod (no sessions) from exec to its first answer, in seconds."""
    args = daemon_args(web)
    started = time.monotonic()
    with running_daemon(*args) as (sock, _env):
        call(str(sock), "events.replay", {"since": NO_EVENT_AFTER, "limit": 1})
        return time.monotonic() - started


def pauses(sessions: int, restarts: int, web: bool = False) -> tuple[list[float], list[float]]:
    floors = [cold_start(web) for _ in range(max(2, restarts // 2))]
    gaps: list[float] = []
    with running_daemon(*daemon_args(web)) as (sock_path, _env):
        sock = str(sock_path)
        call(sock, "project.create", {"name": "P", "dir": str(sock_path.parent)})
        for i in range(sessions):
            call(sock, "session.spawn", {"project": "P", "name": f"s{i}", "agent": "command",
                                         "argv": ["bash", "--norc", "--noprofile", "-i"]})
        time.sleep(1.0)
        pinger = Pinger(sock)
        pinger.start()
        for _ in range(restarts):
            time.sleep(0.3)
            asked = restart(sock)
            time.sleep(0.3)
            gaps.append(pinger.longest_gap(asked, time.monotonic()))
        pinger.stopping = True
        pinger.join()
        live = sum(1 for s in call(sock, "session.list")  # type: ignore[attr-defined]
                   if s["status"] != "exited")
        if live != sessions:
            raise SystemExit(f"{sessions - live} sessions did not survive the restarts")
    return gaps, floors


def flood(restarts: int) -> tuple[int, int, int]:
    """(bytes the program wrote, bytes that reached the scrollback, restarts)."""
    config = Path(tempfile.mkdtemp(prefix="mb-cfg-", dir="/tmp")) / "config.toml"
    config.write_text("[sessions]\nscrollback_bytes = 268435456\n")  # room for every byte written
    with running_daemon("--no-web", "--config", str(config)) as (sock_path, _env):
        sock = str(sock_path)
        call(sock, "project.create", {"name": "P", "dir": str(sock_path.parent)})
        stop = sock_path.parent / "flood.stop"
        s = call(sock, "session.spawn", {"project": "P", "name": "flood", "agent": "command",
                                         "argv": [sys.executable, "-c", COUNTER, str(stop), "0.0002"]})
        time.sleep(0.5)
        for _ in range(restarts):
            restart(sock)
        stop.touch()
        data = b""
        deadline = time.monotonic() + 60
        while b"END " not in data[-200:]:
            if time.monotonic() > deadline:
                raise SystemExit("the flood did not end")
            time.sleep(0.1)
            offset, chunks = 0, []
            while True:
                r = call(sock, "session.output", {"id": s["id"], "offset": offset, "limit": 1 << 20})
                chunk = base64.b64decode(r["data"])  # type: ignore[arg-type]
                chunks.append(chunk)
                offset = r["next_offset"]  # type: ignore[assignment]
                if not chunk:
                    break
            data = b"".join(chunks)
        body, _, tail = data.rpartition(b"END ")
        wrote = int(tail.split()[1])
        return wrote, len(body), restarts


def run(quick: bool = False, sessions: int = 50, restarts: int = 5, flood_restarts: int = 20) -> list[Result]:
    if quick:
        sessions, restarts, flood_restarts = 2, 2, 2
    results: list[Result] = []
    for web in (True, False):
        gaps, floors = pauses(sessions, restarts, web)
        pause, floor = statistics.median(gaps), statistics.median(floors)
        how = "web feed on" if web else "--no-web"
        print(f"handoff pause with {sessions} live sessions ({how}): {', '.join(f'{g * 1000:.0f}' for g in gaps)} "
              f"ms; cold start {', '.join(f'{f * 1000:.0f}' for f in floors)} ms")
        results.append(Result(
            f"handoff pause, {sessions} live sessions, {how}", pause * 1000, "ms", floor * 1000,
            "cold maestrod start to first answer", goal="<= 300 ms", met=goal_met(pause * 1000, "<= 300 ms"),
            runs=len(gaps), spread=spread_of(gaps, "ms", 1000),
            note="longest gap between two answers that did work (an -32006 refusal is no answer)"))
    wrote, got, n = flood(flood_restarts)
    lost = wrote - got
    print(f"flood across {n} handoffs: wrote {wrote} bytes, {got} reached the scrollback, {lost} lost")
    return [
        *results,
        Result(f"bytes lost across {n} handoffs under a flood", float(lost), "bytes", goal="<= 0 bytes",
               met=goal_met(lost, "<= 0 bytes"), note=f"{wrote} bytes written"),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--flood-restarts", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print_table(run(a.quick, a.sessions, a.restarts, a.flood_restarts))
