"""Dashboard under a flood: 20 sessions printing as fast as they can, the page open in headless chromium.

What the daemon sends one viewer (events of every topic + the selected session's screen frames, at most
10 a second) is counted by a plain socket client that subscribes and watches exactly like the page; the
page counts, in-page, what it received and what it rendered (``window.maestroStats``). Reported: both
rates, their ratio (goal: the page renders >= 0.9x what the daemon sends: it keeps up), and, once the flood
stops, how long until the page shows each session's last line (catch-up; it must not lag behind).

The flood runs for ``--seconds``, started in every session at once (a "go" typed into each, in one batch,
once the page watches); each session prints coloured numbered lines in bursts of 50. The 2-core
machine is saturated on purpose: the daemon, 20 printers and the browser share it.
Run: python bench/bench_dashboard.py [--sessions 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import BIN, running_daemon  # noqa: E402
from _report import Result, goal_met, print_table  # noqa: E402

GOAL = ">= 0.9x"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

FLOOD = r'''
import sys, time
name = sys.argv[1]
sys.stdin.readline()  # "go": every session starts together, once the page watches
until = time.time() + float(sys.argv[2])
i = 0
while time.time() < until:
    sys.stdout.write("".join(f"\x1b[3{(i + k) % 8}m{name} line {i + k}\x1b[0m " + "x" * 60 + "\n" for k in range(50)))
    sys.stdout.flush()
    i += 50
print(f"DONE {name} after {i} lines", flush=True)
time.sleep(3600)
'''


def ctl(env: dict[str, str], *args: str) -> object:
    out = subprocess.run([str(BIN / "maestroctl"), "--json", *args], env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out) if out.strip() else None


class SocketViewer(threading.Thread):
    """What the daemon sends a viewer like the page: every event, and one session's screen frames."""

    def __init__(self, sock_path: str, sid: str) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock_path)
        self.sid = sid
        self.events = 0
        self.frames = 0
        self.counting = False
        self.stop = False

    def run(self) -> None:
        self.sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"topics":[]}}\n'
                          + json.dumps({"jsonrpc": "2.0", "id": 2, "method": "session.watch_screen",
                                        "params": {"id": self.sid, "max_rate": 10}}).encode() + b"\n")
        buf = b""
        while not self.stop:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            if not self.counting:
                continue
            for line in lines:
                if line.startswith(b'{"jsonrpc":"2.0","method":"event"'):
                    self.events += 1
                elif b'"method":"session.screen_model"' in line[:80]:
                    self.frames += 1


def run(quick: bool = False, sessions: int = 20, seconds: float = 10.0) -> list[Result]:
    from playwright.sync_api import sync_playwright

    if quick:
        sessions, seconds = 3, 2.0
    cfg = Path(tempfile.mkdtemp(prefix="mbd-", dir="/tmp")) / "config.toml"
    cfg.write_text("[web]\nport = 0\n")
    with running_daemon("--config", str(cfg)) as (sock_path, env):
        ctl(env, "project", "create", "--name", "flood", "--dir", "/tmp")
        url = ctl(env, "web", "url")["url"]  # type: ignore[index]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_function("() => window.maestroStats && window.maestroStats.connects >= 1")
            # Started together: the sessions print for `seconds` from their start.
            ids = [ctl(env, "session", "spawn", "--project", "flood", "--name", f"flood-{n:02d}", "--",
                       sys.executable, "-c", FLOOD, f"flood-{n:02d}", str(seconds))["id"]  # type: ignore[index]
                   for n in range(sessions)]
            watched = ids[0]
            viewer = SocketViewer(str(sock_path), watched)
            viewer.start()
            page.locator(f'button.session[data-id="{watched}"]').click()
            page.wait_for_function("() => window.maestroStats.framesRendered >= 1")
            before = page.evaluate("() => ({...window.maestroStats})")
            viewer.counting = True
            t0 = time.perf_counter()
            go = socket.socket(socket.AF_UNIX)
            go.connect(str(sock_path))
            go.sendall(json.dumps([{"jsonrpc": "2.0", "id": n, "method": "session.input",
                                    "params": {"id": sid, "text": "go\r"}} for n, sid in enumerate(ids)]).encode()
                       + b"\n")
            go.recv(1 << 16)
            go.close()
            page.wait_for_function("() => document.getElementById('term').textContent.includes('DONE')",
                                   timeout=(seconds + 60) * 1000)
            flood_done = time.perf_counter()
            after = page.evaluate("() => ({...window.maestroStats})")
            elapsed = flood_done - t0
            viewer.counting = False
            viewer.stop = True
            # Catch-up: every session's last line, as the page shows it when selected.
            catch_up: list[float] = []
            for sid in ids[1:4]:
                t1 = time.perf_counter()
                page.locator(f'button.session[data-id="{sid}"]').click()
                page.wait_for_function("() => document.getElementById('term').textContent.includes('DONE')")
                catch_up.append(time.perf_counter() - t1)
            browser.close()
    received = (after["events"] - before["events"]) + (after["frames"] - before["frames"])
    rendered = (after["eventsApplied"] - before["eventsApplied"]) + \
        (after["framesRendered"] - before["framesRendered"])
    sent = viewer.events + viewer.frames
    daemon_rate, page_rate = sent / elapsed, rendered / elapsed
    ratio = page_rate / daemon_rate if daemon_rate else 0.0
    print(f"{sessions} sessions flooding for {seconds:g} s; watched one screen for {elapsed:.1f} s")
    print(f"daemon -> a socket viewer: {daemon_rate:7.1f} msg/s  ({viewer.events} events, {viewer.frames} frames)")
    print(f"page received:             {received / elapsed:7.1f} msg/s")
    print(f"page rendered:             {page_rate:7.1f} msg/s  (rows redrawn: "
          f"{after['rowsRendered'] - before['rowsRendered']}, frames superseded before drawing: "
          f"{after.get('framesSuperseded', 0) - before.get('framesSuperseded', 0)})")
    print(f"ratio rendered/daemon:     {ratio:7.2f}x  (goal {GOAL})")
    print(f"catch-up on selecting another flooded session: {max(catch_up) * 1000:.0f} ms at most")
    return [
        Result(f"dashboard: messages rendered/s, {sessions} sessions flooding", page_rate, "msg/s",
               floor=daemon_rate, floor_label="daemon's rate to one socket viewer", ratio=ratio, goal=GOAL,
               met=goal_met(ratio, GOAL), runs=1,
               note=f"events + 10/s screen frames over {elapsed:.1f} s; catch-up {max(catch_up) * 1000:.0f} ms"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print_table(run(args.quick, args.sessions, args.seconds))


if __name__ == "__main__":
    main()
