"""Regenerate docs/dashboard-desktop.png (1280x800) and docs/dashboard-phone.png (390x844).

A throwaway maestrod (its own socket, data and config; the web feed on a free port) gets a demo project:
tasks with dependencies, a few command sessions printing coloured output, some mail. Then headless
Debian chromium (through Playwright, executable_path; never Playwright's own browser downloads) opens the
dashboard at both sizes and takes the screenshots. Run from the repository root:

    python scripts/dashboard_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

#: What the demo sessions print: a test run, a build, a log tail (ANSI colours, as real tools print).
TEST_RUN = r'''
import time
G, R, Y, B, D, X = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[2m", "\x1b[0m"
print(B + "$ pytest -q tests/api" + X)
for name in ["test_create", "test_list", "test_update", "test_delete", "test_auth", "test_paging"]:
    print(f"tests/api/{name}.py " + G + "." * 12 + X)
print(f"tests/api/test_limits.py {G}....{X}{R}F{X}{G}...{X}")
print(R + B + "FAILED" + X + " tests/api/test_limits.py::test_burst - assert 429 == 200")
print(Y + "1 failed" + X + ", " + G + "82 passed" + X + D + " in 3.21s" + X)
print()
print("waiting for a prompt> ", end="", flush=True)
time.sleep(3600)
'''
BUILD = r'''
import time
C, G, X = "\x1b[36m", "\x1b[32m", "\x1b[0m"
for step in ["resolving dependencies", "compiling parser", "compiling api", "linking", "bundling docs"]:
    print(C + "==>" + X + " " + step + " " + G + "ok" + X, flush=True)
time.sleep(3600)
'''


def ctl(env: dict[str, str], *args: str) -> object:
    out = subprocess.run([str(BIN / "maestroctl"), "--json", *args], env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out) if out.strip() else None


def demo(env: dict[str, str], root: Path) -> str:
    """The demo project and sessions; the id of the session to select."""
    work = root / "work"
    work.mkdir()
    ctl(env, "project", "create", "--name", "shop-api", "--dir", str(work))
    first = ctl(env, "task", "create", "--project", "shop-api", "--title", "design the rate limiter",
                "--priority", "high")
    second = ctl(env, "task", "create", "--project", "shop-api", "--title", "implement the limiter",
                 "--depends-on", first["id"])  # type: ignore[index]
    ctl(env, "task", "create", "--project", "shop-api", "--title", "document the limits",
        "--depends-on", second["id"])  # type: ignore[index]
    ctl(env, "task", "update", first["id"], "--status", "in_progress")  # type: ignore[index]
    py = sys.executable
    api = ctl(env, "session", "spawn", "--project", "shop-api", "--name", "api-tests", "--cwd", str(work),
              "--", py, "-u", "-c", TEST_RUN)
    ctl(env, "session", "spawn", "--project", "shop-api", "--name", "builder", "--cwd", str(work),
        "--", py, "-u", "-c", BUILD)
    ctl(env, "project", "create", "--name", "docs-site", "--dir", str(work))
    ctl(env, "task", "create", "--project", "docs-site", "--title", "new landing page")
    ctl(env, "session", "spawn", "--project", "docs-site", "--name", "writer", "--cwd", str(work),
        "--", "sh", "-c", "printf 'drafting \\033[1mREADME.md\\033[0m...\\n'; exec cat")
    ctl(env, "mail", "send", "--to", str(api["id"]), "--type", "query",  # type: ignore[index]
        "--subject", "limits", "--message", "what burst size do we allow?")
    return str(api["id"])  # type: ignore[index]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs", help="where the PNGs go (default: docs)")
    ap.add_argument("--chromium", default=os.environ.get("MAESTRO_TEST_CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="mshot-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    env.update(XDG_DATA_HOME=str(root / "data"), XDG_RUNTIME_DIR=str(root), MAESTRO_SOCKET=str(root / "d.sock"))
    config = root / "config.toml"
    config.write_text("[web]\nport = 0\n")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(root / "n.sock"))
    notify.settimeout(30)
    daemon = subprocess.Popen([str(BIN / "maestrod"), "--config", str(config), "--log-level", "warning"],
                              env=dict(env, NOTIFY_SOCKET=str(root / "n.sock")))
    try:
        assert b"READY=1" in notify.recv(4096)
        selected = demo(env, root)
        url = ctl(env, "web", "url")["url"]  # type: ignore[index]
        out = Path(args.out)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for name, (width, height) in {"desktop": (1280, 800), "phone": (390, 844)}.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(url)
                page.locator(f'button.session[data-id="{selected}"]').click()
                page.wait_for_function("() => document.getElementById('term').textContent.includes('82 passed')",
                                       timeout=15_000)
                page.wait_for_function("() => document.getElementById('explain-list').children.length > 0",
                                       timeout=15_000)
                path = out / f"dashboard-{name}.png"
                page.screenshot(path=str(path))
                print(f"wrote {path} ({width}x{height})")
                page.close()
            browser.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        notify.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
