"""Tailing through the TranscriptService: checkpoints across daemon restarts, ``/clear`` roll-over, subagent
files, and the change-hint backends (inotify, watchfiles, stat poll alone)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import trio

from shared.digest import DigestConfig, SessionDigest
from tests.test_digest_service_support import (
    FAILING,
    TRANSCRIPTS,
    Events,
    add_session,
    append,
    appended,
    make_app,
    prompt,
    say,
)

BIG = TRANSCRIPTS / "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"
SUBAGENTS = TRANSCRIPTS / "spotter-8463c716-subagents" / "subagents"


def snapshot(digest: SessionDigest | None) -> dict[str, list[dict[str, Any]]]:
    assert digest is not None
    return {mode: [e.to_dict() for e in digest.entries(mode)] for mode in ("tools", "text")}


def reference(*files: bytes) -> dict[str, list[dict[str, Any]]]:
    """One digest fed the files one after the other (each from its start), as a roll-over does."""
    digest = SessionDigest(config=DigestConfig())
    for i, data in enumerate(files):
        if i:
            digest.parser.reset(0)
        digest.feed(data)
    return snapshot(digest)


def mid_line(data: bytes, fraction: float) -> int:
    cut = int(len(data) * fraction)
    while data[cut - 1:cut] == b"\n":
        cut += 1
    return cut


async def run_until_synced(app: Any, sid: str, *, flush: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Start the service, read everything there is, stop it (cleanly, or like a crash: no final flush);
    the session's digest as it was read."""
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        assert await app.transcripts.sync(sid)
        final = snapshot(app.transcripts.digest(sid))
        if flush:
            await app.transcripts.shutdown()
        else:
            app.transcripts.flush = lambda: None  # a crash: whatever was saved last is all there is
        nursery.cancel_scope.cancel()
    app.close()
    return final


async def test_restart_neither_loses_nor_repeats_entries(tmp_path: Path) -> None:
    data = BIG.read_bytes()
    path = tmp_path / "proj" / "c.jsonl"
    path.parent.mkdir()
    cut = mid_line(data, 0.45)
    path.write_bytes(data[:cut])  # stops in the middle of a line

    app = make_app(tmp_path)
    add_session(app, "s-1", path)
    first = Events(app)
    await run_until_synced(app, "s-1")  # watched because its row says it is running

    append(path, data[cut:])
    app = make_app(tmp_path)
    second = Events(app)
    final = await run_until_synced(app, "s-1")

    expected = reference(data)
    assert final == expected
    announced = appended(first, "s-1") + appended(second, "s-1")
    assert [e["seq"] for e in announced] == list(range(len(expected["tools"]))), "each entry announced once"
    assert [e["summary"] for e in announced] == [e["summary"] for e in expected["tools"]]
    assert appended(first, "s-1") and appended(second, "s-1")


async def test_crash_replays_only_after_the_last_checkpoint(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    path = tmp_path / "c.jsonl"
    cut = mid_line(data, 0.4)
    path.write_bytes(data[:cut])
    app = make_app(tmp_path, checkpoint_interval=3600.0)  # saved at the first read, then never again
    add_session(app, "s-1", path)
    first = Events(app)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        assert await app.transcripts.sync("s-1")
        append(path, data[cut:mid_line(data, 0.7)])
        assert await app.transcripts.sync("s-1")
        app.transcripts.flush = lambda: None
        nursery.cancel_scope.cancel()
    app.close()

    append(path, data[mid_line(data, 0.7):])
    app = make_app(tmp_path)
    second = Events(app)
    final = await run_until_synced(app, "s-1")
    expected = reference(data)
    assert final == expected, "the state is exactly the uninterrupted one"
    by_seq = {e["seq"]: e["summary"] for e in appended(first, "s-1") + appended(second, "s-1")}
    assert by_seq == {e["seq"]: e["summary"] for e in expected["tools"]}, \
        "entries after the last checkpoint are announced again with the same seq (consumers dedupe by it)"


async def test_clear_rolls_over_to_the_new_transcript(tmp_path: Path) -> None:
    one = FAILING.read_bytes()
    two = prompt("second conversation", 100) + say("Starting over after /clear.", 101)
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_bytes(one)
    app = make_app(tmp_path)
    add_session(app, "s-1", old)
    events = Events(app)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        assert await app.transcripts.sync("s-1")
        app.transcripts.watch("s-1", str(new))  # what the SessionStart hook reports after /clear
        app.transcripts.watch("s-1", str(new))  # idempotent
        new.write_bytes(two)
        assert await app.transcripts.sync("s-1")
        append(old, say("a late line in the old file is not followed any more", 50))
        assert await app.transcripts.sync("s-1")
        final = snapshot(app.transcripts.digest("s-1"))
        nursery.cancel_scope.cancel()
    app.close()
    assert final == reference(one, two)
    assert appended(events, "s-1")[-1]["summary"] == "Starting over after /clear."


async def test_session_start_hook_switches_the_file(tmp_path: Path) -> None:
    # <uuid>.jsonl in the same project directory: what the hook intake accepts (and stores) after /clear
    old = tmp_path / "0f6c1e3a-1111-4a2b-9c3d-000000000001.jsonl"
    new = tmp_path / "0f6c1e3a-2222-4a2b-9c3d-000000000002.jsonl"
    old.write_bytes(prompt("first", 0))
    new.write_bytes(prompt("after clear", 5))
    app = make_app(tmp_path)
    add_session(app, "s-1", old)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        assert await app.transcripts.sync("s-1")
        await app.sessions.hook("s-1", "SessionStart", {"source": "clear", "transcript_path": str(new)})
        assert await app.transcripts.sync("s-1")
        digest = app.transcripts.digest("s-1")
        assert digest is not None
        assert [e.summary for e in digest.entries("text")] == ["[PROMPT] first", "[PROMPT] after clear"]
        nursery.cancel_scope.cancel()
    app.close()


async def test_subagent_files_are_attributed_to_their_session(tmp_path: Path) -> None:
    main = tmp_path / "c.jsonl"
    main.write_bytes(prompt("explore the repo", 0))
    app = make_app(tmp_path)
    add_session(app, "s-1", main)
    events = Events(app)
    sub = SUBAGENTS / "agent-a7be2f0.jsonl"
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        assert await app.transcripts.sync("s-1")
        (tmp_path / "c" / "subagents").mkdir(parents=True)  # Claude Code creates it with the first subagent
        shutil.copy(sub, tmp_path / "c" / "subagents" / sub.name)
        assert await app.transcripts.sync("s-1")
        digest = app.transcripts.digest("s-1")
        assert digest is not None
        labels = {e.agent for e in digest.entries("tools")}
        assert "subagent:a7be2f0" in labels
        assert all(e.agent is None for e in digest.entries("text")), "text mode: the session's own words only"
        assert digest.window().usage.total_tokens > 0
        stats = app.transcripts.tail_stats("s-1")
        assert stats is not None and "subagent:a7be2f0" in stats["subagents"]
        nursery.cancel_scope.cancel()
    app.close()
    sub_entries = [e for e in appended(events, "s-1") if e["agent"] == "subagent:a7be2f0"]
    assert sub_entries

    # restarted: the subagent file resumes at its own checkpoint
    append(tmp_path / "c" / "subagents" / sub.name, b"")
    app = make_app(tmp_path)
    events = Events(app)
    await run_until_synced(app, "s-1")
    assert appended(events, "s-1") == [], "nothing is announced twice after a restart"


async def _latency_with(tmp_path: Path, watcher: str, poll_interval: float) -> float:
    path = tmp_path / "proj" / "c.jsonl"
    path.parent.mkdir()
    path.write_bytes(prompt("go", 0))
    app = make_app(tmp_path, watcher=watcher, poll_interval=poll_interval)
    add_session(app, "s-1", path)
    events = Events(app)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        assert await app.transcripts.sync("s-1")
        start = trio.current_time()
        append(path, say("A line that must arrive through the change hint.", 2))
        await events.wait_data("session.digest", lambda d: d["appended"]["tools"], sid="s-1",
                              start=len(events.items))
        took = trio.current_time() - start
        nursery.cancel_scope.cancel()
    app.close()
    return took


async def test_inotify_hint_beats_the_poll_interval(tmp_path: Path) -> None:
    assert await _latency_with(tmp_path, "auto", 30.0) < 5.0


async def test_watchfiles_hint_beats_the_poll_interval(tmp_path: Path) -> None:
    assert await _latency_with(tmp_path, "watchfiles", 30.0) < 5.0


async def test_stat_poll_alone_delivers(tmp_path: Path) -> None:
    assert await _latency_with(tmp_path, "poll", 0.05) < 5.0


async def test_another_sessions_file_in_the_same_directory_does_not_wake(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    mine.write_bytes(prompt("mine", 0))
    theirs.write_bytes(prompt("theirs", 0))
    app = make_app(tmp_path, poll_interval=30.0)
    add_session(app, "s-a", mine)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.transcripts.run)
        assert await app.transcripts.sync("s-a")
        s = app.transcripts._sessions["s-a"]
        assert not s.wake.is_set()
        app.transcripts._on_change(str(tmp_path), "b.jsonl")
        assert not s.wake.is_set()
        app.transcripts._on_change(str(tmp_path), "a.jsonl")
        assert s.wake.is_set()
        nursery.cancel_scope.cancel()
    app.close()
