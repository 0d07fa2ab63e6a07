"""Shared fixtures: an in-process daemon on a real Unix socket, and a raw NDJSON client."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import settings


from maestrod.app import App
from maestrod.server import serve
from maestrod.service import bind_unix

REPO = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
MAESTROD = str(BIN_DIR / "maestrod")
MAESTROCTL = str(BIN_DIR / "maestroctl")

# The property tests draw the same examples on every run (CI must not pass or fail by luck);
# MAESTRO_HYPOTHESIS=explore draws new ones each run, to look for what the fixed ones miss.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("MAESTRO_HYPOTHESIS", "deterministic"))


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temp dir: Unix socket paths must stay under 108 bytes."""
    d = Path(tempfile.mkdtemp(prefix="mt-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class RawClient:
    """A trio NDJSON client that exposes everything: responses, notifications, raw bytes."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""
        self.ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send(self, obj: Any) -> None:
        await self.send_raw(json.dumps(obj).encode() + b"\n")

    async def recv(self) -> Any:
        """The next line, decoded; raises EOFError when the server closed."""
        while b"\n" not in self.buf:
            chunk = await self.stream.receive_some(1 << 20)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    async def recv_response(self) -> Any:
        while True:
            msg = await self.recv()
            if isinstance(msg, dict) and "method" in msg and "id" not in msg:
                self.notifications.append(msg)
                continue
            return msg

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        rid = next(self.ids)
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        await self.send(msg)
        resp = await self.recv_response()
        assert resp.get("id") == rid, resp
        return resp  # type: ignore[no-any-return]

    async def call(self, method: str, params: Any = None) -> Any:
        resp = await self.request(method, params)
        if "error" in resp:
            raise AssertionError(f"{method} failed: {resp['error']}")
        return resp["result"]

    async def next_notification(self) -> dict[str, Any]:
        if self.notifications:
            return self.notifications.pop(0)
        while True:
            msg = await self.recv()
            if "method" in msg and "id" not in msg:
                return msg  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.stream.aclose()


class Daemon:
    def __init__(self, app: App, socket_path: Path) -> None:
        self.app = app
        self.socket_path = socket_path
        self._clients: list[RawClient] = []

    async def connect(self) -> RawClient:
        stream = await trio.open_unix_socket(str(self.socket_path))
        client = RawClient(stream)
        self._clients.append(client)
        return client


@pytest.fixture
async def daemon(nursery: trio.Nursery, short_tmp: Path) -> AsyncIterator[Daemon]:
    sock = short_tmp / "d.sock"
    app = App(short_tmp / "data", sock)
    await nursery.start(serve, app, [bind_unix(sock)])
    d = Daemon(app, sock)
    yield d
    for c in d._clients:
        await c.aclose()
    app.close()


@pytest.fixture
async def client(daemon: Daemon) -> RawClient:
    return await daemon.connect()


def maestroctl_env(socket_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    env["MAESTRO_SOCKET"] = str(socket_path)
    env.update(extra)
    return env


# --- sessions (issue 3): a scripted stand-in for Claude Code, event waits, screen waits -------------

#: A stand-in for ``claude``, run by maestrod like the real one (``--session-id``, ``--settings`` with
#: hooks that run ``maestroctl hook EVENT``). It asks the terminal for DA1 and the cursor position
#: and waits for the answers (as Claude Code's TUI does), enables bracketed paste, then takes
#: prompts: a bracketed paste + CR runs UserPromptSubmit (printing the hook's context) and leaves
#: it "working" until it reads BEL (\x07) -> Stop hook; \x01 -> Notification (permission prompt);
#: Escape alone -> "interrupted" + Stop; \x04 -> exit status 3.
FAKE_CLAUDE = r'''
import json, os, subprocess, sys, tty

args = sys.argv[1:]
settings = json.load(open(args[args.index("--settings") + 1]))
# `--resume <uuid>` (a relaunch) instead of `--session-id <uuid>`, as Claude Code takes them.
csid = args[args.index("--session-id" if "--session-id" in args else "--resume") + 1]
if os.environ.get("FAKE_IGNORE_HUP"):  # outlives its terminal (the daemon that held it died)
    import signal
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
hooks = {ev: entries[0]["hooks"][0]["command"] for ev, entries in settings["hooks"].items()}


def hook(event, **payload):
    payload.update(session_id=csid, hook_event_name=event, cwd=os.getcwd(),
                   transcript_path="/nonexistent/" + csid + ".jsonl")
    r = subprocess.run(hooks[event], shell=True, input=json.dumps(payload).encode(), capture_output=True,
                       timeout=20)
    return r.stdout.decode().strip()


def out(text):
    os.write(1, text.encode())


# Claude Code's empty input box (what its screen rule "empty-prompt" recognises): a "❯" between two rules.
BOX = "\r\n" + "\u2500" * 40 + "\r\n\u276f \r\n" + "\u2500" * 40 + "\r\n"


def read0():
    """The next bytes typed. EIO once the terminal hung up -- with FAKE_IGNORE_HUP, live on without it."""
    try:
        return os.read(0, 4096)
    except OSError:
        if not os.environ.get("FAKE_IGNORE_HUP"):
            raise
    import time
    time.sleep(3600)
    return b""


def read_until(marker):
    got = b""
    while marker not in got:
        got += read0()
    return got


tty.setraw(0)
hook("SessionStart", source="resume" if "--resume" in args else "startup")
out("fake claude\r\n\x1b[c")
da1 = read_until(b"c")
out("\x1b[6n")
cpr = read_until(b"R")
if os.environ.get("FAKE_BOX_DELAY"):  # as Claude Code: paste mode on, and the input box a while later
    import time
    out("\x1b[?2004h")
    time.sleep(float(os.environ["FAKE_BOX_DELAY"]))
out("da1=%r cpr=%r\r\n\x1b[?2004h" % (da1, cpr) + BOX)
buf = b""
working = False
while True:
    data = read0()
    if not data:
        break
    buf += data
    while True:
        if b"\x04" in buf:
            out("bye\r\n")
            sys.exit(3)
        if b"\x01" in buf:
            buf = buf.replace(b"\x01", b"", 1)
            hook("Notification", notification_type="permission_prompt", message="Claude needs your permission")
            continue
        if working:
            if b"\x07" in buf:
                buf = buf.replace(b"\x07", b"", 1)
                said = hook("Stop", stop_hook_active=False, last_assistant_message="done")
                working = bool(said and json.loads(said).get("decision") == "block")
                out("stop: %s" % (said or "-") + BOX)
                continue
            if buf == b"\x1b":
                buf = b""
                working = False
                out("interrupted")
                hook("Stop", stop_hook_active=False)
                out(BOX)
            break
        start, end = buf.find(b"\x1b[200~"), buf.find(b"\x1b[201~")
        if start >= 0 and end > start and b"\r" in buf[end:]:
            text = buf[start + 6:end].decode()
            buf = buf[buf.index(b"\r", end) + 1:]
            # FAKE_NO_PROMPT_HOOK: as if the hook call were lost (the transcript still confirms).
            context = "" if os.environ.get("FAKE_NO_PROMPT_HOOK") else hook("UserPromptSubmit", prompt=text)
            # Like Claude Code, the input box stays on screen while the agent works.
            out("\r\nprompt: %s\r\ncontext: %s" % (text.replace("\n", "|"), context or "-") + BOX)
            working = True
            hook("PreToolUse", tool_name="Bash", tool_input={"command": "true"})
            continue
        break
'''


@pytest.fixture
def fake_claude(short_tmp: Path) -> Path:
    path = short_tmp / "fake-claude"
    path.write_text(f"#!{sys.executable}\n{FAKE_CLAUDE}")
    path.chmod(0o755)
    return path


class EventLog:
    """Every event the daemon publishes, with waits (an in-process listener: nothing is missed)."""

    def __init__(self, app: App) -> None:
        self.items: list[dict[str, Any]] = []
        self._changed = trio.Event()
        app.bus.add_listener(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.items.append(event)
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def wait_for(self, pred: Any, timeout: float = 15.0, start: int = 0) -> dict[str, Any]:
        with trio.fail_after(timeout):
            i = start
            while True:
                changed = self._changed
                while i < len(self.items):
                    if pred(self.items[i]):
                        return self.items[i]
                    i += 1
                await changed.wait()

    async def status(self, sid: str, to: str, timeout: float = 15.0, start: int = 0) -> dict[str, Any]:
        return await self.wait_for(lambda e: e["topic"] == "session.status" and e["data"]["session_id"] == sid
                                   and e["data"]["to"] == to, timeout, start)

    def statuses(self, sid: str) -> list[str]:
        return [e["data"]["to"] for e in self.items
                if e["topic"] == "session.status" and e["data"]["session_id"] == sid]


@pytest.fixture
def events(daemon: Daemon) -> EventLog:
    return EventLog(daemon.app)


async def wait_screen(app: App, sid: str, pred: Any, timeout: float = 10.0) -> str:
    """Poll the session's screen until ``pred(text)`` (the screen has no change event to await)."""
    with trio.fail_after(timeout):
        while True:
            text = (await app.sessions.screen(sid))["text"]
            if pred(text):
                return text  # type: ignore[no-any-return]
            await trio.sleep(0.02)


def add_project(app: App, name: str = "proj", dir_: str = "/tmp") -> str:
    """A project row (the existing one if ``name`` is taken), straight through the store."""
    row = app.db.conn.execute("SELECT id FROM projects WHERE name=?", (name,)).fetchone()
    if row is not None:
        return str(row[0])
    return app.projects.create(name, dir_, "").id


def insert_session(app: App, sid: str, project_id: str, *, name: str | None = None, role: str = "worker",
                   parent: str | None = None, status: str = "working", agent: str = "claude",
                   transcript: Path | None = None, token_hash: str | None = None) -> str:
    """A session row without a process (for tests of what reads sessions: mail, policy, digests)."""
    from maestrod.store.db import utcnow

    root = sid
    if parent is not None:
        root = app.db.conn.execute("SELECT root_id FROM sessions WHERE id=?", (parent,)).fetchone()[0]
    now = utcnow()
    with app.db.transaction() as c:
        c.execute("INSERT INTO sessions(id, project_id, name, role, parent_id, root_id, agent, cwd, status, "
                  "transcript_path, token_hash, created_at, updated_at, exited_at) "
                  "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                  (sid, project_id, name or sid, role, parent, root, agent, "/tmp", status,
                   str(transcript) if transcript else None, token_hash, now, now,
                   now if status == "exited" else None))
    return sid

