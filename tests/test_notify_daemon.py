"""Notifications from a real daemon: a configured command that appends its environment to a file."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from maestrod.app import App
from maestrod.config import Config
from maestrod.notify import NotifyConfig
from maestrod.server import serve
from maestrod.service import bind_unix
from tests.conftest import MAESTROCTL, MAESTROD, Daemon, EventLog, RawClient, maestroctl_env, wait_screen
from tests.session_support import _fake_claude, _project, _spawn

#: Appends one line per run: when it started (its first act), then the five variables, tab-separated.
RECORDER = """#!/bin/sh
now=$(date +%s.%N)
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$now" "$MAESTRO_EVENT" "$MAESTRO_SESSION_ID" "$MAESTRO_SESSION_NAME" \\
  "$MAESTRO_PROJECT" "$MAESTRO_REASON" >> "$1"
"""


def _script(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    path.chmod(0o755)
    return path


async def _daemon(nursery: trio.Nursery, tmp: Path, notify: NotifyConfig) -> Daemon:
    sock = tmp / "d.sock"
    app = App(tmp / "data", sock, Config(notify=notify))
    await nursery.start(serve, app, [bind_unix(sock)])
    return Daemon(app, sock)


@pytest.fixture
async def closing() -> AsyncIterator[list[Daemon]]:
    made: list[Daemon] = []
    yield made
    for d in made:
        for c in d._clients:
            await c.aclose()
        d.app.close()


async def _lines(path: Path, count: int, timeout: float = 10.0) -> list[list[str]]:
    """The recorder's lines once there are ``count`` (a file has no event to await: poll it)."""
    with trio.fail_after(timeout):
        while True:
            if path.exists():
                lines = [ln.split("\t") for ln in path.read_text().splitlines()]
                if len(lines) >= count:
                    return lines
            await trio.sleep(0.01)


def _seconds(at: str) -> float:
    return dt.datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


async def _settled(app: App, runs: int) -> None:
    """Until the notifier finished ``runs`` commands (its counters move when a process is reaped)."""
    n = app.notifier
    with trio.fail_after(10):
        while n.sent + n.failed < runs:
            await trio.sleep(0.01)


async def test_every_kind_runs_the_command_within_2s(nursery: trio.Nursery, short_tmp: Path,
                                                      fake_claude: Path, closing: list[Daemon]) -> None:
    out = short_tmp / "runs.tsv"
    rec = _script(short_tmp, "rec", RECORDER)
    daemon = await _daemon(nursery, short_tmp, NotifyConfig(command=[str(rec), str(out)], debounce_seconds=0,
                                                            long_turn_seconds=0.3))
    closing.append(daemon)
    events = EventLog(daemon.app)
    client: RawClient = await daemon.connect()
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, name="w1")
    sid = s["id"]
    await wait_screen(daemon.app, sid, lambda t: "cpr=" in t)  # the fake reads its input from here on

    await client.call("session.prompt", {"id": sid, "message": "go"})
    await events.status(sid, "working")
    await trio.sleep(0.4)  # make the turn longer than long_turn_seconds
    mark = len(events.items)
    await client.call("session.input", {"id": sid, "text": "\x07"})  # Stop: the long turn ends idle
    long_turn = await events.status(sid, "idle", start=mark)
    lines = await _lines(out, 1)

    await client.call("session.input", {"id": sid, "text": "\x01"})  # a permission dialog
    waiting = await events.status(sid, "waiting_input")
    flagged = await events.wait_for(lambda e: e["topic"] == "session.needs_attention"
                                    and e["data"]["needs_attention"])
    lines = await _lines(out, 3)

    await client.call("session.input", {"id": sid, "text": "\x04"})  # the fake exits with status 3
    exited = await events.status(sid, "exited")
    lines = await _lines(out, 4)

    by_kind = {ln[1]: ln for ln in lines}
    assert sorted(by_kind) == ["exited", "long_turn", "needs_attention", "waiting_input"]
    for kind, ev in [("long_turn", long_turn), ("waiting_input", waiting), ("needs_attention", flagged),
                     ("exited", exited)]:
        at, event, session_id, name, project, reason = by_kind[kind]
        assert (event, session_id, name, project) == (kind, sid, "w1", "p")
        latency = float(at) - _seconds(ev["at"])
        assert latency < 2.0, (kind, latency)
        print(f"{kind}: command started {latency * 1000:.0f} ms after the event")
    assert by_kind["needs_attention"][5] == "Claude needs your permission"
    assert by_kind["long_turn"][5].startswith("a turn of ")
    assert by_kind["exited"][5].startswith("failed (code 3)")
    await _settled(daemon.app, 4)
    stats = (await client.call("system.version"))["notify"]
    assert stats == {"program": str(rec), "sent": 4, "failed": 0, "timed_out": 0, "dropped": 0, "debounced": 0}


async def test_debounce_gives_one_run_per_burst(nursery: trio.Nursery, short_tmp: Path, fake_claude: Path,
                                                closing: list[Daemon]) -> None:
    out = short_tmp / "runs.tsv"
    rec = _script(short_tmp, "rec", RECORDER)
    daemon = await _daemon(nursery, short_tmp, NotifyConfig(command=[str(rec), str(out)], debounce_seconds=60))
    closing.append(daemon)
    events = EventLog(daemon.app)
    client = await daemon.connect()
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, name="w1")
    sid = s["id"]
    await wait_screen(daemon.app, sid, lambda t: "cpr=" in t)  # the fake reads its input from here on
    # A dialog: waiting_input and needs_attention, two changes inside the window.
    await client.call("session.input", {"id": sid, "text": "\x01"})
    await events.status(sid, "waiting_input")
    # The notifier's listener ran before the test's (it was added first): its verdict is in.
    await events.wait_for(lambda e: e["topic"] == "session.needs_attention" and e["data"]["needs_attention"])
    assert daemon.app.notifier.decider.debounced == 1
    # Its exit is inside the window too.
    await client.call("session.input", {"id": sid, "text": "\x04"})
    await events.status(sid, "exited")
    assert daemon.app.notifier.decider.debounced == 2
    await _settled(daemon.app, 1)
    lines = await _lines(out, 1)
    assert [ln[1] for ln in lines] == ["waiting_input"]
    # Another session is not held back by the first one's window.
    other = await _spawn(client, ["true"], name="short")
    await events.status(other["id"], "exited")
    lines = await _lines(out, 2)
    assert [(ln[1], ln[3]) for ln in lines] == [("waiting_input", "w1"), ("exited", "short")]


async def _await_death(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await trio.lowlevel.wait_readable(fd)  # readable once the process has exited
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="pidfd_open (Linux >= 5.3) awaits a process's death")
async def test_a_command_that_hangs_is_killed(nursery: trio.Nursery, short_tmp: Path,
                                              closing: list[Daemon]) -> None:
    pids = short_tmp / "pids"
    # The shell and its child sleep both: the whole process group must go.
    hang = _script(short_tmp, "hang", '#!/bin/sh\nsleep 300 &\necho "$$ $!" > "$1"\nwait\n')
    daemon = await _daemon(nursery, short_tmp, NotifyConfig(command=[str(hang), str(pids)], timeout_seconds=0.5))
    closing.append(daemon)
    events = EventLog(daemon.app)
    client = await daemon.connect()
    await _project(client, short_tmp)
    s = await _spawn(client, ["true"])
    await events.status(s["id"], "exited")
    with trio.fail_after(10):
        while not pids.exists() or len(pids.read_text().split()) < 2:
            await trio.sleep(0.01)
        shell, sleeper = map(int, pids.read_text().split())
        started = trio.current_time()
        await _await_death(shell)
        await _await_death(sleeper)
    assert trio.current_time() - started < 5
    await _settled(daemon.app, 1)
    assert daemon.app.notifier.timed_out == 1
    assert (await client.call("system.ping")) == "pong"


def test_a_failing_command_is_logged_once_and_the_daemon_lives(short_tmp: Path) -> None:
    """maestrod as a subprocess with a config file: its stderr is the log a person reads."""
    failing = _script(short_tmp, "fail", "#!/bin/sh\necho 'no display here' >&2\nexit 3\n")
    (short_tmp / "config").mkdir()
    (short_tmp / "config" / "config.toml").write_text(
        f"[notify]\ncommand = [{json.dumps(str(failing))}]\ndebounce_seconds = 0\n")
    sock = short_tmp / "d.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "NOTIFY_SOCKET"))}
    log_path = short_tmp / "maestrod.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([MAESTROD, "--socket", str(sock), "--data-dir", str(short_tmp / "data"),
                                 "--config", str(short_tmp / "config" / "config.toml")],
                                env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        ctl_env = maestroctl_env(sock)

        def ctl(*args: str) -> str:
            r = subprocess.run([MAESTROCTL, "--json", *args], env=ctl_env, capture_output=True, text=True,
                               timeout=30)
            assert r.returncode == 0, (args, r.stderr)
            return r.stdout

        with _deadline(20) as deadline:
            while subprocess.run([MAESTROCTL, "ping"], env=ctl_env, capture_output=True).returncode != 0:
                deadline.check()
        ctl("project", "create", "--name", "p", "--dir", str(short_tmp))
        for name in ("one", "two", "three"):
            ctl("session", "spawn", "--project", "p", "--name", name, "--", "true")
        with _deadline(20) as deadline:
            while json.loads(ctl("rpc", "system.version"))["notify"]["failed"] < 3:
                deadline.check()
        stats = json.loads(ctl("rpc", "system.version"))["notify"]
        assert stats["failed"] == 3 and stats["sent"] == 0 and stats["program"] == str(failing)
        assert json.loads(ctl("rpc", "system.ping")) == "pong"
        logged = [ln for ln in log_path.read_text().splitlines() if "notify command" in ln]
        assert len(logged) == 1, logged
        assert "failed with status 3: 'no display here' (logged once)" in logged[0]
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


class _deadline:
    """A wall-clock bound for a blocking poll loop (``check`` raises once it is over)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> _deadline:
        import time

        self.until = time.monotonic() + self.seconds
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def check(self) -> None:
        import time

        if time.monotonic() > self.until:
            raise TimeoutError(f"not within {self.seconds} s")
        time.sleep(0.02)


