"""The transcript tailer (``maestrod.transcripts.tailer``) and its change hints, on real files.

Every test compares what the tailer fed into a :class:`shared.digest.SessionDigest` with a reference digest
of the same bytes fed in one piece: an entry lost or doubled shows up as a difference (entries carry their
``seq``, so a doubled entry also shifts every later one).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.lowlevel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maestrod.transcripts.tailer import TranscriptTailer
from maestrod.transcripts.watch import InotifyWatcher, WatchfilesWatcher, make_watcher
from shared.digest import DigestConfig, SessionDigest, agent_label_for_path
from shared.transcript import TranscriptParser

HERE = Path(__file__).parent
TRANSCRIPTS = HERE / "data" / "transcripts"
SAMPLES = sorted(TRANSCRIPTS.rglob("*.jsonl"))
SAMPLE_IDS = [str(p.relative_to(TRANSCRIPTS)) for p in SAMPLES]
#: Small samples for the slower (process / hypothesis) tests.
SMALL = sorted((p for p in SAMPLES if p.stat().st_size < 300_000), key=lambda p: p.stat().st_size)
FAILING = TRANSCRIPTS / "claude-2.1.328" / "print-mode-tools-and-errors.jsonl"
CONFIG = DigestConfig(retain=None)


class DigestSink:
    """A TailSink feeding a SessionDigest, as the service does."""

    def __init__(self, agent: str | None = None, parser: TranscriptParser | None = None) -> None:
        self.digest = SessionDigest(agent=agent, config=CONFIG, parser=parser)
        self.resets = 0

    def feed(self, data: bytes) -> None:
        self.digest.feed(data)

    def reset(self) -> None:
        self.resets += 1
        self.digest.parser.reset(0)


def snapshot(digest: SessionDigest) -> dict[str, list[dict[str, Any]]]:
    return {mode: [e.to_dict() for e in digest.entries(mode)] for mode in ("tools", "text")}


def reference(data: bytes, agent: str | None = None) -> dict[str, list[dict[str, Any]]]:
    digest = SessionDigest(agent=agent, config=CONFIG)
    digest.feed(data)
    return snapshot(digest)


def drain(tailer: TranscriptTailer) -> None:
    while tailer.poll():
        pass


def fresh(tmp_path: Path) -> Path:
    """A file path no earlier hypothesis example used (``tmp_path`` is shared by all of them)."""
    return Path(tempfile.mkdtemp(dir=tmp_path)) / "t.jsonl"


def line_boundaries(data: bytes) -> list[int]:
    return [i + 1 for i, b in enumerate(data) if b == 0x0A]


def rewritten(data: bytes) -> bytes:
    """The same records in other bytes: the first record's keys in reverse order (what an in-place
    rewrite by the writer looks like)."""
    first, rest = data.split(b"\n", 1)
    return orjson.dumps(dict(reversed(list(orjson.loads(first).items())))) + b"\n" + rest


# --------------------------------------------------------------------------------------------------------
# The cases, one by one


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    lines = data.splitlines(keepends=True)
    path = tmp_path / "t.jsonl"
    sink = DigestSink()
    tailer = TranscriptTailer(str(path), sink)
    assert not tailer.poll() and tailer.stats.missing == 1, "no file yet: nothing, no error"
    first, second = lines[0], lines[1]
    path.write_bytes(first + second[:10])
    tailer.poll()
    parser = sink.digest.parser
    assert parser.offset == len(first), "the checkpoint stops before the unterminated line"
    assert tailer.position == len(first) + 10 and parser.pending_bytes == 10
    with path.open("ab") as f:
        f.write(second[10:])
    tailer.poll()
    assert parser.offset == len(first) + len(second)
    with path.open("ab") as f:
        f.write(b"".join(lines[2:]))
    drain(tailer)
    assert snapshot(sink.digest) == reference(data)


def test_truncation_rereads_from_zero_without_duplicates(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    cut = line_boundaries(data)[len(line_boundaries(data)) // 2]
    path = tmp_path / "t.jsonl"
    path.write_bytes(data[:cut])
    sink = DigestSink()
    tailer = TranscriptTailer(str(path), sink)
    drain(tailer)
    before = snapshot(sink.digest)
    path.write_bytes(data[:100])  # truncated in place (same inode), then the writer starts over
    drain(tailer)
    assert tailer.stats.truncations == 1 and sink.resets == 1
    assert snapshot(sink.digest) == before, "records read again produce nothing"
    path.write_bytes(data)
    drain(tailer)
    assert snapshot(sink.digest) == reference(data)
    assert sink.digest.parser.stats.duplicate_records > 0


def test_in_place_rewrite_of_the_same_size_is_noticed(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    lines = data.splitlines(keepends=True)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(lines[:6]))
    sink = DigestSink()
    tailer = TranscriptTailer(str(path), sink)
    drain(tailer)
    # Same records, other bytes (keys re-ordered): size grows, but the bytes before the position changed.
    again = rewritten(data)
    assert again != data
    with path.open("r+b") as f:
        f.write(again)
    drain(tailer)
    assert tailer.stats.rewrites == 1 and sink.resets == 1
    assert snapshot(sink.digest) == reference(data)


def test_rotation_drains_late_writes_then_follows_the_new_file(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    bounds = line_boundaries(data)
    c1, c2 = bounds[3], bounds[8]
    path = tmp_path / "t.jsonl"
    writer = path.open("ab")
    writer.write(data[:c1])
    writer.flush()
    sink = DigestSink()
    tailer = TranscriptTailer(str(path), sink)
    drain(tailer)
    os.rename(path, tmp_path / "t.jsonl.1")
    assert not tailer.poll(), "nothing at the path: keep the old file open"
    writer.write(data[c1:c2])  # a late write to the moved file
    writer.flush()
    writer.close()
    path.write_bytes(data[c2:])
    drain(tailer)
    assert tailer.stats.rotations == 1 and sink.resets == 1
    assert snapshot(sink.digest) == reference(data)


def test_restart_notices_a_file_replaced_while_down(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    cut = line_boundaries(data)[5]
    path = tmp_path / "t.jsonl"
    path.write_bytes(data[:cut] + b'{"partial')
    sink = DigestSink()
    tailer = TranscriptTailer(str(path), sink)
    drain(tailer)
    saved = orjson.loads(orjson.dumps(sink.digest.checkpoint()))
    info = orjson.loads(orjson.dumps(tailer.checkpoint_info(sink.digest.parser.offset)))
    tailer.close()
    assert info["offset"] == cut

    def restart() -> tuple[DigestSink, TranscriptTailer]:
        s = DigestSink()
        s.digest = SessionDigest.from_checkpoint(saved, CONFIG)
        return s, TranscriptTailer(str(path), s, **TranscriptTailer.restore_kwargs(info))

    # 1. the same file, grown: resume at the checkpoint (the partial line is read whole now)
    path.write_bytes(data)
    s, t = restart()
    drain(t)
    assert s.resets == 0 and snapshot(s.digest) == reference(data)
    t.close()
    # 2. replaced by another file with the same content (new inode): start over, de-duplicated
    os.rename(path, tmp_path / "old")
    path.write_bytes(data)
    s, t = restart()
    drain(t)
    assert t.stats.rotations == 1 and snapshot(s.digest) == reference(data)
    t.close()
    # 3. rewritten in place before the checkpoint (same inode, other bytes): start over
    os.remove(path)
    os.rename(tmp_path / "old", path)
    path.write_bytes(rewritten(data))
    info["identity"] = [os.stat(path).st_dev, os.stat(path).st_ino]
    s, t = restart()
    drain(t)
    assert t.stats.rewrites == 1 and snapshot(s.digest) == reference(data)


def test_backlog_is_read_in_bounded_batches(tmp_path: Path) -> None:
    data = SMALL[-1].read_bytes()
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    sink = DigestSink()
    tailer = TranscriptTailer(str(path), sink, max_bytes=16 * 1024, chunk=4096)
    polls = 0
    while tailer.poll():
        polls += 1
    assert polls >= len(data) // (16 * 1024) - 1, "each poll reads at most max_bytes"
    assert snapshot(sink.digest) == reference(data)


def test_oversized_corrupt_and_surrogate_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    lines = data.splitlines(keepends=True)
    huge = b'{"type":"user","message":{"content":"' + b"x" * 300_000 + b'"}}\n'
    junk = [huge, b'{"type": "assistant", "mess\n', b'\xff\xfe not json\n',
            b'{"type":"summary","summary":"emoji \\ud83d cut"}\n']
    mixed = b"".join(lines[:4] + junk + lines[4:])
    path = tmp_path / "t.jsonl"
    sink = DigestSink(parser=TranscriptParser(max_line_bytes=100_000))
    tailer = TranscriptTailer(str(path), sink, chunk=8192)
    with path.open("ab") as f:
        for start in range(0, len(mixed), 7919):
            f.write(mixed[start:start + 7919])
            f.flush()
            tailer.poll()
    drain(tailer)
    stats = sink.digest.parser.stats
    assert stats.oversized_lines == 1
    assert stats.corrupt_lines == 2
    assert snapshot(sink.digest) == reference(data), "the junk costs no entry"


# --------------------------------------------------------------------------------------------------------
# Property: any chunking, truncation/rewrite point or corrupt lines - no entry lost or doubled


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(SAMPLES), cuts=st.lists(st.floats(0, 1), max_size=25), polls=st.randoms())
def test_any_chunking_loses_and_doubles_nothing(tmp_path: Path, path: Path, cuts: list[float],
                                                 polls: random.Random) -> None:
    data = path.read_bytes()
    agent = agent_label_for_path(str(path))
    target = fresh(tmp_path)
    sink = DigestSink(agent)
    tailer = TranscriptTailer(str(target), sink, max_bytes=polls.choice([4096, 1 << 20]))
    written = 0
    with target.open("ab") as f:
        for cut in sorted({int(c * len(data)) for c in cuts} | {len(data)}):
            f.write(data[written:cut])
            f.flush()
            written = cut
            if polls.random() < 0.7:
                tailer.poll()
    drain(tailer)
    tailer.close()
    assert snapshot(sink.digest) == reference(data, agent)
    assert sink.digest.parser.offset + sink.digest.parser.pending_bytes == len(data)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(SAMPLES), at=st.floats(0, 1), keep=st.floats(0, 1), rewrite=st.booleans())
def test_truncate_or_rewrite_at_any_point_loses_and_doubles_nothing(
        tmp_path: Path, path: Path, at: float, keep: float, rewrite: bool) -> None:
    """Written up to ``at``, then truncated to ``keep`` of that (or rewritten in place with the same
    records re-serialised), then written to the end: the digest equals the one-piece digest."""
    data = path.read_bytes()
    agent = agent_label_for_path(str(path))
    target = fresh(tmp_path)
    cut = int(at * len(data))
    target.write_bytes(data[:cut])
    sink = DigestSink(agent)
    tailer = TranscriptTailer(str(target), sink)
    drain(tailer)
    if rewrite:
        again = rewritten(data)
        with target.open("r+b") as f:
            f.write(again[: max(cut, len(again) // 3)])
        drain(tailer)
        with target.open("r+b") as f:
            f.write(again)
        expected = reference(data, agent)
    else:
        with target.open("r+b") as f:
            f.truncate(int(keep * cut))
        drain(tailer)
        target.write_bytes(data)  # the writer starts over (same inode)
        expected = reference(data, agent)
    drain(tailer)
    tailer.close()
    assert snapshot(sink.digest) == expected


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(SMALL), junk=st.lists(st.tuples(st.floats(0, 1), st.sampled_from([
    b"garbage\n", b'{"type":"assistant","message":{"content":[{"type":"text","text":"cut\n',
    b'{"a":1}{"type":"summary","summary":"x"}\n', b"\n", b'"\\udc80"\n', b"\xc3\x28\n"])), max_size=6),
    chunk=st.integers(1, 50_000))
def test_corrupt_lines_anywhere_cost_nothing_else(tmp_path: Path, path: Path, junk: list[tuple[float, bytes]],
                                                  chunk: int) -> None:
    data = path.read_bytes()
    bounds = [0, *line_boundaries(data)]
    pieces = []
    last = 0
    for where, line in sorted(junk, key=lambda j: j[0]):
        b = bounds[int(where * (len(bounds) - 1))]
        b = max(b, last)
        pieces.append(data[last:b])
        pieces.append(line)
        last = b
    pieces.append(data[last:])
    mixed = b"".join(pieces)
    target = fresh(tmp_path)
    sink = DigestSink()
    tailer = TranscriptTailer(str(target), sink)
    with target.open("ab") as f:
        for start in range(0, len(mixed), chunk):
            f.write(mixed[start:start + chunk])
            f.flush()
            tailer.poll()
    drain(tailer)
    tailer.close()
    assert snapshot(sink.digest) == reference(mixed)


# --------------------------------------------------------------------------------------------------------
# A real writer process, followed with change hints plus the stat poll

WRITER = r'''
import json, os, random, sys, time
ops = json.loads(sys.argv[1])
src = open(sys.argv[2], "rb").read()
path = sys.argv[3]
rng = random.Random(int(sys.argv[4]))
f = open(path, "ab")
for op in ops:
    kind = op[0]
    if kind == "write":
        pos, end = op[1], op[2]
        while pos < end:
            n = min(end - pos, rng.choice([1, 7, 100, 1000, 4096, 20000]))
            f.write(src[pos:pos + n])
            f.flush()
            pos += n
            if rng.random() < 0.3:
                time.sleep(rng.random() * 0.002)
    elif kind == "truncate":
        f.truncate(0)
    elif kind == "rename":
        os.rename(path, path + op[1])
    elif kind == "reopen":
        f.close()
        f = open(path, "ab")
    elif kind == "rewrite":
        lines = src.splitlines(keepends=True)
        first = json.loads(lines[0])
        again = (json.dumps(dict(reversed(list(first.items())))).encode() + b"\n" + b"".join(lines[1:]))
        with open(path, "r+b") as g:
            g.write(again)
f.close()
'''


async def follow_writer(tmp_path: Path, source: Path, ops: list[Any], *, watcher: str = "auto",
                        interval: float = 0.5, seed: int = 1) -> tuple[DigestSink, TranscriptTailer, int]:
    """Run the writer process and follow its file the way the service does: poll on every change hint
    and at least every ``interval``; a final poll after the writer exited."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "out" / "t.jsonl"
    path.parent.mkdir()
    sink = DigestSink()
    tailer = TranscriptTailer(str(path), sink)
    hints = 0
    wake = trio.Event()

    def on_change(_directory: str, _name: str | None) -> None:
        nonlocal hints
        hints += 1
        wake.set()

    w = make_watcher(watcher, on_change, debounce_ms=30, step_ms=5)
    async with trio.open_nursery() as nursery:
        await nursery.start(w.run)
        assert w.add(str(path.parent))
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(script), orjson.dumps(ops).decode(), str(source), str(path), str(seed)])
        try:
            while proc.poll() is None:
                wake = trio.Event()
                drain(tailer)
                with trio.move_on_after(interval):
                    await wake.wait()
                await trio.lowlevel.checkpoint()
        finally:
            await proc.wait()
        assert proc.returncode == 0
        drain(tailer)
        nursery.cancel_scope.cancel()
    tailer.close()
    return sink, tailer, hints


@pytest.mark.parametrize("source", SMALL[:3], ids=[p.name for p in SMALL[:3]])
async def test_writer_process_appending(tmp_path: Path, source: Path) -> None:
    data = source.read_bytes()
    sink, tailer, hints = await follow_writer(tmp_path, source, [["write", 0, len(data)]])
    assert snapshot(sink.digest) == reference(data)
    assert hints > 0, "change hints arrived"
    assert tailer.stats.truncations == tailer.stats.rotations == tailer.stats.rewrites == 0


async def test_writer_process_truncating_and_starting_over(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    cut = line_boundaries(data)[10] + 33
    sink, _tailer, _ = await follow_writer(tmp_path, FAILING, [["write", 0, cut], ["truncate"],
                                                             ["write", 0, len(data)]])
    assert snapshot(sink.digest) == reference(data)


async def test_writer_process_rewriting_in_place(tmp_path: Path) -> None:
    """The writer rewrites the whole file in place (same records, other bytes, same inode) after writing
    part of it: whenever the tailer looked, every record appears exactly once."""
    data = FAILING.read_bytes()
    cut = line_boundaries(data)[10] + 5
    sink, _tailer, _ = await follow_writer(tmp_path, FAILING, [["write", 0, cut], ["rewrite"]])
    assert snapshot(sink.digest) == reference(data)


async def test_writer_process_rotating(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    bounds = line_boundaries(data)
    c1, c2 = bounds[5] + 17, bounds[12]
    ops = [["write", 0, c1], ["rename", ".1"], ["write", c1, c2], ["reopen"], ["write", c2, len(data)]]
    sink, tailer, _ = await follow_writer(tmp_path, FAILING, ops)
    assert snapshot(sink.digest) == reference(data)
    assert tailer.stats.rotations == 1


async def test_stat_poll_alone_is_enough(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    sink, _tailer, hints = await follow_writer(tmp_path, FAILING, [["write", 0, len(data)]], watcher="poll",
                                               interval=0.02)
    assert hints == 0
    assert snapshot(sink.digest) == reference(data)


async def test_watchfiles_hints(tmp_path: Path) -> None:
    data = FAILING.read_bytes()
    sink, _tailer, hints = await follow_writer(tmp_path, FAILING, [["write", 0, len(data)]], watcher="watchfiles",
                                               interval=5.0)
    assert hints > 0
    assert snapshot(sink.digest) == reference(data)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux-only")
async def test_inotify_watch_set_is_reference_counted(tmp_path: Path) -> None:
    seen: list[tuple[str, str | None]] = []
    changed = trio.Event()

    def on_change(directory: str, name: str | None) -> None:
        seen.append((directory, name))
        changed.set()

    w = InotifyWatcher(on_change)
    async with trio.open_nursery() as nursery:
        await nursery.start(w.run)
        d = str(tmp_path)
        assert w.add(d) and w.add(d)
        assert not w.add(str(tmp_path / "missing")), "a directory that does not exist is not watched"
        w.discard(d)
        (tmp_path / "a.jsonl").write_bytes(b"x\n")
        with trio.fail_after(5):
            await changed.wait()
        assert (d, "a.jsonl") in seen, "still watched: one reference is left"
        w.discard(d)
        assert w.directories == []
        nursery.cancel_scope.cancel()


async def test_watchfiles_watcher_stops_promptly_when_cancelled(tmp_path: Path) -> None:
    w = WatchfilesWatcher(lambda d, n: None, debounce_ms=30, step_ms=10)
    with trio.fail_after(3):
        async with trio.open_nursery() as nursery:
            await nursery.start(w.run)
            w.add(str(tmp_path))
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
