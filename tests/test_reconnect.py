"""The reconnecting client (maestroctl/reconnect.py) and maestroctl's exit codes, against real daemons.

Issue 11 item 2: `events watch` used to exit 3 when its subscriber was dropped, and nothing survived a
restart. Item 8: "the daemon closed the connection / answered too large" (exit 1) used to be reported as
"cannot reach maestrod" (exit 3).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from maestroctl.client import ConnectionLost, Unreachable
from maestroctl.reconnect import ReconnectingClient
from tests.conftest import MAESTROCTL, Daemon, RawClient, maestroctl_env
from tests.test_cli import DaemonProcess


@pytest.fixture
def dp(short_tmp: Path) -> Iterator[DaemonProcess]:
    """A real maestrod subprocess (started by the test), killed at the end if still running."""
    d = DaemonProcess(short_tmp)
    yield d
    for proc in d.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    d.notify.close()


def _replayed_seqs(dp: DaemonProcess, topic: str) -> list[int]:
    seqs: list[int] = []
    since = 0
    while True:
        page = dp.ctl_json("rpc", "events.replay", json.dumps({"since": since, "topics": [topic],
                                                                  "limit": 10000}))
        seqs += [e["seq"] for e in page["events"]]
        if not page["more"]:
            return seqs
        since = seqs[-1]


class Lines:
    """A subprocess's stdout lines, read by a thread (the test waits for them, bounded)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.items: list[str] = []
        self._cond = threading.Condition()
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.items.append(line)
                self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[str]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= count, timeout), self.items[-3:]
            return list(self.items)


def test_events_watch_survives_a_daemon_restart_with_no_gap_or_repeat(dp: DaemonProcess,
                                                                        short_tmp: Path) -> None:
    dp.start()
    dp.wait_ready()
    project = dp.ctl_json("project", "create", "--name", "R", "--dir", str(short_tmp))
    dp.ctl_json("task", "create", "--project", project["id"], "--title", "probe")
    # --since 0: the events already there first (from events.replay), then the live ones.
    watch = subprocess.Popen([MAESTROCTL, "--json", "events", "watch", "--topic", "task.", "--since", "0"],
                             env=dp.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = Lines(watch)
        lines.wait_for(1)
        for i in range(5):
            dp.ctl_json("task", "create", "--project", project["id"], "--title", f"before {i}")
        lines.wait_for(6)
        # While no daemon runs the watch retries; the new one gets changes before the watch is back too.
        _restart(dp)
        for i in range(5):
            dp.ctl_json("task", "create", "--project", project["id"], "--title", f"after {i}")
        seen = [json.loads(line)["seq"] for line in lines.wait_for(11)]
    finally:
        watch.send_signal(signal.SIGINT)
        _out, err = watch.communicate(timeout=20)
    expected = _replayed_seqs(dp, "task.")
    assert seen == expected and len(expected) == 11
    notes = [line for line in err.splitlines() if line.strip()]
    assert len(notes) == 1 and "reconnecting" in notes[0], err


def test_mail_wait_resumes_across_a_restart(dp: DaemonProcess) -> None:
    """A wait the daemon ended while shutting down (-32006 retry: nothing marked read) is sent again."""
    dp.start()
    dp.wait_ready()
    wait = subprocess.Popen([MAESTROCTL, "--json", "mail", "wait"], env=dp.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_waiter(dp)
        _restart(dp)
        _wait_for_waiter(dp)  # the same command, waiting again on the new daemon
        sent = dp.ctl_json("mail", "send", "--to", "human", "--subject", "hello", "--message", "after")
        out, err = wait.communicate(timeout=20)
    finally:
        if wait.poll() is None:
            wait.kill()
    assert wait.returncode == 0, err
    assert [m["id"] for m in json.loads(out)] == [sent["id"]]
    assert "reconnecting" in err and len(err.strip().splitlines()) == 1


def test_mail_wait_cut_off_by_a_crash_is_not_sent_again(dp: DaemonProcess) -> None:
    """No answer and no -32006: the wait may have marked mail read, so it is not resent; exit 1, saying so."""
    dp.start()
    dp.wait_ready()
    wait = subprocess.Popen([MAESTROCTL, "mail", "wait"], env=dp.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_waiter(dp)
    assert dp.proc is not None
    dp.proc.kill()
    _out, err = wait.communicate(timeout=20)
    assert wait.returncode == 1, err
    assert "closed the connection" in err and "not sent again" in err and "cannot reach" not in err


def _restart(dp: DaemonProcess) -> None:
    """SIGTERM the daemon, start a new one on the same socket and data (skipping the old one's STOPPING=1)."""
    assert dp.stop() == 0
    dp.start()
    while "READY=1" not in dp.notify.recv(4096).decode():
        pass


def _wait_for_waiter(dp: DaemonProcess) -> None:
    """Until the daemon has a long wait in progress (system.version counts them)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = dp.ctl("--json", "rpc", "system.version")
        if r.returncode == 0 and json.loads(r.stdout)["connections"]["waiting"] > 0:
            return
        time.sleep(0.05)
    raise AssertionError("no long wait in progress")


def test_unreachable_exits_3(short_tmp: Path) -> None:
    r = subprocess.run([MAESTROCTL, "task", "list", "--project", "x"], capture_output=True, text=True,
                       env=maestroctl_env(short_tmp / "none.sock"), timeout=20)
    assert r.returncode == 3 and "cannot reach maestrod" in r.stderr
    # A follower too: the first connection is never retried.
    r = subprocess.run([MAESTROCTL, "events", "watch"], capture_output=True, text=True,
                       env=maestroctl_env(short_tmp / "none.sock"), timeout=20)
    assert r.returncode == 3 and "cannot reach maestrod" in r.stderr


async def test_an_answer_too_large_exits_1_saying_so(daemon: Daemon) -> None:
    for i in range(18):  # 18 events of 1 MiB: their replay is one answer line of more than 16 MiB
        daemon.app.bus.publish("big.item", {"i": i, "pad": "x" * (1 << 20)})
    r = await trio.run_process([MAESTROCTL, "rpc", "events.replay", '{"since": 0, "topics": ["big."]}'],
                               capture_stdout=True, capture_stderr=True, check=False,
                               env=maestroctl_env(daemon.socket_path))
    err = r.stderr.decode()
    assert r.returncode == 1 and "larger than 16 MiB" in err and "cannot reach" not in err
    # The daemon is fine.
    ping = await trio.run_process([MAESTROCTL, "ping"], capture_stdout=True,
                                  env=maestroctl_env(daemon.socket_path))
    assert ping.stdout.startswith(b"pong")


async def test_a_dropped_subscriber_resumes_with_no_gap_or_repeat(daemon: Daemon) -> None:
    """A client that falls behind is dropped (told), reconnects, and replays what it missed, in order."""
    daemon.app.config.events.subscriber_max_bytes = 65536
    notes: list[str] = []
    rc = ReconnectingClient(str(daemon.socket_path), note=notes.append)
    await trio.to_thread.run_sync(rc.subscribe, ["bulk."])
    got: list[int] = []
    total = 300

    def follow() -> None:
        for ev in rc.events():
            if not got:
                time.sleep(1.0)  # fall behind once: the daemon keeps publishing meanwhile
            got.append(ev["seq"])
            if len(got) == total:
                return

    async with trio.open_nursery() as n:
        n.start_soon(trio.to_thread.run_sync, follow)
        for i in range(total):
            daemon.app.bus.publish("bulk.item", {"i": i, "pad": "y" * 4096})
            await trio.sleep(0)
    rc.close()
    assert got == list(range(got[0], got[0] + total))
    assert rc.reconnects >= 1 and any("dropped this subscriber" in n for n in notes), notes


async def test_a_call_that_may_have_run_is_not_sent_again(daemon: Daemon, client: RawClient) -> None:
    """Only repeatable calls are resent after a lost connection; the first connection is never retried."""
    rc = ReconnectingClient(str(daemon.socket_path), note=lambda _text: None)
    await trio.to_thread.run_sync(rc.call, "system.ping")
    assert rc._client is not None
    rc._client.sock.shutdown(2)  # as if the daemon had closed it
    try:
        await trio.to_thread.run_sync(rc.call, "system.ping")
        raise AssertionError("expected ConnectionLost")
    except ConnectionLost as exc:
        assert "not sent again" in str(exc)
    assert await trio.to_thread.run_sync(lambda: rc.call("system.ping", repeatable=True)) == "pong"
    rc.close()
    none = ReconnectingClient(str(daemon.socket_path) + ".none", note=lambda _text: None)
    try:
        none.call("system.ping", repeatable=True)
        raise AssertionError("expected Unreachable")
    except Unreachable:
        pass
