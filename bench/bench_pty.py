"""PTY throughput: 100 MB of output from a session (`cat` of a file) through maestrod, with the screen
model on, against a bare Python PTY read loop (the floor) measured in the same run.

maestrod's figure is wall time from `session.spawn` to the `session.status` -> exited event; bytes
lost = bytes the bare loop read - the session's scrollback byte counter (`session.output` total),
and must be 0. The final screen is checked against the file's last lines (the lazy screen model
still ends right). Goal (issue 3): >= 0.5x the floor.
Run: python bench/bench_pty.py [--mb 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import running_daemon  # noqa: E402
from _report import Result, goal_met, print_table, spread_of  # noqa: E402

from maestroctl.client import Client  # noqa: E402


def make_file(path: Path, mb: int) -> tuple[int, bytes]:
    """``mb`` MB of 100-byte text lines; returns (bytes a tty delivers: LF -> CRLF, the last line)."""
    line_count = mb * 1_000_000 // 100
    with open(path, "wb") as f:
        block = b"".join(b"%09d " % i + b"x" * 89 + b"\n" for i in range(10_000))
        for _ in range(0, line_count, 10_000):
            f.write(block)
    last = b"%09d " % 9_999 + b"x" * 89
    return line_count * 101, last


def bare_loop(path: Path) -> tuple[float, int]:
    master, slave = pty.openpty()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["cat", str(path)], stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    n = 0
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        n += len(chunk)
    proc.wait()
    elapsed = time.perf_counter() - t0
    os.close(master)
    return elapsed, n


def through_maestrod(client: Client, path: Path, name: str) -> tuple[float, dict, dict]:
    t0 = time.perf_counter()
    rid = client.send_request(
        "session.spawn", {"project": "P", "name": name, "agent": "command", "argv": ["cat", str(path)]}
    )
    sid, exited = None, set()
    while sid is None or sid not in exited:  # the exit event may come before the spawn's answer
        msg = client.read_message()
        if msg.get("id") == rid:
            if "error" in msg:
                raise SystemExit(f"error: {msg['error']}")
            sid = msg["result"]["id"]
        elif msg.get("method") == "event" and msg["params"]["data"]["to"] == "exited":
            exited.add(msg["params"]["data"]["session_id"])
    elapsed = time.perf_counter() - t0
    out = client.call("session.output", {"id": sid, "offset": 0, "limit": 1})
    screen = client.call("session.screen", {"id": sid})
    return elapsed, out, screen


def run(quick: bool = False, mb: int = 100, runs: int = 3) -> list[Result]:
    if quick:
        mb, runs = 1, 1
    tmp = Path(tempfile.mkdtemp(prefix="bp-", dir="/tmp"))
    data = tmp / "big.txt"
    expected, last_line = make_file(data, mb)
    size_mb = data.stat().st_size / 1e6
    try:
        floors = [bare_loop(data) for _ in range(runs)]
        floor = min(floors)
        assert floor[1] == expected, (floor[1], expected)
        with running_daemon() as (sock, _env), Client(str(sock)) as client:
            client.call("project.create", {"name": "P", "dir": str(tmp)})
            client.call("events.subscribe", {"topics": ["session.status"]})
            through = [through_maestrod(client, data, f"cat{i}") for i in range(runs)]
        elapsed = min(r[0] for r in through)
        lost = [expected - r[1]["total"] for r in through]
        screen_ok = all(last_line.decode() in r[2]["text"].splitlines()[-1] for r in through)
        bare_rate = size_mb / floor[0]
        rate = size_mb / elapsed
        print(f"file: {size_mb:.0f} MB ({expected:,} bytes through the tty, LF -> CRLF)")
        print(f"bare Python PTY loop (floor): {floor[0]:.3f} s  {bare_rate:7.1f} MB/s")
        print(
            f"maestrod session, screen model on: {elapsed:.3f} s  {rate:7.1f} MB/s  "
            f"(runs: {', '.join(f'{r[0]:.3f}' for r in through)} s)"
        )
        print(f"bytes lost (scrollback counter vs bytes read by the floor): {lost}")
        print(f"final screen shows the file's last line: {screen_ok}")
        ratio = rate / bare_rate
        print(f"ratio maestrod/bare: {ratio:.2f}x  (goal >= 0.5x: {'met' if ratio >= 0.5 else 'NOT met'})")
        if any(lost) or not screen_ok:
            raise SystemExit("FAIL: bytes were lost or the screen is wrong")
    finally:
        data.unlink(missing_ok=True)
        tmp.rmdir()
    rates = [size_mb / r[0] for r in through]
    return [Result(f"PTY throughput, {size_mb:.0f} MB cat", rate, "MB/s", floor=bare_rate,
                   floor_label="bare PTY read loop", goal=">= 0.5x", met=goal_met(ratio, ">= 0.5x"), runs=runs,
                   spread=spread_of(rates, "MB/s", 1, 1), note=f"best of {runs}, {sum(lost)} bytes lost")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print_table(run(args.quick, args.mb, args.runs))


if __name__ == "__main__":
    main()
