"""The mailbox under load, through a real Unix socket to a daemon in another process.

1. `mail wait` wake latency: a session blocks in `mail.wait`; another session's `mail.send`
   to it is timed from the moment the send leaves the sender until the waiting client has
   the answer (send -> commit -> mail.received -> waiter woken -> unread read and marked ->
   response). p50 / p99. Goal: p50 <= 5 ms.
2. Inbox at scale: 100,000 stored messages across 100 sessions (1,000 each, mixed
   priorities, ~10% unread); `mail.inbox` (default page of 50) as one of those sessions.
   p50 / p99. Goal: p50 <= 10 ms. `mail.inbox --unread` and `mail.wait --timeout 0` are
   shown too.
3. A flooded mailbox: one more session with 100,000 unread messages (mixed priorities);
   `mail.wait --timeout 0 --peek` (its first page of 1,000, by priority then oldest first) there.

The daemon is this file run with --serve: maestrod's App and server, in its own process,
with sessions inserted into the store and a token per session (spawning 100 real agents is
not what is measured here). Clients are maestroctl's own blocking client.
Run: python bench/bench_mail.py [--messages 100000] [--sessions 100] [--wakes 500] [--inbox 2000]
     [--flooded 100000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from _report import Result, goal_met, print_table, spread_of  # noqa: E402  (bench/ is the script directory)
from _stats import pct  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sid(i: int) -> str:
    return f"s-{i:06x}"


def populate(app: object, n_sessions: int, n_messages: int, n_flooded: int) -> None:
    from maestrod.store.db import utcnow

    db = app.db  # type: ignore[attr-defined]
    pid = app.projects.create("bench", "/tmp", "").id  # type: ignore[attr-defined]
    now = utcnow()
    with db.transaction() as c:
        c.execute("INSERT INTO sessions(id, project_id, name, role, parent_id, root_id, agent, cwd, status, "
                  "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                  (sid(0), pid, "coord", "coordinator", None, sid(0), "claude", "/tmp", "working", now, now))
        for i in range(1, n_sessions):
            c.execute("INSERT INTO sessions(id, project_id, name, role, parent_id, root_id, agent, cwd, status, "
                      "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (sid(i), pid, f"worker-{i}", "worker", sid(0), sid(0), "claude", "/tmp", "working", now, now))
        # The flooded mailbox (part 3): session number n_sessions.
        c.execute("INSERT INTO sessions(id, project_id, name, role, parent_id, root_id, agent, cwd, status, "
                  "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                  (sid(n_sessions), pid, "flooded", "worker", sid(0), sid(0), "claude", "/tmp", "working", now, now))
    store = app.mail.store
    rng = random.Random(5)
    types = ["assignment", "status_update", "query", "response", "directive", "notification", "blocked"]
    prios = ["critical"] * 2 + ["high"] * 10 + ["normal"] * 70 + ["low"] * 18
    body = "x" * 400
    ids: list[tuple[str, str]] = []
    with db.transaction():
        for k in range(n_messages):
            to = sid(k % n_sessions)  # 1,000 per session at the defaults
            frm = sid(rng.randrange(n_sessions))
            m = store.insert(sender=frm, recipients=[to], type_=rng.choice(types), subject=f"message {k}",
                             body=body, priority=rng.choice(prios))
            ids.append((to, m["id"]))
    with db.transaction() as c:
        c.executemany("UPDATE mail_recipients SET unread=0, read_at=? WHERE recipient=? "
                      "AND seq=(SELECT seq FROM mail_messages WHERE id=?)",
                      [(now, to, mid) for to, mid in ids if rng.random() < 0.9])
    with db.transaction():
        for k in range(n_flooded):
            store.insert(sender=sid(rng.randrange(n_sessions)), recipients=[sid(n_sessions)],
                         type_=rng.choice(types), subject=f"flood {k}", body=body, priority=rng.choice(prios))
    db.conn.execute("ANALYZE")


def serve(root: Path, n_sessions: int, n_messages: int, n_flooded: int) -> None:
    import trio

    import maestrod.handlers  # noqa: F401
    from maestrod.app import App
    from maestrod.server import serve as serve_app
    from maestrod.service import bind_unix

    async def main() -> None:
        app = App(root / "data", root / "d.sock")
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_app, app, [bind_unix(root / "d.sock")])
            # After the services started: the session service marks sessions it did not spawn
            # (left by "a previous daemon") as lost.
            populate(app, n_sessions, n_messages, n_flooded)
            tokens = {f"tok-{i}": sid(i) for i in range(n_sessions + 1)}
            app.token_lookup = tokens.get
            sys.stdout.write("READY\n")
            sys.stdout.flush()
            await trio.sleep_forever()

    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass


def report(name: str, samples: list[float], goal_ms: float | None = None,
           floor: list[float] | None = None) -> Result:
    p50, p99 = statistics.median(samples) * 1000, pct(samples, 0.99) * 1000
    goal = f"   goal p50 <= {goal_ms:g} ms: {'met' if p50 <= goal_ms else 'MISSED'}" if goal_ms else ""
    print(f"{name:<44} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   (n={len(samples)}){goal}")
    goal_text = f"<= {goal_ms:g} ms" if goal_ms else ""
    return Result(name + " p50", p50, "ms", floor=statistics.median(floor) * 1000 if floor else None,
                  floor_label="system.ping" if floor else "", goal=goal_text, met=goal_met(p50, goal_text),
                  runs=len(samples), spread=f"{spread_of(samples, 'ms', 1000, 3)}; p99 {p99:.3f} ms")


def run(quick: bool = False, messages: int = 100_000, sessions: int = 100, wakes: int = 500, inbox: int = 2000,
        flooded_n: int = 100_000) -> list[Result]:
    if quick:
        messages, sessions, wakes, inbox, flooded_n = 400, 8, 10, 20, 500
    from maestroctl.client import Client

    results: list[Result] = []
    root = Path(tempfile.mkdtemp(prefix="mm-", dir="/tmp"))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(root), "--messages", str(messages),
                             "--sessions", str(sessions), "--flooded", str(flooded_n)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        print(f"daemon ready with {messages:,} messages across {sessions} sessions "
              f"and {flooded_n:,} unread in one more "
              f"({time.perf_counter() - t0:.1f} s to build)")
        sock = str(root / "d.sock")

        # 1. wake latency: coordinator (session 0) waits, worker 1 sends to it.
        waiter = Client(sock, token="tok-0")
        sender = Client(sock, token="tok-1")
        waiter.call("mail.wait", {"timeout": 0})  # drain what the fill left unread
        while waiter.call("mail.wait", {"timeout": 0}):
            pass
        send_params = {"to": [sid(0)], "type": "query", "subject": "wake", "body": "now", "priority": "high"}
        lat: list[float] = []
        for i in range(wakes + 20):
            rid = waiter.send_request("mail.wait", {"timeout": 30})
            time.sleep(0.003)  # let the waiter park (it is concurrent: nothing else tells us)
            t_send = time.perf_counter()
            sid_req = sender.send_request("mail.send", send_params)
            msg = waiter.read_message()
            t_woken = time.perf_counter()
            assert msg.get("id") == rid and len(msg["result"]) == 1, msg
            reply = sender.read_message()
            assert reply.get("id") == sid_req and "result" in reply, reply
            if i >= 20:  # warm-up
                lat.append(t_woken - t_send)
        results.append(report("mail.wait wake latency (send -> woken)", lat, 5))

        # 2. inbox at scale, as a worker with 1,000 messages
        reader = Client(sock, token="tok-7")
        for _ in range(50):
            reader.call("mail.inbox", {})

        def timed(method: str, params: dict, n: int = inbox, client: Client = reader) -> list[float]:
            out = []
            for _ in range(n):
                t = time.perf_counter()
                result = client.call(method, params)
                out.append(time.perf_counter() - t)
            assert result is not None
            return out

        pings = timed("system.ping", {})
        report("system.ping (the floor, same connection)", pings)
        results.append(report(f"mail.inbox (page of 50 of {messages // sessions:,})", timed("mail.inbox", {}), 10,
                              pings))
        report("mail.inbox --unread", timed("mail.inbox", {"unread": True}))
        report("mail.inbox --type query", timed("mail.inbox", {"type": "query"}))
        report("mail.wait --timeout 0 --peek (all unread)", timed("mail.wait", {"timeout": 0, "peek": True}))

        # 3. the flooded mailbox: a page of 1,000 (with bodies) out of flooded_n unread
        flooded = Client(sock, token=f"tok-{sessions}")
        peek = {"timeout": 0, "peek": True}
        for _ in range(5):
            flooded.call("mail.wait", peek)
        results.append(report(f"mail.wait --peek (1,000 of {flooded_n:,} unread)",
                              timed("mail.wait", peek, max(20, inbox // 10), flooded), None, pings))
        for c in (waiter, sender, reader, flooded):
            c.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--wakes", type=int, default=500)
    ap.add_argument("--inbox", type=int, default=2000)
    ap.add_argument("--flooded", type=int, default=100_000, help="unread messages in the flooded mailbox")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.sessions, args.messages, args.flooded)
        return
    print_table(run(args.quick, args.messages, args.sessions, args.wakes, args.inbox, args.flooded))


if __name__ == "__main__":
    main()
