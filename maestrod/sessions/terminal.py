"""The terminal behind a session's PTY: answers queries, tracks modes, models the screen.

Nobody sits behind the PTY master, so the daemon is the terminal. Its jobs, at two speeds:

* **Every byte, on the read path** (compiled-regex scans; memchr speed on plain text):
  answer the terminal queries a TUI waits for -- DA1 ``ESC[c``, DA2 ``ESC[>c``, DSR ``ESC[5n``,
  cursor position ``ESC[6n`` / ``ESC[?6n`` (Claude Code hangs at start-up without a DA1 answer,
  docs/claude-code.md); track private modes (DECSET/DECRST ``ESC[?...h/l``: bracketed paste 2004,
  cursor keys, mouse, the alternate screen...); strip every query from what attached viewers
  get, so a real terminal behind ``session attach`` never answers a second time into the
  agent's input; spot **full clears** (``ESC[2J``, ``ESC[H ESC[J``, ``ESC c``, entering the
  alternate screen), before which pending output is dropped for the model (the screen is blank
  there anyway: a TUI that repaints 20 times a second costs one frame, not twenty); and look
  for the **triggers** of the screen rules (:meth:`Terminal.set_triggers`), raw byte strings
  that a rule's screen writes, so that the screen is classified when one may be up.
  A sequence cut by a read boundary is carried over to the next read; so is a trigger.
* **Lazily, off the read path**: the screen model, fed from a queue when someone needs the
  screen (:meth:`Terminal.sync_now`, :meth:`Terminal.feed_some`; the session's
  :class:`~maestrod.sessions.screen.ScreenWatch` decides when). The queue is bounded
  (:data:`BACKLOG_MAX`): beyond it the oldest output is dropped for the model (never for the
  scrollback) and the screen is :attr:`Terminal.stale` -- unknown -- until the program next
  clears it fully. Modes, margins, character sets and screen switches in dropped output are still
  applied (:func:`_net_state`); where the cursor was when dropped output saved it (``ESC 7``,
  ``ESC[?1049h``) is not, so a cursor restored after a full clear from such a save may be off.

The model is avt (asciinema's virtual terminal, Rust, via the ``pyavt`` bindings) when it is
installed, else pyte. Measured on the 2-core VM: a full 80x40 frame of coloured text takes
pyte 8.8 ms and avt 0.076 ms (~0.6 vs ~65 MB/s on frames, streamed text and plain text alike),
with the same screen text. Either is fed only through this class.

Threads: the model may be fed from a worker thread (``trio.to_thread``) while the event loop
goes on calling :meth:`Terminal.process`. The output queue has its own lock, held for a few
deque operations, so the read path never waits for the model; the model's lock is held per
slice fed, so a reader of the screen (or a cursor-position query) waits at most one slice.
Lock order: model, then queue.
"""

from __future__ import annotations

import codecs
import importlib
import logging
import re
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Literal, Protocol

from maestrod.sessions.terminal_common import ALT_SCREEN_MODES, Style, StyleTable

if TYPE_CHECKING:
    import pyte
    from avt import _avt as avt
else:
    try:
        from avt import _avt as avt
    except ImportError:  # pragma: no cover - pyavt is optional: pyte stands in
        avt = None

log = logging.getLogger("maestrod.sessions.terminal")

Emulator = Literal["avt", "pyte"]
AVT_AVAILABLE = avt is not None
#: The model used when :class:`Terminal` is not told which.
DEFAULT_EMULATOR: Emulator = "pyte" if avt is None else "avt"

#: Answers (what xterm-compatible terminals say): VT220 with ANSI colour; VT220 firmware 10.
DA1_REPLY = b"\x1b[?62;22c"
DA2_REPLY = b"\x1b[>1;10;0c"
DSR_OK = b"\x1b[0n"

#: Pending output the screen model may lag behind by, at most (bytes).
BACKLOG_MAX = 256 * 1024
#: :meth:`Terminal.sync_now` without ``full`` cuts a backlog over 4x this to its newest this much.
FLOOD_TAIL = 16 * 1024
#: The default slice of :meth:`Terminal.feed_some` (kept for callers that feed in slices themselves;
#: :attr:`Terminal.slice_bytes` is the emulator's own ~1-5 ms slice).
SLICE = 4096
#: Bytes of one read kept to find a trigger cut by the next read (triggers are short strings).
TRIGGER_OVERLAP = 256
#: Private modes a repaint restores on a viewer's terminal (1049, the alternate screen, is the
#: attach client's own business).
REPAINT_MODES = (1, 7, 25, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 2004)
_MAX_CARRY = 512

#: What the fast path looks for. Most sequences in a TUI's output are colours and cursor moves: the
#: lookahead after ``ESC[`` turns them away after one possessive run of digits (3.4x faster on a frame
#: of coloured text than trying each alternative in turn).
_SCAN = re.compile(
    rb"""
    \x1b(?:
        \[(?=[?>=]|[0-9;]*+[cnpJH$])(?:
            (?P<da1>0?c)
          | >(?P<da2>0?c)
          | (?P<dsr>5n)
          | (?P<cpr>\??6n)
          | \?(?P<modes>[0-9;]++)(?P<set>[hl])
          | (?P<other>[>=][0-9;]*+[cq]|\?u|\??[0-9]++\$p)
          | (?P<clear>2J|(?:1?(?:;1?)?)?H\x1b\[0?J)
        )
      | \](?P<osc>[0-9]+(?:;[^\x07\x1b]*)?;\?(?:\x07|\x1b\\))
      | (?P<ris>c)
    )
""",
    re.X,
)

#: An escape sequence the read cut off (it may still become a query): CSI with its parameters and
#: intermediates, a string (OSC, DCS, APC, PM, SOS) not yet terminated, or ESC with intermediates
#: (``ESC ( B`` designates a character set).
_INCOMPLETE = re.compile(rb"\x1b(?:\[[0-9;:<=>?\x20-\x2f]*|[\]P_^X][^\x07\x1b]*\x1b?|[\x20-\x2f]+)?\Z")

#: What output dropped for the model still changes in it: modes (SM/RM, DECSET/DECRST -- the
#: alternate screen among them), scrolling margins, character sets, and full resets (which undo the
#: others before them). Text, cursor moves and colours go.
_STATE = re.compile(rb"\x1b(?:\[\??[0-9;]*+[hlr]|[()*+][0-9A-Za-z]|c)")

#: Alternate screen on (xterm 1049): a restored screen drawn there stays there.
_ALT_ON = b"\x1b[?1049h"

#: Where the model may resume after dropped output: the start of a sequence or of a line.
_RESYNC = re.compile(rb"[\x1b\n]")


class _Model(Protocol):
    """A screen emulator fed bytes. Only :class:`Terminal` calls it, holding the model lock."""

    #: Bytes fed per slice between checkpoints: ~1-5 ms of this emulator's time.
    slice_bytes: int

    def feed(self, data: bytes) -> bool:
        """Take output; False if the emulator failed and was reset (its screen is then blank)."""

    def resize(self, rows: int, cols: int) -> None: ...

    def lines(self) -> list[str]:
        """The visible rows, trailing blanks cut."""

    def cursor(self) -> tuple[int, int]: ...

    def paint(self, out: list[str], rows: int, cols: int) -> None:
        """Append the escape sequences that paint every non-blank row (the screen is already clear)."""

    def runs(self, styles: StyleTable) -> list[list[list[object]]]:
        """The visible rows as runs ``[text, style index]`` (trailing default blanks cut)."""

    def dump(self) -> str | None:
        """The emulator's whole state as input that rebuilds it exactly in a fresh one (both screens, the
        saved cursor, the modes); None if this emulator cannot say."""

    def load(self, dump: str) -> None:
        """Rebuild the state :meth:`dump` gave (the model is fresh)."""


# -- avt ------------------------------------------------------------------------------------------


class _AvtModel:
    slice_bytes = 64 * 1024  # ~1 ms of avt

    def __init__(self, rows: int, cols: int) -> None:
        assert avt is not None
        self._rows, self._cols = rows, cols
        #: The screen, made when first used: in a fresh process each costs ~0.2 ms and ~240 KB of new memory
        #: (120x40), which a graceful restart adopting 50 idle sessions spent before its socket answered.
        self._vt: avt.Vt | None = None
        #: A dump :meth:`load` was given before the screen was made: drawn into it when it is, and what
        #: :meth:`dump` gives back until then (an idle session handed over again never makes its screen).
        self._loaded: str | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def vt(self) -> avt.Vt:
        if self._vt is None:
            assert avt is not None
            self._vt = avt.Vt(self._cols, self._rows, 0)  # no scrollback of its own: ours is the raw bytes
            if self._loaded is not None:
                self._vt.feed_str(self._loaded)
                self._loaded = None
        return self._vt

    def feed(self, data: bytes) -> bool:
        try:
            self.vt.feed_str(self._decoder.decode(data))
        except BaseException as exc:  # a Rust panic arrives as pyo3's PanicException (a BaseException)
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            log.warning("screen model: avt failed on a chunk; screen reset", exc_info=True)
            assert avt is not None
            self._vt = avt.Vt(self._cols, self._rows, 0)
            self._decoder.reset()
            return False
        return True

    def resize(self, rows: int, cols: int) -> None:
        if self._vt is None and self._loaded is None:
            self._rows, self._cols = rows, cols  # the screen is made at this size when it is
            return
        self.vt.resize(cols, rows)  # a loaded dump is drawn at the size it was made for, then resized
        self._rows, self._cols = rows, cols

    def lines(self) -> list[str]:
        return [line.text.rstrip() for line in self.vt.view()]

    def dump(self) -> str | None:
        # avt's own serialisation, in Rust: ~16x faster than painting the cells from Python (a graceful
        # restart snapshots every session while no request is answered), and exact where a repaint is not
        # (the main screen under the alternate one, the saved cursor).
        if self._vt is None and self._loaded is not None:
            return self._loaded
        return str(self.vt.dump())

    def load(self, dump: str) -> None:
        if self._vt is None and self._loaded is None:
            self._loaded = dump
        else:
            self.vt.feed_str(dump)

    def cursor(self) -> tuple[int, int]:
        c = self.vt.cursor
        return c.row, c.col

    def paint(self, out: list[str], rows: int, cols: int) -> None:
        for y, line in enumerate(self.vt.view()):
            cells = line.cells
            last = len(cells) - 1
            while last >= 0 and cells[last].is_default():
                last -= 1
            if last < 0:
                continue
            out.append(f"\x1b[{y + 1};1H")
            pen = _DEFAULT_PEN
            for cell in cells[: last + 1]:
                if cell.width == 0:  # the right half of a wide character
                    continue
                if cell.pen != pen:
                    pen = cell.pen
                    out.append(_avt_sgr(pen))
                out.append(cell.char)
            out.append("\x1b[0m")

    def runs(self, styles: StyleTable) -> list[list[list[object]]]:
        rows: list[list[list[object]]] = []
        pens: dict[str, int] = {}  # a pen's repr is its identity (avt's Pen is not hashable by value)
        for line in self.vt.view():
            cells = line.cells
            last = len(cells) - 1
            while last >= 0 and cells[last].is_default():
                last -= 1
            row: list[list[object]] = []
            pen = None
            for cell in cells[: last + 1]:
                if cell.width == 0:  # the right half of a wide character
                    continue
                if pen is None or cell.pen != pen:
                    pen = cell.pen
                    key = repr(pen)
                    index = pens.get(key)
                    if index is None:
                        index = pens[key] = styles.index(_avt_style(pen))
                    row.append(["", index])
                row[-1][0] = f"{row[-1][0]}{cell.char}"
            rows.append(row)
        return rows


_DEFAULT_PEN = avt.Pen() if avt is not None else None
_AVT_FLAGS = (("bold", "1"), ("faint", "2"), ("italic", "3"), ("underline", "4"), ("blink", "5"),
              ("inverse", "7"), ("strikethrough", "9"))


def _avt_color(color: avt.Color | None, base: int) -> str:
    if isinstance(color, avt.Color.RGB):
        return f"{base + 8};2;{color[0]};{color[1]};{color[2]}"
    if not isinstance(color, avt.Color.Indexed):
        return ""
    index = color[0]
    if index < 8:
        return str(base + index)
    if index < 16:
        return str(base + 60 + index - 8)
    return f"{base + 8};5;{index}"


def _avt_style_color(color: avt.Color | None) -> int | str | None:
    if isinstance(color, avt.Color.RGB):
        return f"#{color[0]:02x}{color[1]:02x}{color[2]:02x}"
    if isinstance(color, avt.Color.Indexed):
        return int(color[0])
    return None


def _avt_style(pen: avt.Pen) -> Style:
    return (_avt_style_color(pen.foreground), _avt_style_color(pen.background), bool(pen.bold), bool(pen.faint),
            bool(pen.italic), bool(pen.underline), bool(pen.inverse), bool(pen.strikethrough), bool(pen.blink))


def _avt_sgr(pen: avt.Pen) -> str:
    params = ["0", *(code for attr, code in _AVT_FLAGS if getattr(pen, attr))]
    params += [part for part in (_avt_color(pen.foreground, 30), _avt_color(pen.background, 40)) if part]
    return f"\x1b[{';'.join(params)}m"


def _net_state(found: list[bytes]) -> bytes:
    """What state sequences (:data:`_STATE`, in stream order) leave set, as few sequences as keep their
    effect: nothing before the last full reset; every alternate-screen switch in place (entering saves
    modes that leaving restores, and the model may be on either screen when the dropped stretch begins);
    between switches, each mode's, the margins' and each character set's last setting, in the order of
    those last settings. So output dropped again and again -- a TUI that hides and shows its cursor in
    every frame -- does not make what is kept of it grow; only switching screens does, and the watch feeds
    the model before that matters (:data:`maestrod.sessions.screen.FEED_AT`)."""
    last_reset = max((i for i, seq in enumerate(found) if seq == b"\x1bc"), default=-1)
    out = [b"\x1bc"] if last_reset >= 0 else []
    segments: list[dict[object, bytes]] = [{}]
    for seq in found[last_reset + 1 :]:
        if seq[1] != 0x5B:  # ESC ( B and the like
            _last_setting(segments[-1], ("charset", seq[1]), seq)
        elif seq.endswith(b"r"):
            _last_setting(segments[-1], "margins", seq)
        else:
            private = seq[2] == 0x3F  # "?"
            final = seq[-1:]
            for part in seq[3 if private else 2 : -1].split(b";"):
                if not part:
                    continue
                mode = int(part)
                one = b"\x1b[%s%d%s" % (b"?" if private else b"", mode, final)
                if private and mode in ALT_SCREEN_MODES:
                    segments.append({"switch": one})
                else:
                    _last_setting(segments[-1], (private, mode), one)
    for segment in segments:
        out += segment.values()
    return b"".join(out)


def _last_setting(segment: dict[object, bytes], key: object, seq: bytes) -> None:
    segment.pop(key, None)  # re-inserted: the order of last settings is kept
    segment[key] = seq


def _boundary_before(chunk: bytes, cut: int) -> int:
    """The last place at or before ``cut`` where no escape sequence or UTF-8 character is cut (0: none)."""
    cut_seq = _INCOMPLETE.search(chunk, max(0, cut - _MAX_CARRY), cut)
    if cut_seq is not None:
        cut = cut_seq.start()
    back = 0
    while cut > 0 and back < 3 and 0x80 <= chunk[cut] < 0xC0:  # a UTF-8 continuation byte
        cut -= 1
        back += 1
    return cut


def _make_model(emulator: Emulator, rows: int, cols: int) -> _Model:
    if emulator == "avt":
        if avt is None:
            raise RuntimeError("the avt screen model needs the pyavt package")
        return _AvtModel(rows, cols)
    # Imported at the end of this module when avt is missing (the daemon's default is then pyte); with
    # avt, only a caller asking for pyte by name (the tests) imports it.
    from maestrod.sessions.terminal_pyte import PyteModel

    return PyteModel(rows, cols)


# -- the terminal ---------------------------------------------------------------------------------


class Terminal:
    def __init__(self, rows: int, cols: int, *, emulator: Emulator | None = None) -> None:
        self.rows, self.cols = rows, cols
        self.emulator: Emulator = emulator or DEFAULT_EMULATOR
        self._model = _make_model(self.emulator, rows, cols)
        #: Bytes the model takes in ~1-5 ms: what a feeder should hand :meth:`feed_some` per slice.
        self.slice_bytes = self._model.slice_bytes
        #: Private modes the program set (DECSET), from the fast scan: exact even when the
        #: screen model lags behind. DECAWM (7) and DECTCEM (25) are on at start.
        self.private_modes: set[int] = {7, 25}
        self._alternate = False
        self._carry = b""
        self._model_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        #: Pending output holds bytes for the main screen (so a clear on the alternate screen must
        #: not drop them: leaving the alternate screen shows the main one again).
        self._pending_has_main = False
        self._stale = False
        #: Output was dropped since the main screen was last cleared: it is stale when it comes back.
        self._main_stale = False
        self._triggers: re.Pattern[bytes] | None = None
        self._trigger_tail = b""
        self._trigger_seen = False
        #: Bytes the screen model skipped (statistics; the scrollback has them all).
        self.model_skipped = 0
        #: Full clears seen on the fast path (statistics).
        self.full_clears = 0
        self.queries_answered = 0

    @property
    def screen(self) -> pyte.Screen:
        """The pyte screen (the pyte emulator only; tests compare it cell by cell)."""
        if self.emulator != "pyte":
            raise AttributeError(f"the {self.emulator} screen model has no pyte screen")
        from maestrod.sessions.terminal_pyte import PyteModel

        assert isinstance(self._model, PyteModel)
        return self._model.screen

    # -- the fast path ------------------------------------------------------------------------

    @property
    def bracketed_paste(self) -> bool:
        return 2004 in self.private_modes

    @property
    def alternate_screen(self) -> bool:
        """The program is on the alternate screen (47, 1047 and 1049 are one switch: any of them sets or
        resets it, as in xterm)."""
        return self._alternate

    @property
    def stale(self) -> bool:
        """Output was dropped for the model since the program last cleared the screen fully: what the
        model shows (even once fed) is not known to be what the program drew."""
        return self._stale

    def set_triggers(self, pattern: re.Pattern[bytes] | None) -> None:
        """Raw byte strings to look for in the output (the screen rules' triggers); None: none."""
        self._triggers = pattern
        self._trigger_tail = b""
        self._trigger_seen = False

    @property
    def trigger_seen(self) -> bool:
        """A trigger was in the output since :meth:`take_trigger` last said so."""
        return self._trigger_seen

    def take_trigger(self) -> bool:
        """Whether a trigger was seen since the last call (and forget it)."""
        seen, self._trigger_seen = self._trigger_seen, False
        return seen

    def process(self, data: bytes) -> tuple[bytes, list[bytes]]:
        """Take one read of program output: ``(bytes for viewers, replies to write back)``."""
        if self._triggers is not None:
            self._look_for_triggers(data)
        carried = len(self._carry)
        buf = self._carry + data if carried else data
        inc = _INCOMPLETE.search(buf, max(0, len(buf) - _MAX_CARRY))
        end = inc.start() if inc else len(buf)
        self._carry = buf[end:]
        replies: list[bytes] = []
        pieces: list[bytes] = []
        pos = 0  # in buf: start of what viewers have not been given
        # The model is queued whole sequences only: a sequence cut by the read (the carry) waits for its
        # end, so that dropping output before a clear can never drop the tail of a sequence whose head
        # the model already took.
        fed = 0  # in buf: start of what is not queued for the screen model
        main_in_read = not self.alternate_screen  # this read has bytes for the main screen (so far)
        for m in _SCAN.finditer(buf, 0, end):
            kind = m.lastgroup
            if kind == "set" or kind == "modes":
                was_alt = self._alternate
                on = m.group("set") == b"h"
                for part in m.group("modes").split(b";"):
                    if part:
                        mode = int(part)
                        (self.private_modes.add if on else self.private_modes.discard)(mode)
                        if mode in ALT_SCREEN_MODES:
                            self._alternate = on
                if not was_alt and self._alternate:
                    fed = self._full_clear(buf, fed, m.start(), main_in_read, alt=True)
                    main_in_read = False
                elif was_alt and not self._alternate:
                    main_in_read = True
                    if self._main_stale:
                        self._stale = True
                continue  # viewers need mode changes
            if kind == "clear" or kind == "ris":
                alt = self._alternate
                if kind == "ris":
                    self.private_modes = {7, 25}  # a full reset: main screen, default modes
                    self._alternate = alt = False
                fed = self._full_clear(buf, fed, m.start(), main_in_read, alt=alt)
                main_in_read = not alt
                continue  # viewers need clears
            pieces.append(buf[pos : m.start()])
            pos = m.end()
            if kind == "da1":
                replies.append(DA1_REPLY)
            elif kind == "da2":
                replies.append(DA2_REPLY)
            elif kind == "dsr":
                replies.append(DSR_OK)
            elif kind == "cpr":
                # The cursor where the query stands: bring the model up to exactly there.
                self._enqueue(buf[fed : m.end()], main_in_read)
                fed = m.end()
                self.sync_now(full=True)
                y, x = self.cursor
                x = min(x, self.cols - 1)  # a cursor past the last column (pending wrap) reports the last
                private = m.group("cpr").startswith(b"?")
                replies.append(b"\x1b[?%d;%d;1R" % (y + 1, x + 1) if private else b"\x1b[%d;%dR" % (y + 1, x + 1))
            else:
                continue  # other queries: not answered (like a basic terminal), but hidden
            self.queries_answered += 1
        if pos:
            pieces.append(buf[pos:end])
            out = b"".join(pieces)
        else:
            out = buf[:end] if end != len(buf) or carried else buf
        self._enqueue(buf[fed:end] if fed or end != len(buf) else buf, main_in_read)
        return out, replies

    def _look_for_triggers(self, data: bytes) -> None:
        assert self._triggers is not None
        joined = self._trigger_tail + data if self._trigger_tail else data
        # Once one is seen, nobody needs to know of a second until it is taken.
        if not self._trigger_seen and self._triggers.search(joined):
            self._trigger_seen = True
        self._trigger_tail = joined[-TRIGGER_OVERLAP:]

    def _full_clear(self, buf: bytes, fed: int, at: int, main_in_read: bool, *, alt: bool) -> int:
        """The program cleared the whole screen at ``buf[at]`` (``alt``: it is then on the alternate
        screen): output before it is dropped for the model; the new index of what is queued in buf."""
        self.full_clears += 1
        self._stale = False
        if not alt:
            self._main_stale = False
        if alt and (self._pending_has_main or (main_in_read and at > fed)):
            # Main-screen output is pending: the alternate screen's clear does not make it moot.
            self._enqueue(buf[fed:at], main_in_read)
            return at
        with self._queue_lock:
            dropped = [*self._pending, buf[fed:at]]
            self._pending.clear()
            self._pending_bytes = 0
            self._pending_has_main = False
        self._keep_state_of(dropped)
        return at

    def _keep_state_of(self, dropped: list[bytes]) -> None:
        """Count output dropped for the model, and queue what in it still changes the model."""
        joined = b"".join(dropped)
        state = _net_state(_STATE.findall(joined))
        with self._queue_lock:
            self.model_skipped += len(joined)
            if state:
                self._pending.appendleft(state)
                self._pending_bytes += len(state)

    def _enqueue(self, data: bytes, main: bool) -> None:
        if not data:
            return
        with self._queue_lock:
            self._pending.append(data)
            self._pending_bytes += len(data)
            self._pending_has_main = self._pending_has_main or main
            over = self._pending_bytes > BACKLOG_MAX
        if over:
            self.drop_pending_to(BACKLOG_MAX // 2)

    # -- the screen model (lazy) ----------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def drop_pending_to(self, keep: int) -> None:
        """Forget all but the newest ``keep`` pending bytes (for the model only): the screen is stale.
        The model resumes where a sequence or a line starts, never inside one."""
        dropped: list[bytes] = []
        with self._queue_lock:
            while self._pending and self._pending_bytes - len(self._pending[0]) >= keep:
                gone = self._pending.popleft()
                self._pending_bytes -= len(gone)
                dropped.append(gone)
            if self._pending and self._pending_bytes > keep:
                cut = self._pending_bytes - keep
                first = self._pending[0]
                self._pending[0] = first[cut:]
                self._pending_bytes -= cut
                dropped.append(first[:cut])
            while dropped and self._pending:
                first = self._pending[0]
                found = _RESYNC.search(first)
                cut = len(first) if found is None else found.start()
                if cut:
                    dropped.append(first[:cut])
                    self._pending_bytes -= cut
                    if found is None:
                        self._pending.popleft()
                    else:
                        self._pending[0] = first[cut:]
                if found is not None:
                    break
        if dropped:
            self._stale = self._main_stale = True
            self._keep_state_of(dropped)

    def _take(self, limit: int) -> bytes:
        """Up to ``limit`` pending bytes, oldest first, ending where a sequence and a character end (so
        that output dropped later never holds the rest of something the model began)."""
        with self._queue_lock:
            taken: list[bytes] = []
            n = 0
            while self._pending and n < limit:
                chunk = self._pending.popleft()
                if len(chunk) > limit - n:
                    cut = _boundary_before(chunk, limit - n)
                    if cut == 0 and n:
                        self._pending.appendleft(chunk)
                        break
                    if cut:  # else the chunk starts with one long sequence: all of it, or no progress
                        self._pending.appendleft(chunk[cut:])
                        chunk = chunk[:cut]
                self._pending_bytes -= len(chunk)
                taken.append(chunk)
                n += len(chunk)
            if not self._pending:
                self._pending_has_main = False
            return b"".join(taken)

    def feed_some(self, limit: int = SLICE) -> int:
        """Feed up to ``limit`` pending bytes to the model; the number fed. Any thread."""
        with self._model_lock:
            chunk = self._take(limit)
            if chunk and not self._model.feed(chunk):
                self._stale = self._main_stale = True
            return len(chunk)

    def sync_now(self, full: bool = False) -> None:
        """Bring the model up to date with what is pending now, in slices (any thread). Unless
        ``full``, a large backlog is cut to its tail first, so that this never takes long."""
        if not full and self._pending_bytes > 4 * FLOOD_TAIL:
            self.drop_pending_to(FLOOD_TAIL)
        budget = self._pending_bytes  # what came in meanwhile (a feeding thread) is for next time
        while budget > 0:
            fed = self.feed_some(min(self.slice_bytes, budget))
            if not fed:
                break
            budget -= fed

    # -- reading the screen --------------------------------------------------------------------

    def resize(self, rows: int, cols: int) -> None:
        self.sync_now(full=True)  # what is pending was drawn for the old size (callers sync first: it is short)
        with self._model_lock:
            self.rows, self.cols = rows, cols
            self._model.resize(rows, cols)

    @property
    def cursor(self) -> tuple[int, int]:
        """(row, col), 0-based, as of the last sync."""
        with self._model_lock:
            return self._model.cursor()

    def lines(self) -> list[str]:
        """The visible screen (as of the last sync), one string per row, trailing blanks cut."""
        with self._model_lock:
            return self._model.lines()

    def text(self) -> str:
        lines = self.lines()
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)

    def screen_model(self) -> dict[str, object]:
        """The screen (as of the last sync) for a viewer that draws it itself (the dashboard): every row as
        runs ``[text, style]`` indexing ``styles`` (objects with only what is not the default: ``fg``/``bg``
        as a palette index or ``#rrggbb``, ``bold``, ``faint``, ``italic``, ``underline``, ``inverse``,
        ``strike``, ``blink``), and the cursor (``visible``: DECTCEM, mode 25)."""
        styles = StyleTable()
        with self._model_lock:
            rows = self._model.runs(styles)
            y, x = self._model.cursor()
        return {"rows": self.rows, "cols": self.cols, "lines": rows, "styles": styles.as_json(),
                "cursor": {"row": y, "col": min(x, self.cols - 1), "visible": 25 in self.private_modes},
                "alternate_screen": self._alternate, "stale": self._stale}

    def snapshot(self) -> dict[str, Any]:
        """The screen for a successor daemon (:meth:`restore_snapshot`): the model's exact dump where the
        emulator gives one, else a repaint. Brings the model up to date first (a flood's backlog cut to
        its tail)."""
        self.sync_now()
        with self._model_lock:
            dump = self._model.dump()
        shown = {"modes": sorted(self.private_modes), "alternate": self._alternate, "stale": self._stale}
        if dump is not None:
            return {"emulator": self.emulator, "dump": dump, **shown}
        return {"repaint": self.render_ansi().decode("utf-8", "replace"), **shown}

    def restore_snapshot(self, screen: dict[str, Any]) -> None:
        """Draw what :meth:`snapshot` (or a version-1 state's repaint) gave into this fresh terminal."""
        dump = screen.get("dump")
        if isinstance(dump, str) and screen.get("emulator") == self.emulator:
            with self._model_lock:
                self._model.load(dump)
            self._alternate = bool(screen["alternate"])
        else:
            # A repaint holds no query, so nothing is answered; on the alternate screen it is drawn there.
            if screen["alternate"]:
                self.process(_ALT_ON)
            self.process(str(screen.get("repaint", "")).encode())
        self.private_modes = set(screen["modes"])

    def render_ansi(self) -> bytes:
        """Escape sequences that paint the current screen, cursor and modes on a viewer's terminal."""
        out: list[str] = ["\x1b[0m\x1b[H\x1b[2J"]
        with self._model_lock:
            self._model.paint(out, self.rows, self.cols)
            y, x = self._model.cursor()
        out.append(f"\x1b[{y + 1};{min(x, self.cols - 1) + 1}H")
        for mode in REPAINT_MODES:
            on = mode in self.private_modes
            if on or mode in (7, 25):
                out.append(f"\x1b[?{mode}{'h' if on else 'l'}")
        return "".join(out).encode("utf-8", "replace")


if avt is None:  # pragma: no cover - pyavt is a dependency; pyte stands in without it
    # pyte (and wcwidth) take a tenth of the daemon's imports: only when it is the model, and then at
    # start-up like every module the daemon runs (docs/restart.md, "Imports").
    importlib.import_module("maestrod.sessions.terminal_pyte")
