"""Hardening item 1: a hook cannot point a session's transcript at any file, and no transcript file can block
the event loop (a FIFO at the path, a symbolic link, another directory, a file not named ``<uuid>.jsonl``).

The validator (``maestrod.sessions.transcript_path``) on plain files, the tailer on a FIFO, then the daemon:
a fake SessionStart report over the socket, authenticated with the session's own token.
"""

from __future__ import annotations

import errno
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from maestrod.private_files import NotRegularFile, open_regular
from maestrod.sessions.transcript_path import Refused, check_reported, physical
from maestrod.transcripts.tailer import TranscriptTailer
from tests.conftest import Daemon, RawClient, wait_screen
from tests.session_support import _as, _project
from shared.paths import claude_project_slug
from tests.test_digest_service_support import prompt


def _uuid_file(directory: Path) -> Path:
    return directory / f"{uuid.uuid4()}.jsonl"


@contextmanager
def rescued(fifo: Path, after: float = 5.0) -> Iterator[list[str]]:
    """Should anything block the event loop opening ``fifo`` for reading, a thread opens it for writing
    after ``after`` seconds, so the test fails (the yielded list is not empty) instead of hanging."""
    done = threading.Event()
    fired: list[str] = []

    def rescue() -> None:
        if done.wait(after):
            return
        fired.append(f"the event loop was blocked on {fifo} for {after} s")
        deadline = time.monotonic() + 30
        while not done.is_set() and time.monotonic() < deadline:  # until the test ends: it may block again
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # lets a blocked reader's open return
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader at the moment
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=rescue, daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        done.set()
        thread.join(15)


# -- the validator ---------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    d = tmp_path / "projects" / "-work-repo"
    d.mkdir(parents=True)
    return d


def test_a_new_uuid_file_in_the_same_directory_is_accepted(project: Path) -> None:
    expected = _uuid_file(project)
    clear = _uuid_file(project)
    clear.write_bytes(prompt("after /clear"))
    assert check_reported(str(expected), str(clear)) == str(clear)
    assert check_reported(str(expected), str(expected)) == str(expected), "not written yet: accepted"
    later = _uuid_file(project)
    assert check_reported(str(expected), str(later)) == str(later), "a file Claude Code has not created yet"


def test_subagent_files_under_the_project_directory_are_accepted(project: Path) -> None:
    expected = _uuid_file(project)
    subdir = project / expected.stem / "subagents"
    subdir.mkdir(parents=True)
    sub = subdir / "agent-a7be2f0.jsonl"
    sub.write_bytes(b"")
    assert check_reported(str(expected), str(sub)) == str(sub)
    # the project directory of a subagent path is still the session's own
    assert check_reported(str(sub), str(expected)) == str(expected)
    assert isinstance(check_reported(str(expected), str(subdir / "notes.jsonl")), Refused)


def test_a_fifo_is_refused_without_blocking(project: Path) -> None:
    expected = _uuid_file(project)
    fifo = _uuid_file(project)
    os.mkfifo(fifo)
    with rescued(fifo) as fired:
        verdict = check_reported(str(expected), str(fifo))
    assert not fired
    assert verdict == Refused("a FIFO, not a regular file")


def test_a_symbolic_link_is_refused(project: Path, tmp_path: Path) -> None:
    expected = _uuid_file(project)
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's private file\n")
    link = _uuid_file(project)
    link.symlink_to(secret)
    verdict = check_reported(str(expected), str(link))
    assert isinstance(verdict, Refused) and "symbolic link" in verdict.reason
    # nor through a linked <uuid>/ directory leading elsewhere
    elsewhere = tmp_path / "elsewhere" / "subagents"
    elsewhere.mkdir(parents=True)
    (elsewhere / "agent-x.jsonl").write_text("{}\n")
    linked = project / str(uuid.uuid4())
    linked.symlink_to(elsewhere.parent)
    verdict = check_reported(str(expected), str(linked / "subagents" / "agent-x.jsonl"))
    assert isinstance(verdict, Refused) and "leads out of" in verdict.reason


def test_another_directory_is_refused(project: Path, tmp_path: Path) -> None:
    expected = _uuid_file(project)
    other = tmp_path / "projects" / "-other-repo"
    other.mkdir()
    theirs = _uuid_file(other)
    theirs.write_text("{}\n")
    for reported in (theirs, tmp_path / "etc" / "passwd", project.parent / f"{uuid.uuid4()}.jsonl"):
        verdict = check_reported(str(expected), str(reported))
        assert isinstance(verdict, Refused) and "not in the session's Claude project directory" in verdict.reason
    # `..` is resolved before the directory is compared
    sneaky = f"{project}/../-other-repo/{theirs.name}"
    assert isinstance(check_reported(str(expected), sneaky), Refused)


@pytest.mark.parametrize(("name", "why"), [
    ("notes.txt", "is not <uuid>.jsonl"),
    ("passwd", "is not <uuid>.jsonl"),
    ("0f6c1e3a-1111-4a2b-9c3d.jsonl", "is not <uuid>.jsonl"),
    ("agent-a7be2f0.jsonl", "is not <uuid>.jsonl"),  # a subagent name only under <uuid>/subagents/
])
def test_a_bad_name_is_refused(project: Path, name: str, why: str) -> None:
    (project / name).write_text("{}\n")
    verdict = check_reported(str(_uuid_file(project)), str(project / name))
    assert isinstance(verdict, Refused) and why in verdict.reason


def test_the_physical_project_directory_of_a_linked_cwd(tmp_path: Path) -> None:
    real = tmp_path / "work"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    root = tmp_path / "config" / "projects"
    expected = root / claude_project_slug(str(tmp_path / "link")) / "0f6c1e3a-1111-4a2b-9c3d-000000000001.jsonl"
    assert physical(str(expected), str(tmp_path / "link")) == str(
        root / claude_project_slug(os.path.realpath(real)) / expected.name)
    assert physical(str(expected), str(real)) == physical(str(expected), str(tmp_path / "link"))


def test_odd_strings_are_refused(project: Path) -> None:
    expected = str(_uuid_file(project))
    assert check_reported(expected, "") == Refused("empty path")
    assert check_reported(expected, f"{uuid.uuid4()}.jsonl") == Refused("not an absolute path")
    assert isinstance(check_reported(expected, f"{project}/\x00.jsonl"), Refused)


def test_a_directory_is_refused(project: Path) -> None:
    d = _uuid_file(project)
    d.mkdir()
    assert check_reported(str(_uuid_file(project)), str(d)) == Refused("a directory, not a regular file")


def test_open_regular_never_waits_and_never_follows(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with rescued(fifo) as fired, pytest.raises(NotRegularFile):
        open_regular(str(fifo))
    assert not fired
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError) as info:
        open_regular(str(tmp_path / "link"))
    assert info.value.errno in (errno.ELOOP, errno.EMLINK)
    fd = open_regular(str(tmp_path / "real"))
    try:
        assert os.read(fd, 10) == b"x"
    finally:
        os.close(fd)


# -- the tailer --------------------------------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def feed(self, data: bytes) -> None:
        self.data += data

    def reset(self) -> None:
        self.data = b""


def test_the_tailer_refuses_a_fifo_then_reads_the_file_that_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    os.mkfifo(path)
    sink = _Sink()
    tailer = TranscriptTailer(str(path), sink)
    with rescued(path) as fired:
        assert not tailer.poll()
        assert not tailer.poll()
    assert not fired
    assert tailer.stats.refused == 2 and tailer.fd is None
    assert tailer.refused == "a FIFO, not a regular file"
    path.unlink()
    path.write_bytes(prompt("hello"))
    tailer.poll()
    assert sink.data == path.read_bytes() and tailer.refused is None
    tailer.close()


def test_the_tailer_refuses_a_symbolic_link(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(prompt("not for you"))
    path = tmp_path / "c.jsonl"
    path.symlink_to(tmp_path / "secret")
    sink = _Sink()
    tailer = TranscriptTailer(str(path), sink)
    assert not tailer.poll()
    assert sink.data == b"" and tailer.stats.refused == 1


# -- the daemon ----------------------------------------------------------------------------------------------

#: A stand-in for ``claude`` that prints its token (so the test can report hooks as the session), then waits.
TOKEN_CLAUDE = "#!/bin/sh\necho TOKEN=$MAESTRO_SESSION_TOKEN\nexec cat\n"


async def _claude_session(daemon: Daemon, client: RawClient, tmp: Path,
                          link: bool = False) -> tuple[dict[str, Any], RawClient]:
    """A Claude session (its transcript under ``tmp/config``; ``link``: its cwd reached through a symbolic
    link) and a connection authenticated as it."""
    fake = tmp / "claude"
    fake.write_text(TOKEN_CLAUDE)
    fake.chmod(0o755)
    daemon.app.config.claude.bin = str(fake)
    work = tmp / "work"
    work.mkdir()
    if link:
        (tmp / "link").symlink_to(work)
        work = tmp / "link"
    await _project(client, work)
    s = await client.call("session.spawn", {"project": "p", "name": "agent", "cwd": str(work),
                                            "env": {"CLAUDE_CONFIG_DIR": str(tmp / "config")}})
    text = await wait_screen(daemon.app, s["id"], lambda t: "TOKEN=" in t)
    conn = await _as(daemon, text.split("TOKEN=", 1)[1].split()[0])
    assert (await conn.call("system.whoami"))["session_id"] == s["id"]
    assert s["transcript_path"].startswith(str(tmp / "config" / "projects") + os.sep)
    Path(s["transcript_path"]).parent.mkdir(parents=True, exist_ok=link)
    return s, conn


async def _session_start(conn: RawClient, path: Path | str) -> Any:
    with trio.fail_after(5):
        return await conn.call("hook.event", {"event": "SessionStart", "payload": {
            "session_id": Path(path).stem, "source": "clear", "transcript_path": str(path)}})


async def _texts(daemon: Daemon, sid: str) -> list[str]:
    assert await daemon.app.transcripts.sync(sid)
    digest = daemon.app.transcripts.digest(sid)
    assert digest is not None
    return [e.summary for e in digest.entries("text")]


async def test_a_hook_reporting_a_fifo_is_refused_and_the_daemon_stays_responsive(
        daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    s, conn = await _claude_session(daemon, client, short_tmp)
    sid, expected = s["id"], Path(s["transcript_path"])
    expected.write_bytes(prompt("first"))
    fifo = _uuid_file(expected.parent)
    os.mkfifo(fifo)
    with rescued(fifo) as fired:
        assert await _session_start(conn, fifo) == {"stdout": ""}
        assert await client.call("system.ping") is not None
        assert await _texts(daemon, sid) == ["[PROMPT] first"], "still reading the spawn-time transcript"
    assert not fired
    row = daemon.app.sessions.store.row(sid)
    assert row["transcript_path"] == str(expected), "the refused path is not stored"
    assert row["claude_session_id"] == expected.stem
    hooks = [e["data"] for e in (await client.call("session.history", {"id": sid}))["entries"]
             if e["type"] == "session.hook"]
    assert hooks[-1]["refused_transcript_path"] == str(fifo)
    assert hooks[-1]["refused_reason"] == "a FIFO, not a regular file"

    # a file outside the session's project directory: any file the user can read
    await _session_start(conn, "/etc/passwd")
    assert daemon.app.sessions.store.row(sid)["transcript_path"] == str(expected)
    hooks = [e["data"] for e in (await client.call("session.history", {"id": sid}))["entries"]
             if e["type"] == "session.hook"]
    assert hooks[-1]["refused_transcript_path"] == "/etc/passwd"
    assert "not in the session's Claude project directory" in hooks[-1]["refused_reason"]


async def test_a_clear_style_new_transcript_is_followed(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    s, conn = await _claude_session(daemon, client, short_tmp)
    sid, expected = s["id"], Path(s["transcript_path"])
    expected.write_bytes(prompt("first"))
    assert await _texts(daemon, sid) == ["[PROMPT] first"]
    new = _uuid_file(expected.parent)
    new.write_bytes(prompt("after clear", 5))
    await _session_start(conn, new)
    row = daemon.app.sessions.store.row(sid)
    assert (row["transcript_path"], row["claude_session_id"]) == (str(new), new.stem)
    assert await _texts(daemon, sid) == ["[PROMPT] first", "[PROMPT] after clear"]
    hooks = [e["data"] for e in (await client.call("session.history", {"id": sid}))["entries"]
             if e["type"] == "session.hook"]
    assert "refused_transcript_path" not in hooks[-1]


async def test_a_fifo_at_the_spawn_time_path_is_refused_by_the_tailer(
        daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    s, _conn = await _claude_session(daemon, client, short_tmp)
    sid, expected = s["id"], Path(s["transcript_path"])
    os.mkfifo(expected)  # a hostile process got there before Claude Code's first record
    subdir = expected.parent / expected.stem / "subagents"
    subdir.mkdir(parents=True)
    os.mkfifo(subdir / "agent-a1.jsonl")
    with rescued(expected) as fired, rescued(subdir / "agent-a1.jsonl") as fired_sub:
        assert await daemon.app.transcripts.sync(sid)
        assert await client.call("system.ping") is not None
    assert not fired and not fired_sub
    stats = daemon.app.transcripts.tail_stats(sid)
    assert stats is not None
    assert stats["main"]["refused"] >= 1
    assert stats["subagents"]["subagent:a1"]["refused"] >= 1


async def test_claude_codes_own_directory_for_a_cwd_reached_through_a_link(
        daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    """Claude Code names the project directory after the physical cwd, not the one maestrod computed: its
    SessionStart path there is taken (the spawn-time prediction would never be written)."""
    s, conn = await _claude_session(daemon, client, short_tmp, link=True)
    sid, predicted = s["id"], Path(s["transcript_path"])
    real = os.path.realpath(short_tmp / "work")
    actual = short_tmp / "config" / "projects" / claude_project_slug(real) / predicted.name
    assert actual.parent != predicted.parent
    actual.parent.mkdir(parents=True)
    actual.write_bytes(prompt("hello"))
    await _session_start(conn, actual)
    assert daemon.app.sessions.store.row(sid)["transcript_path"] == str(actual)
    assert await _texts(daemon, sid) == ["[PROMPT] hello"]
    # and a /clear later, in that directory
    new = _uuid_file(actual.parent)
    await _session_start(conn, new)
    assert daemon.app.sessions.store.row(sid)["transcript_path"] == str(new)
