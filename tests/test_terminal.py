"""The terminal behind a session: query answers, DECSET tracking, straddling reads, the lazy screen model."""

from __future__ import annotations

import json
import re
import threading

import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maestrod.sessions.scrollback import Scrollback
from maestrod.sessions.terminal import (
    AVT_AVAILABLE,
    BACKLOG_MAX,
    DA1_REPLY,
    DA2_REPLY,
    DSR_OK,
    FLOOD_TAIL,
    Emulator,
    Terminal,
    _AvtModel,
    _make_model,
)


def test_queries_answered_and_hidden_from_viewers() -> None:
    t = Terminal(24, 80)
    out, replies = t.process(b"hello\x1b[c\x1b[>0c\x1b[5n\x1b[>0q\x1b[?u\x1b]11;?\x07world")
    assert replies == [DA1_REPLY, DA2_REPLY, DSR_OK]
    assert out == b"helloworld"  # XTVERSION, kitty keys and OSC queries are not answered, but hidden too
    assert t.queries_answered == 3


def test_cursor_position_comes_from_the_screen_model_at_the_query() -> None:
    t = Terminal(24, 80)
    out, replies = t.process(b"ab\r\ncdef\x1b[6nmore text after the query")
    assert replies == [b"\x1b[2;5R"]
    assert out == b"ab\r\ncdefmore text after the query"
    _, replies = t.process(b"\x1b[10;20H\x1b[?6n")
    assert replies == [b"\x1b[?10;20;1R"]


def test_query_straddling_two_reads() -> None:
    t = Terminal(24, 80)
    out1, r1 = t.process(b"abc\x1b")
    out2, r2 = t.process(b"[")
    out3, r3 = t.process(b"cxyz\x1b[?20")
    out4, r4 = t.process(b"04hrest")
    assert r1 == r2 == r4 == [] and r3 == [DA1_REPLY]
    assert out1 + out2 + out3 + out4 == b"abcxyz\x1b[?2004hrest"
    assert t.bracketed_paste


def test_private_modes_tracked() -> None:
    t = Terminal(24, 80)
    assert not t.bracketed_paste and 25 in t.private_modes
    t.process(b"\x1b[?1049;2004h\x1b[?25l\x1b[?1h")
    assert t.bracketed_paste and {1049, 2004, 1} <= t.private_modes and 25 not in t.private_modes
    t.process(b"\x1b[?2004l")
    assert not t.bracketed_paste


def test_screen_model_is_lazy_and_bounded() -> None:
    t = Terminal(5, 20)
    t.process(b"line one\r\nline two\r\n")
    assert t.text() == ""  # not fed yet: off the read path
    t.sync_now()
    assert t.text() == "line one\nline two"
    flood = b"".join(b"row %06d\r\n" % i for i in range(100_000))  # ~1 MB
    for i in range(0, len(flood), 4096):
        t.process(flood[i : i + 4096])
    assert t.pending_bytes <= BACKLOG_MAX
    t.sync_now()  # a large backlog is cut to its tail first, at a line start
    assert t.pending_bytes == 0 and t.model_skipped >= len(flood) - 4 * FLOOD_TAIL
    assert t.lines()[-2] == "row 099999" and t.lines()[0].startswith("row 09999")


def test_render_ansi_repaints_the_same_screen() -> None:
    t = Terminal(6, 30, emulator="pyte")  # compared cell by cell with pyte (avt: see the test below)
    t.process(
        b"plain \x1b[1;31mbold red\x1b[0m \x1b[38;5;196mx\x1b[48;2;1;2;3my\x1b[0m\r\n"
        b"\xe4\xb8\xad\xe6\x96\x87 wide"
        b"\x1b[4;7H\x1b[?2004h"
    )
    t.sync_now()
    paint = t.render_ansi()
    copy = pyte.Screen(30, 6)
    pyte.ByteStream(copy).feed(paint)
    assert copy.display == t.screen.display
    assert (copy.cursor.y, copy.cursor.x) == (3, 6)
    for y in range(6):
        for x in range(30):
            assert copy.buffer[y][x] == t.screen.buffer[y][x], (y, x)
    assert b"\x1b[?2004h" in paint and b"\x1b[?25h" in paint


def test_resize() -> None:
    t = Terminal(5, 20)
    t.process(b"hello")
    t.resize(10, 40)
    assert (t.rows, t.cols, len(t.lines())) == (10, 40, 10) and t.text() == "hello"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"text ",
                b"\x1b[c",
                b"\x1b[6n",
                b"\x1b[?2004h",
                b"\x1b[?2004l",
                b"\x1b[31m",
                b"\x1b]0;title\x07",
                b"\x1b]11;?\x07",
                b"\r\n",
                b"\xe4\xb8\xad",
            ]
        ),
        max_size=30,
    ),
    st.lists(st.integers(1, 12), min_size=1, max_size=8),
)
def test_any_split_gives_the_same_answers(parts: list[bytes], cuts: list[int]) -> None:
    """However the output is cut into reads, the replies, the modes and the viewer bytes agree."""
    data = b"".join(parts)
    whole = Terminal(24, 80)
    w_out, w_replies = whole.process(data)
    split = Terminal(24, 80)
    s_out, s_replies, pos, i = b"", [], 0, 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        out, replies = split.process(data[pos : pos + step])
        s_out += out
        s_replies += replies
        pos += step
        i += 1
    carry_out, _ = split.process(b"")
    s_out += carry_out
    assert s_replies == w_replies
    assert split.private_modes == whole.private_modes
    assert s_out + split._carry == w_out + whole._carry


def test_scrollback_offsets() -> None:
    sb = Scrollback(100)
    for i in range(50):
        sb.append(b"%03d\n" % i)  # 4 bytes each: 200 bytes
    assert sb.total == 200
    got, data = sb.read(0, 1000)
    assert got >= 100 and data.endswith(b"049\n") and got + len(data) == 200 and len(data) <= 100
    got, data = sb.read(196, 10)
    assert (got, data) == (196, b"049\n")
    assert sb.read(500, 10) == (200, b"")
    assert sb.tail(4) == b"049\n"


# -- the cheap path: full clears, staleness, triggers, both emulators, threads ------------------------------

EMULATORS = ["pyte", pytest.param("avt", marks=pytest.mark.skipif(not AVT_AVAILABLE, reason="pyavt is not installed"))]


def reference_lines(data: bytes, rows: int, cols: int, emulator: Emulator) -> tuple[list[str], tuple[int, int]]:
    """The screen of an emulator fed every byte, with nothing dropped and no query answered."""
    model = _make_model(emulator, rows, cols)
    model.feed(data)
    return model.lines(), model.cursor()


@pytest.mark.parametrize("emulator", EMULATORS)
@pytest.mark.parametrize("clear", [b"\x1b[2J\x1b[H", b"\x1b[H\x1b[J", b"\x1b[1;1H\x1b[0J", b"\x1bc"])
def test_a_full_clear_drops_what_is_pending_before_it(emulator: Emulator, clear: bytes) -> None:
    t = Terminal(10, 40, emulator=emulator)
    frames = [clear + b"".join(b"frame %d row %d\r\n" % (f, r) for r in range(9)) for f in range(50)]
    for frame in frames:
        t.process(frame)
    # What is kept of the dropped frames is at most the state they set (ESC c here: a reset).
    assert len(frames[-1]) <= t.pending_bytes <= len(frames[-1]) + 2 and t.full_clears == 50 and not t.stale
    assert t.model_skipped >= sum(map(len, frames[:-1]))
    t.sync_now(full=True)
    assert (t.lines(), t.cursor) == reference_lines(b"".join(frames), 10, 40, emulator)
    assert t.lines()[0] == "frame 49 row 0"


@pytest.mark.parametrize("emulator", EMULATORS)
def test_state_set_in_dropped_output_still_applies(emulator: Emulator) -> None:
    t = Terminal(5, 20, emulator=emulator)
    t.process(b"\x1b[?7l" + b"old text " * 50)  # autowrap off, then text that is dropped at the clear
    t.process(b"\x1b[2J\x1b[H" + b"x" * 30 + b"\r\nnext")
    t.sync_now(full=True)
    assert t.model_skipped > 400
    assert t.lines()[:2] == ["x" * 20, "next"]  # no wrap: the 30 x's stay on the first row


def test_state_kept_of_dropped_frames_does_not_grow() -> None:
    t = Terminal(10, 40)
    frame = b"\x1b[?25l\x1b[2J\x1b[H\x1b[?2004h\x1b[1;9r\x1b(0q\x1b(B" + b"row\r\n" * 8 + b"\x1b[r\x1b[?25h"
    for _ in range(1000):
        t.process(frame)
    assert t.pending_bytes < 2 * len(frame)
    t.sync_now(full=True)
    assert t.lines()[:2] == ["\u2500row", "row"]  # ESC(0 q is a horizontal line


@pytest.mark.parametrize("emulator", EMULATORS)
def test_an_alternate_screen_clear_keeps_pending_main_screen_output(emulator: Emulator) -> None:
    t = Terminal(6, 30, emulator=emulator)
    t.process(b"$ make\r\nbuilding...\r\n$ vim\r\n")
    t.process(b"\x1b[?1049h\x1b[2J\x1b[Hvim screen 1")
    t.process(b"\x1b[2J\x1b[Hvim screen 2")  # main output is still pending: not dropped
    assert t.alternate_screen and t.model_skipped == 0
    t.process(b"\x1b[?1049l$ ")
    t.sync_now(full=True)
    assert t.lines()[:4] == ["$ make", "building...", "$ vim", "$"] and not t.stale
    # Once the main screen's output is in the model, alternate-screen frames are dropped again.
    t.process(b"\x1b[?1049h\x1b[2J\x1b[Hvim screen 3")
    t.sync_now(full=True)
    for n in (4, 5, 6):
        t.process(b"\x1b[2J\x1b[Hvim screen %d" % n)
    assert t.model_skipped > 0 and t.pending_bytes == len(b"\x1b[2J\x1b[Hvim screen 6")
    t.process(b"\x1b[?1049l")
    t.sync_now(full=True)
    assert t.lines()[:4] == ["$ make", "building...", "$ vim", "$"]


@pytest.mark.parametrize("emulator", EMULATORS)
def test_stale_until_the_program_repaints_fully(emulator: Emulator) -> None:
    t = Terminal(5, 20, emulator=emulator)
    assert not t.stale
    t.process(b"".join(b"%07d\r\n" % i for i in range(BACKLOG_MAX // 9 + 100)))
    assert t.stale and t.model_skipped > 0  # output was dropped for the model
    t.process(b"more text\r\n")
    assert t.stale
    t.process(b"\x1b[H\x1b[Jfresh")
    assert not t.stale
    t.sync_now(full=True)
    assert t.lines()[0] == "fresh"
    # Dropped on the main screen, then cleared on the alternate one: stale again once the main one is back.
    t.process(b"".join(b"%07d\r\n" % i for i in range(BACKLOG_MAX // 9 + 100)))
    t.process(b"\x1b[?1049h\x1b[2J\x1b[Hfull-screen program")
    assert t.alternate_screen and not t.stale
    t.process(b"\x1b[?1049l")
    assert t.stale


def test_a_flood_of_cursor_addressed_output_resumes_at_a_sequence() -> None:
    """After dropped output the model resumes at an ESC or a line start, so a TUI that never writes a
    newline still gets its screen fed (the model skipped it for good before)."""
    t = Terminal(5, 30)
    frame = b"".join(b"\x1b[%d;1Hrow %d of a frame " % (r + 1, r) for r in range(5))
    for _ in range(BACKLOG_MAX // len(frame) + 50):
        t.process(frame)
    t.sync_now(full=True)
    assert t.stale and t.lines()[4] == "row 4 of a frame"


def test_triggers_seen_once_until_taken_and_across_reads() -> None:
    t = Terminal(5, 40)
    assert not t.take_trigger()
    t.set_triggers(re.compile(rb"safety|trust"))
    t.process(b"nothing here")
    assert not t.trigger_seen
    t.process(b"Quick saf")
    assert not t.trigger_seen
    t.process(b"ety check")  # cut by the read boundary
    assert t.trigger_seen and t.take_trigger() and not t.take_trigger()
    t.process(b"x" * 10_000 + b"I trus")
    t.process(b"t this folder")
    assert t.take_trigger()
    t.set_triggers(None)
    t.process(b"trust")
    assert not t.take_trigger()


@pytest.mark.skipif(not AVT_AVAILABLE, reason="pyavt is not installed")
def test_render_ansi_repaints_the_same_screen_avt() -> None:
    t = Terminal(6, 30, emulator="avt")
    t.process(
        b"plain \x1b[1;31mbold red\x1b[0m \x1b[38;5;196mx\x1b[48;2;1;2;3my\x1b[0m \x1b[2;3;4;5;7;9;92mz\x1b[0m\r\n"
        b"\xe4\xb8\xad\xe6\x96\x87 wide"
        b"\x1b[4;7H\x1b[?2004h"
    )
    t.sync_now()
    paint = t.render_ansi()
    copy = Terminal(6, 30, emulator="avt")
    copy.process(paint)
    copy.sync_now()
    assert copy.lines() == t.lines() and copy.cursor == t.cursor == (3, 6)
    mine, theirs = t._model, copy._model
    assert isinstance(mine, _AvtModel) and isinstance(theirs, _AvtModel)
    assert [line.cells for line in theirs.vt.view()] == [line.cells for line in mine.vt.view()]
    assert b"\x1b[?2004h" in paint and b"\x1b[?25h" in paint


def test_pyte_has_an_alternate_screen() -> None:
    t = Terminal(4, 20, emulator="pyte")
    t.process(b"shell line\r\n$ ")
    t.process(b"\x1b[?1049hfull screen")
    t.sync_now(full=True)
    assert t.lines()[0] == "" and "full screen" in t.lines()[1]
    t.process(b"\x1b[?1049l")
    t.sync_now(full=True)
    assert t.lines()[:2] == ["shell line", "$"] and t.cursor == (1, 2)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"text ",
                b"\r\n",
                b"\x1b[31mred\x1b[0m",
                b"\x1b[3;5H",
                b"\x1b[2K",
                b"\x1b[1A",
                b"\x1b[2J\x1b[H",
                b"\x1b[H\x1b[J",
                b"\x1bc",
                # The alternate screen as programs use it: entered, drawn (cleared in it), left. (A cursor
                # saved before a full clear and restored after it -- an unpaired ESC[?1049l, ESC 8 -- may be
                # off: dropped output moved it.)
                b"\x1b[?1049h\x1b[2J\x1b[Hin alt\x1b[2J\x1b[Hframe 2\x1b[?1049l",
                b"\x1b[?7l",
                b"\x1b[?7h",
                b"\x1b[2;4r",
                b"\x1b[r",
                b"\x1b(0lqk\x1b(B",
                b"\x1b[4h",
                b"\x1b[4l",
                b"\x1b[c",
                b"\x1b[6n",
                b"\x1b]0;title\x07",
                b"\xe4\xb8\xad",
                b"0123456789" * 3,
            ]
        ),
        max_size=80,
    ),
    st.lists(st.integers(1, 40), min_size=1, max_size=8),
    st.lists(st.integers(0, 64), min_size=1, max_size=8),
)
def test_dropping_before_full_clears_never_changes_the_screen(parts: list[bytes], cuts: list[int],
                                                              feeds: list[int]) -> None:
    """However the output is cut into reads and however much the model is fed between them, the screen
    ends up what an emulator fed every byte shows."""
    if not AVT_AVAILABLE:
        pytest.skip("pyavt is not installed")
    data = b"".join(parts)
    t = Terminal(6, 20, emulator="avt")
    pos = i = 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        t.process(data[pos : pos + step])
        t.feed_some(feeds[i % len(feeds)])
        pos += step
        i += 1
    t.sync_now(full=True)
    assert not t.stale
    assert (t.lines(), t.cursor) == reference_lines(data, 6, 20, "avt")


@pytest.mark.parametrize("emulator", EMULATORS)
def test_model_readers_wait_for_a_feeding_thread(emulator: Emulator) -> None:
    """A worker thread feeds while this thread queues output and reads the screen: no torn state."""
    t = Terminal(10, 40, emulator=emulator)
    frames = [b"\x1b[H" + b"".join(b"frame %04d row %d\r\n" % (f, r) for r in range(9)) for f in range(300)]
    stop = threading.Event()

    def feeder() -> None:
        while not stop.is_set():
            t.feed_some(97)

    worker = threading.Thread(target=feeder)
    worker.start()
    try:
        for frame in frames:
            t.process(frame)
            lines = t.lines()
            # Frames are fed in pieces, so a row may be half drawn, but never torn or garbled.
            assert len(lines) == 10 and all(re.fullmatch(r"(frame \d{4} row \d)?|fr?a?m?e?[ 0-9]*r?o?w?[ 0-9]*", line)
                                            for line in lines), lines
    finally:
        stop.set()
        worker.join()
    t.sync_now(full=True)
    assert t.lines()[8] == "frame 0299 row 8"


@pytest.mark.parametrize("emulator", ["avt", "pyte"])
def test_a_snapshot_rebuilds_the_screen_in_a_successor(emulator: str) -> None:
    """A graceful restart carries each screen over: avt's own dump is exact (the main screen under the
    alternate one comes back when the program leaves it); pyte's repaint shows what is on screen."""
    before = Terminal(5, 40, emulator=emulator)  # type: ignore[arg-type]
    before.process(b"main screen\r\n\x1b[?2004h\x1b[?1049h\x1b[Halt \x1b[1;31mtext\x1b[0m\x1b[3;3H")
    snap = json.loads(json.dumps(before.snapshot()))  # it travels in the JSON state file
    after = Terminal(5, 40, emulator=emulator)  # type: ignore[arg-type]
    after.restore_snapshot(snap)
    after.sync_now()
    assert after.lines()[0] == "alt text" and after.alternate_screen and after.bracketed_paste
    assert after.cursor == before.cursor == (2, 2)
    after.process(b"\x1b[?1049l")
    after.sync_now()
    if emulator == "avt":
        assert "dump" in snap and after.lines()[0] == "main screen"
    else:
        assert "repaint" in snap


def test_an_adopted_screen_is_made_when_first_used() -> None:
    """avt: a restored screen is made at its first use (an idle session adopted by a restart costs no screen
    before the socket answers); until then a snapshot gives the same dump back, and a resize applies to the
    screen the dump drew."""
    before = Terminal(5, 40, emulator="avt")
    before.process(b"main screen\r\n\x1b[?1049h\x1b[Halt \x1b[1;31mtext\x1b[0m\x1b[3;3H")
    snap = json.loads(json.dumps(before.snapshot()))
    idle = Terminal(5, 40, emulator="avt")
    idle.restore_snapshot(snap)
    model = idle._model
    assert isinstance(model, _AvtModel) and model._vt is None  # nothing made yet
    again = idle.snapshot()
    assert again["dump"] == snap["dump"] and model._vt is None  # handed over again, still not made
    assert idle.lines()[0] == "alt text" and model._vt is not None  # made at first use
    resized = Terminal(5, 40, emulator="avt")
    resized.restore_snapshot(snap)
    resized.resize(8, 30)
    eager = Terminal(5, 40, emulator="avt")
    eager.restore_snapshot(snap)
    eager.lines()  # made before the resize
    eager.resize(8, 30)
    assert resized.lines() == eager.lines() and resized.cursor == eager.cursor
    fresh = Terminal(5, 40, emulator="avt")
    fresh.resize(6, 20)  # nothing loaded: the screen is made at the new size
    fresh.process(b"x" * 25)
    fresh.sync_now()
    assert fresh.lines()[:2] == ["x" * 20, "x" * 5]


def test_a_version_1_repaint_is_still_restored() -> None:
    """A state written by the previous format (a repaint) is adopted after an upgrade."""
    after = Terminal(5, 40)
    after.restore_snapshot({"repaint": "\x1b[0m\x1b[H\x1b[2J\x1b[1;1Hhello\x1b[1;6H", "modes": [7, 25, 2004],
                            "alternate": True, "stale": False})
    after.sync_now()
    assert after.lines()[0] == "hello" and after.alternate_screen and after.bracketed_paste
