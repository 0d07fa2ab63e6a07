"""The terminal behind a session: query answers, DECSET tracking, straddling reads, the lazy screen model."""

from __future__ import annotations

import pyte
from hypothesis import given, settings
from hypothesis import strategies as st

from maestrod.sessions.scrollback import Scrollback
from maestrod.sessions.terminal import BACKLOG_MAX, DA1_REPLY, DA2_REPLY, DSR_OK, FLOOD_TAIL, Terminal


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
    t = Terminal(6, 30)
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
