"""Live digest latency: a line appended to a transcript -> the ``session.digest`` event at a subscriber.

A real maestrod runs in its own process (``bench/_daemon.py``: READY=1 over NOTIFY_SOCKET, no sleeps),
with one session row written straight into its store (spawning a real agent is not what is measured) and
the session's transcript in a temporary directory.  The subscriber is maestroctl's blocking client on the
daemon's Unix socket (``events.subscribe(["session.digest"])``).  For each sample this process appends one
complete assistant line (a new sentence, so it becomes a new entry) and times until the event carrying that
entry is read from the socket: append -> change hint (or stat poll) -> pread -> parse -> digest -> commit
-> push -> client.  The next line is appended only after the previous one arrived.

Per watcher backend (``[digest] watcher``): ``auto`` (inotify on Linux), ``watchfiles`` (debounce 30 ms,
step 10 ms) and ``poll`` (stat poll only, ``poll_interval`` 0.5 s: the fallback's worst case).
Goal: p50 <= 50 ms (with the default backend).

Run: ``python bench/bench_digest_live.py [--samples 300] [--watchers auto,watchfiles,poll]``.  Prints plain
figures; exit status 1 if the goal is missed.
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _daemon import running_daemon  # noqa: E402  (bench/ is the script directory)

from maestroctl.client import Client  # noqa: E402  (ROOT is on sys.path only from above)
from _report import Result, goal_met, print_table, spread_of  # noqa: E402  (bench/ is the script directory)
from _stats import pct  # noqa: E402

GOAL_P50_MS = 50.0
_ids = itertools.count(1)


def line(n: int) -> bytes:
    mid = f"msg_{n}"
    second = n % 3600
    return orjson.dumps({
        "type": "assistant", "uuid": f"u-{n}-{next(_ids)}", "isSidechain": False, "sessionId": "bench",
        "timestamp": f"2026-01-01T{second // 3600 + 10:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000Z",
        "requestId": f"req_{n}",
        "message": {"id": mid, "model": "claude-sonnet-4-5", "role": "assistant",
                    "content": [{"type": "text", "text": f"Step {n} of the benchmark is finished now."}],
                    "usage": {"input_tokens": 3, "output_tokens": 9}},
    }) + b"\n"


def insert_session(data_dir: Path, transcript: Path) -> None:
    db = sqlite3.connect(str(data_dir / "maestro.db"), timeout=10)
    now = "2026-01-01T00:00:00.000Z"
    with db:
        db.execute("INSERT INTO projects(id, name, dir, description, created_at, updated_at) "
                   "VALUES ('p-bench', 'bench', '/tmp', '', ?, ?)", (now, now))
        db.execute("INSERT INTO sessions(id, project_id, name, role, root_id, agent, cwd, status, transcript_path, "
                   "created_at, updated_at) VALUES ('s-bench', 'p-bench', 'bench', 'worker', 's-bench', 'claude', "
                   "'/tmp', 'working', ?, ?, ?)", (str(transcript), now, now))
    db.close()


def measure(watcher: str, samples: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="mbl-", dir="/tmp") as tmp:
        work = Path(tmp)
        transcript = work / "proj" / "bench.jsonl"
        transcript.parent.mkdir()
        transcript.write_bytes(b"")
        config = work / "config.toml"
        config.write_text(f'[digest]\nwatcher = "{watcher}"\n')
        with running_daemon("--config", str(config)) as (sock, env):
            data_dir = Path(env["XDG_DATA_HOME"]) / "maestro"
            insert_session(data_dir, transcript)
            client = Client(str(sock), timeout=30)
            client.connect()
            client.call("events.subscribe", {"topics": ["session.digest"]})
            client.call("session.digest", {"id": "s-bench"})  # starts tailing the row's transcript
            times = []
            with transcript.open("ab", buffering=0) as f:
                for n in range(samples + 10):
                    want = f"Step {n} of the benchmark is finished now."
                    data = line(n)
                    start = time.perf_counter()
                    f.write(data)
                    while True:
                        msg = client.read_message()
                        params = msg.get("params") or {}
                        entries = (params.get("data") or {}).get("appended", {}).get("tools", [])
                        if any(e["summary"] == want for e in entries):
                            break
                    if n >= 10:  # the first ones warm up caches and the watcher
                        times.append((time.perf_counter() - start) * 1000)
            client.close()
        return times


def run(quick: bool = False, samples: int = 300, watchers: str = "auto,watchfiles,poll") -> list[Result]:
    if quick:
        samples, watchers = 5, "auto"
    results = []
    print(f"live digest latency: append -> session.digest event at a subscriber ({samples} samples each)")
    for watcher in watchers.split(","):
        n = samples if watcher != "poll" else max(20, samples // 10)
        if quick:
            n = samples
        times = measure(watcher, n)
        p50, p99 = statistics.median(times), pct(times, 0.99)
        goal = f"<= {GOAL_P50_MS:.0f} ms" if watcher == "auto" else ""
        print(f"  {watcher:<10} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   max {max(times):7.2f} ms   n={len(times)}")
        results.append(Result(f"live digest latency p50 ({watcher})", p50, "ms", goal=goal, met=goal_met(p50, goal),
                              runs=len(times), spread=f"{spread_of(times, 'ms')}; p99 {p99:.2f} ms"))
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--watchers", default="auto,watchfiles,poll")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    results = run(args.quick, args.samples, args.watchers)
    print_table(results)
    return 0 if all(r.met is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
