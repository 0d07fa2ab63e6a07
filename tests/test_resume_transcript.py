"""A resumed session's transcript: followed with no digest entry lost or repeated, whether Claude Code goes on
in the same file (``--resume``, what maestro does) or in a forked one (``--fork-session``, ``/branch``: a new
file that starts with a copy of the old records, same uuids), and whether the daemon restarted in between."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio
import trio.testing

from shared.digest import DigestConfig, SessionDigest
from tests.test_digest_service_support import FAILING, Events, add_session, appended, make_app, prompt, say


def forked(data: bytes, new_session: str) -> bytes:
    """The records as ``--fork-session`` copies them into the new file: same uuids, the new sessionId."""
    out = []
    for line in data.splitlines():
        rec = json.loads(line)
        if "sessionId" in rec:
            rec["sessionId"] = new_session
        out.append(json.dumps(rec).encode())
    return b"\n".join(out) + b"\n"


def expected_tools(*parts: bytes) -> list[str]:
    digest = SessionDigest(config=DigestConfig())
    digest.feed(b"".join(parts))
    return [e.summary for e in digest.entries("tools")]


async def _read(app: Any, sid: str, act: Any = None) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        assert await app.transcripts.sync(sid)
        if act is not None:
            await act()
        await app.transcripts.shutdown()
        nursery.cancel_scope.cancel()
    app.close()


async def test_a_forked_file_after_hibernate_repeats_nothing(tmp_path: Path) -> None:
    one = FAILING.read_bytes()
    later = prompt("after the wake", 200) + say("Back, same conversation.", 201)
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_bytes(one)
    app = make_app(tmp_path)
    add_session(app, "s-1", old)
    events = Events(app)

    async def hibernate_then_wake_forked() -> None:
        app.transcripts.unwatch("s-1")  # hibernated: the tailer lets go (checkpoint saved)
        await trio.testing.wait_all_tasks_blocked()
        new.write_bytes(forked(one, "other") + later)
        app.transcripts.watch("s-1", str(new))  # resumed into a forked file: its SessionStart names it
        assert await app.transcripts.sync("s-1")

    await _read(app, "s-1", hibernate_then_wake_forked)
    announced = appended(events, "s-1")
    assert [e["summary"] for e in announced] == expected_tools(one, later)
    assert len({e["seq"] for e in announced}) == len(announced)


async def test_same_file_and_forked_file_across_a_daemon_restart(tmp_path: Path) -> None:
    one = FAILING.read_bytes()
    more = prompt("resumed after the restart", 300) + say("Still here.", 301)
    fork_more = prompt("and forked", 400) + say("In a new file.", 401)
    path, fork = tmp_path / "c.jsonl", tmp_path / "f.jsonl"
    path.write_bytes(one)
    app = make_app(tmp_path)
    add_session(app, "s-1", path)
    first = Events(app)
    await _read(app, "s-1")

    # The daemon restarted; the relaunched agent (--resume) appends to the same file.
    with open(path, "ab") as f:
        f.write(more)
    app = make_app(tmp_path)
    second = Events(app)
    await _read(app, "s-1")

    # Restarted again; this time the conversation goes on in a fork.
    fork.write_bytes(forked(one + more, "other") + fork_more)
    app = make_app(tmp_path)
    third = Events(app)

    async def follow_fork() -> None:
        app.transcripts.watch("s-1", str(fork))
        assert await app.transcripts.sync("s-1")

    await _read(app, "s-1", follow_fork)
    announced = appended(first, "s-1") + appended(second, "s-1") + appended(third, "s-1")
    assert [e["summary"] for e in announced] == expected_tools(one, more, fork_more)
    assert [e["seq"] for e in announced] == list(range(len(announced)))
