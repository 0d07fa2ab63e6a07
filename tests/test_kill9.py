"""kill -9 durability: maestrod is SIGKILLed at random moments while clients write at full speed; after every
restart each write it acknowledged is there and ``PRAGMA integrity_check`` says ok.

Writers, each on its own connection: tasks (``task.create``), mail (``mail.send``), and the timeline, through
an agent's ``task.report`` (a session spawned each round, acting with its token) and a person's
``task.update``. A write counts as acknowledged only once its whole success response was read. The kill
moments come from a seeded generator (``MAESTRO_KILL9_SEED``), so a failing round can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.subprocess_daemon import LineConn, SubprocessDaemon

ROUNDS = 20
SEED = int(os.environ.get("MAESTRO_KILL9_SEED", "9"))
#: An agent that writes its token where the test can read it, then waits.
TOKEN_TO_FILE = "printf %s \"$MAESTRO_SESSION_TOKEN\" > {0}.tmp && mv {0}.tmp {0}; exec cat"


class Acked:
    """What the daemon acknowledged, by kind; appended by the writer threads."""

    def __init__(self) -> None:
        self.tasks: list[str] = []
        self.mails: list[str] = []
        self.reports: list[str] = []
        self.updates: list[str] = []
        self.lock = threading.Lock()

    def total(self) -> int:
        return len(self.tasks) + len(self.mails) + len(self.reports) + len(self.updates)


def writer(path: Path, write: Callable[[LineConn, int], None], stop: threading.Event) -> None:
    """Call ``write`` until the daemon goes away (the kill) or ``stop`` is set."""
    try:
        conn = LineConn(path, timeout=30)
    except OSError:
        return
    n = 0
    try:
        while not stop.is_set():
            write(conn, n)
            n += 1
    except (ConnectionError, OSError):
        pass  # killed mid-call: that write was not acknowledged
    finally:
        conn.close()


def wait_for_file(path: Path, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return path.read_text()


def check_store(db_path: Path, acked: Acked) -> None:
    """Every acknowledged write is in the store, and SQLite finds the file sound."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tasks = {r[0] for r in db.execute("SELECT id FROM tasks")}
        mails = {r[0] for r in db.execute("SELECT id FROM mail_messages")}
        reports, updates = set(), set()
        for kind, data in db.execute("SELECT type, data FROM timeline WHERE type IN ('task.report', 'task.updated')"):
            d = json.loads(data)
            if kind == "task.report":
                reports.add(d["message"])
            else:
                updates.add(d["changes"].get("description"))
    finally:
        db.close()
    with acked.lock:
        assert not set(acked.tasks) - tasks, sorted(set(acked.tasks) - tasks)[:5]
        assert not set(acked.mails) - mails, sorted(set(acked.mails) - mails)[:5]
        assert not set(acked.reports) - reports, sorted(set(acked.reports) - reports)[:5]
        assert not set(acked.updates) - updates, sorted(set(acked.updates) - updates)[:5]


@pytest.fixture
def killd() -> Iterator[SubprocessDaemon]:
    root = Path(tempfile.mkdtemp(prefix="mk-", dir="/tmp"))
    d = SubprocessDaemon(root)
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(240)
def test_acknowledged_writes_survive_kill9(killd: SubprocessDaemon) -> None:
    d = killd
    rng = random.Random(SEED)
    acked = Acked()
    work = d.root / "work"
    work.mkdir()
    started = time.monotonic()
    d.start()
    setup = LineConn(d.socket)
    pid = setup.call("project.create", {"name": "k9", "dir": str(work)})["id"]
    target = setup.call("task.create", {"project": pid, "title": "reported on"})["id"]
    setup.close()
    for rnd in range(ROUNDS):
        if rnd:
            d.start()
            check_store(d.db_path, acked)  # recovered: everything acknowledged before the last kill
        c = LineConn(d.socket)
        token_file = d.root / f"token-{rnd}"
        c.call("session.spawn", {"project": pid, "name": f"agent-{rnd}", "agent": "command",
                                 "argv": ["sh", "-c", TOKEN_TO_FILE.format(token_file)]})
        token = wait_for_file(token_file)
        agent = LineConn(d.socket)
        agent.call("system.auth", {"token": token})
        c.close()

        create_task, send_mail, update_task, report = writes(pid, target, acked, f"r{rnd}")
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(d.socket, w, stop))
                   for w in (create_task, send_mail, update_task)]
        threads.append(threading.Thread(target=_report_loop, args=(agent, report, stop)))
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.02, 0.6))  # the kill moment: the input of this round, not a wait
        d.kill9()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a writer hung after the daemon was killed"
    d.start()
    check_store(d.db_path, acked)
    elapsed = time.monotonic() - started
    print(f"\nkill -9: {ROUNDS} rounds in {elapsed:.1f} s; acknowledged and present after restart: "
          f"{len(acked.tasks)} tasks, {len(acked.mails)} mails, {len(acked.reports)} reports, "
          f"{len(acked.updates)} updates ({acked.total()} writes)")
    assert acked.total() >= ROUNDS * 10, "the writers hardly wrote: the rounds proved little"
    assert len(acked.reports) >= ROUNDS, "too few agent reports were acknowledged"


def writes(pid: str, target: str, acked: Acked, tag: str) -> list[Callable[[LineConn, int], None]]:
    """The four writers of a round: each records what the daemon acknowledged, tagged with the round."""

    def create_task(conn: LineConn, n: int) -> None:
        tid = conn.call("task.create", {"project": pid, "title": f"{tag} t{n}"})["id"]
        with acked.lock:
            acked.tasks.append(tid)

    def send_mail(conn: LineConn, n: int) -> None:
        mid = conn.call("mail.send", {"to": ["human"], "subject": f"{tag} m{n}", "body": "b"})["id"]
        with acked.lock:
            acked.mails.append(mid)

    def update_task(conn: LineConn, n: int) -> None:
        text = f"{tag} u{n}"
        conn.call("task.update", {"id": target, "description": text})
        with acked.lock:
            acked.updates.append(text)

    def report(conn: LineConn, n: int) -> None:
        text = f"{tag} p{n}"
        conn.call("task.report", {"task": target, "status": "progress", "message": text})
        with acked.lock:
            acked.reports.append(text)

    return [create_task, send_mail, update_task, report]


def _report_loop(agent: LineConn, report: Callable[[LineConn, int], None], stop: threading.Event) -> None:
    n = 0
    try:
        while not stop.is_set():
            report(agent, n)
            n += 1
    except (ConnectionError, OSError):
        pass
    finally:
        agent.close()
