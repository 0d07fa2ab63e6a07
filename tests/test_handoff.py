"""Graceful restart in place (``daemon.restart``, SIGHUP): a real maestrod subprocess re-executes itself and
its successor adopts every live session (docs/restart.md). The agents' processes, their output, the
screens, clients following events and attached viewers all go on; nothing is lost or repeated."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MAESTROCTL
from tests.handoff_support import AttachedViewer, HandoffDaemon, check_counter

#: Room for every byte the floods write, so that the whole output can be checked.
BIG_SCROLLBACK = "[sessions]\nscrollback_bytes = 67108864\n"


@pytest.fixture
def hd(short_tmp: Path) -> Iterator[HandoffDaemon]:
    d = HandoffDaemon(short_tmp, BIG_SCROLLBACK)
    d.start()
    d.call("project.create", {"name": "p", "dir": str(short_tmp)})
    try:
        yield d
    finally:
        d.stop()


def _env(d: HandoffDaemon) -> dict[str, str]:
    return {**d.env, "MAESTRO_SOCKET": str(d.socket)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_restart_keeps_sessions_screens_output_watchers_and_viewers(hd: HandoffDaemon) -> None:
    shell = hd.spawn("sh", ["bash", "--norc", "--noprofile", "-i"])
    hd.call("session.prompt", {"id": shell["id"], "message": "echo MARK-$((6*7))-BEFORE", "now": True})
    hd.wait_screen(shell["id"], "MARK-42-BEFORE")
    counter, stop = hd.counter("counter", 0.002, go=False)
    env = _env(hd)
    watch = subprocess.Popen([MAESTROCTL, "--json", "events", "watch", "--topic", "task.", "--since", "0"],
                             env={**env, "PYTHONFAULTHANDLER": "1"}, bufsize=0,  # select() sees every line
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    viewer = AttachedViewer(env, counter)
    try:
        viewer.wait_for(b"\x1b[0m\x1b[H\x1b[2J")  # the daemon's first repaint: attached
        Path(f"{stop}.go").touch()
        before = hd.call("task.create", {"project": "p", "title": "before"})
        viewer.wait_for(b"\n50.")
        pids = {s: hd.call("session.get", {"id": s})["pid"] for s in (shell["id"], counter)}

        answer, took = hd.restart()
        assert answer["restarting"] is True and answer["sessions"] == 2

        after = hd.call("task.create", {"project": "p", "title": "after"})
        # The same processes, still running, adopted: their status and pid as before.
        for sid, pid in pids.items():
            got = hd.call("session.get", {"id": sid})
            assert got["pid"] == pid and got["status"] == "idle" and _alive(pid)
        # The marker printed before the restart is still on the screen; a prompt after it is answered.
        assert "MARK-42-BEFORE" in hd.call("session.screen", {"id": shell["id"]})["text"]
        hd.call("session.prompt", {"id": shell["id"], "message": "echo AFTER-$((6*7))"})
        hd.wait_screen(shell["id"], "AFTER-42")
        # The counter wrote during the exec: every byte reached the scrollback, once, in order.
        last_seen = viewer.numbers()[-1]
        viewer.wait_for(b"\n%d." % (last_seen + 200))
        stop.touch()
        data = hd.wait_output(counter, b"END ")
        lines, _ = check_counter(data)
        assert lines > last_seen + 200
        # The attached viewer went on from where it was: every line shown once, in order.
        viewer.wait_for(b"END ")
        shown = viewer.numbers()
        assert shown == list(range(lines)), "the viewer missed or repeated lines"
        text = viewer.detach()
        assert "reattached 1 time(s)" in text
        # `events watch` reconnected and resumed by seq: both tasks, no event twice.
        seen: list[dict[str, Any]] = []
        assert watch.stdout is not None
        while not any(e["data"]["task"]["id"] == after["id"] for e in seen):
            ready, _, _ = select.select([watch.stdout], [], [], 30)
            if not ready:
                watch.send_signal(signal.SIGABRT)
                kept = hd.call("events.replay", {"since": 0, "topics": ["task."]})
                raise AssertionError(f"events watch printed no more after {seen}: {watch.communicate()[1]!r} {kept}")
            seen.append(json.loads(watch.stdout.readline()))
        seqs = [int(e["seq"]) for e in seen]
        assert seqs == sorted(set(seqs))
        assert [e["data"]["task"]["id"] for e in seen] == [before["id"], after["id"]]
    finally:
        watch.kill()
        _out, err = watch.communicate()
        if viewer.proc.poll() is None:
            viewer.proc.kill()
    assert b"reconnect" in err, err


def test_twenty_handoffs_under_a_flood_lose_no_byte(hd: HandoffDaemon) -> None:
    counter, stop = hd.counter("flood", 0.0002, width=128)
    hd.wait_output(counter, b"\n100.")
    pid = hd.call("session.get", {"id": counter})["pid"]
    for _ in range(20):
        hd.restart()
    assert hd.call("session.get", {"id": counter})["pid"] == pid
    stop.touch()
    start, data = hd.output(counter)
    while b"END " not in data:
        time.sleep(0.05)
        start, data = hd.output(counter)
    assert start == 0
    lines, written = check_counter(data)
    got = hd.call("session.output", {"id": counter, "offset": 0, "limit": 1})
    assert got["total"] == len(data)  # every byte the PTY gave, counted once
    assert lines > 1000 and written == lines * 128


def test_sighup_restarts_in_place(hd: HandoffDaemon) -> None:
    s = hd.spawn("cat", ["cat"])
    before = hd.call("system.version")
    started = time.monotonic()
    os.kill(hd.pid, signal.SIGHUP)
    hd.wait_new_daemon(started)
    after = hd.call("system.version")
    assert after["pid"] == before["pid"] == hd.pid
    got = hd.call("session.get", {"id": s["id"]})
    assert got["status"] == "idle" and _alive(got["pid"])
    hd.call("session.input", {"id": s["id"], "text": "echoed-after\n"})
    hd.wait_output(s["id"], b"echoed-after\r\necho")


def test_upgrade_refused_when_the_installed_state_check_fails(short_tmp: Path) -> None:
    """A build whose state version differs is refused by the old daemon, which keeps serving."""
    program = short_tmp / "maestrod-build"
    program.write_text(f"#!{sys.executable}\nimport sys\nfrom maestrod.main import main\nsys.exit(main())\n")
    program.chmod(0o755)
    hd = HandoffDaemon(short_tmp, program=[str(program)])
    hd.start()
    try:
        hd.call("project.create", {"name": "p", "dir": str(short_tmp)})
        s = hd.spawn("cat", ["cat"])
        # `pip install -U` of a build with another state format: the script now runs that build.
        program.write_text(f"#!{sys.executable}\nimport sys\nimport maestrod.handoff\n"
                           "maestrod.handoff.READS = (3,)\nfrom maestrod.main import main\nsys.exit(main())\n")
        uptime = hd.call("system.version")["uptime_s"]
        refused = hd.request("daemon.restart")
        assert refused["error"]["code"] == -32002
        message = refused["error"]["message"]
        assert "state version 2" in message and "reads versions 3 only" in message and "keeps running" in message
        # Still the old daemon (its uptime went on), still serving, the agent untouched.
        assert hd.call("system.version")["uptime_s"] >= uptime
        assert hd.call("session.get", {"id": s["id"]})["status"] == "idle"
        assert b"restart refused" in hd.log.read_bytes()
        out = subprocess.run([MAESTROCTL, "daemon", "restart"], env=_env(hd), capture_output=True, text=True)
        assert out.returncode == 1 and "reads versions 3 only" in out.stderr
    finally:
        hd.stop()


def test_reload_applies_a_setting_live_and_names_what_needs_a_restart(hd: HandoffDaemon) -> None:
    s = hd.spawn("cat", ["cat"])
    pid = hd.call("session.get", {"id": s["id"]})["pid"]
    hd.config_path.write_text(BIG_SCROLLBACK.replace("[sessions]\n", "[sessions]\nprompt_rate_per_minute = 1\n")
                              + "[web]\nport = 7799\n")
    out = subprocess.run([MAESTROCTL, "daemon", "reload"], env=_env(hd), capture_output=True, text=True, check=True)
    assert "sessions.prompt_rate_per_minute" in out.stdout and "web.port: not applied" in out.stdout
    r = hd.call("daemon.reload")  # nothing changed since
    assert r["changed"] == [] and [n["key"] for n in r["needs_restart"]] == ["web.port"]
    hd.call("session.prompt", {"id": s["id"], "message": "one"})
    limited = hd.request("session.prompt", {"id": s["id"], "message": "two"})
    assert limited["error"]["code"] == -32004 and limited["error"]["data"]["limit"] == 1
    got = hd.call("session.get", {"id": s["id"]})
    assert got["pid"] == pid and got["status"] == "idle"
    # A config that does not load changes nothing and says why.
    hd.config_path.write_text("[sessions]\nprompt_rate_per_minute = 'many'\n")
    bad = hd.request("daemon.reload")
    assert bad["error"]["code"] == -32002 and "prompt_rate_per_minute" in bad["error"]["message"]


def test_daemon_stop_stops_agents_gracefully(hd: HandoffDaemon) -> None:
    s = hd.spawn("cat", ["cat"])
    pid = hd.call("session.get", {"id": s["id"]})["pid"]
    out = subprocess.run([MAESTROCTL, "daemon", "stop"], env=_env(hd), capture_output=True, text=True, check=True)
    assert "stopping" in out.stdout
    assert hd.proc is not None and hd.proc.wait(timeout=30) == 0
    assert not _alive(pid)


def test_agents_may_not_restart_the_daemon(hd: HandoffDaemon) -> None:
    s = hd.spawn("tok", ["sh", "-c", "echo TOKEN=$MAESTRO_SESSION_TOKEN; exec cat"])
    data = hd.wait_output(s["id"], b"TOKEN=")
    token = data.split(b"TOKEN=", 1)[1].split()[0].decode()
    env = {**_env(hd), "MAESTRO_SESSION_TOKEN": token}
    out = subprocess.run([MAESTROCTL, "daemon", "restart"], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "only the person" in out.stderr


def test_prompt_rate_windows_survive_a_restart(short_tmp: Path) -> None:
    hd = HandoffDaemon(short_tmp, "[sessions]\nprompt_rate_per_minute = 2\n")
    hd.start()
    try:
        hd.call("project.create", {"name": "p", "dir": str(short_tmp)})
        s = hd.spawn("cat", ["cat"])
        for text in ("one", "two"):
            hd.call("session.prompt", {"id": s["id"], "message": text})
        hd.restart()
        limited = hd.request("session.prompt", {"id": s["id"], "message": "three"})
        assert limited["error"]["code"] == -32004, limited
        assert 0 < limited["error"]["data"]["retry_after"] <= 60
    finally:
        hd.stop()
