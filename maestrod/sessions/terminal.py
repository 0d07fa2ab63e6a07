"""The terminal behind a session's PTY: answers queries, tracks modes, models the screen.

Nobody sits behind the PTY master, so the daemon is the terminal. Three jobs, done at two
speeds:

* **Every byte, on the read path** (a compiled-regex scan; memchr speed on plain text):
  answer the terminal queries a TUI waits for -- DA1 ``ESC[c``, DA2 ``ESC[>c``, DSR ``ESC[5n``,
  cursor position ``ESC[6n`` / ``ESC[?6n`` (Claude Code hangs at start-up without a DA1 answer,
  notes §1.5); track private modes (DECSET/DECRST ``ESC[?...h/l``: bracketed paste 2004,
  cursor keys, mouse...); and strip every query from what attached viewers get, so a real
  terminal behind ``session attach`` never answers a second time into the agent's input.
  A sequence cut by a read boundary is carried over to the next read.
* **Lazily, off the read path**: the pyte screen model. pyte handles < 1 MB/s while a PTY
  delivers ~80 MB/s, so output is queued and fed to pyte when the output goes quiet, when
  someone needs the screen (``session.screen``, an attach repaint, a cursor-position query),
  or -- during a flood -- only its tail (:data:`FLOOD_TAIL`). The queue is bounded
  (:data:`BACKLOG_MAX`): beyond it the oldest output is dropped for the screen model (never
  for the scrollback), resuming at a line start. For a plain-text flood the visible screen is
  the same; a full-screen TUI redraws far below these volumes, so it is never cut.
"""

from __future__ import annotations

import logging
import re
from collections import deque

import pyte
import pyte.graphics

log = logging.getLogger("maestrod.sessions.terminal")

#: Answers (what xterm-compatible terminals say): VT220 with ANSI colour; VT220 firmware 10.
DA1_REPLY = b"\x1b[?62;22c"
DA2_REPLY = b"\x1b[>1;10;0c"
DSR_OK = b"\x1b[0n"

#: Pending output the screen model may lag behind by, at most (bytes).
BACKLOG_MAX = 256 * 1024
#: During a flood the screen model only gets this much of the newest output.
FLOOD_TAIL = 16 * 1024
#: pyte is fed in slices this big between checkpoints (~5 ms each).
SLICE = 4096
_MAX_CARRY = 512

_SCAN = re.compile(
    rb"""
    \x1b(?:
        \[(?:
            (?P<da1>0?c)
          | >(?P<da2>0?c)
          | (?P<dsr>5n)
          | (?P<cpr>\??6n)
          | \?(?P<modes>[0-9;]+)(?P<set>[hl])
          | (?P<other>[>=][0-9;]*[cq]|\?u|\??[0-9]+\$p)
        )
      | \](?P<osc>[0-9]+(?:;[^\x07\x1b]*)?;\?(?:\x07|\x1b\\))
    )
""",
    re.X,
)

#: An escape sequence the read cut off (it may still become a query).
_INCOMPLETE = re.compile(rb"\x1b(?:\[[0-9;?>=$]*|\][^\x07\x1b]*\x1b?)?\Z")

#: Private modes a repaint restores on a viewer's terminal (1049, the alternate screen, is the
#: attach client's own business).
REPAINT_MODES = (1, 7, 25, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 2004)

_FG = {name: code for code, name in {**pyte.graphics.FG_ANSI, **pyte.graphics.FG_AIXTERM}.items()}
_BG = {name: code for code, name in {**pyte.graphics.BG_ANSI, **pyte.graphics.BG_AIXTERM}.items()}


class _Screen(pyte.Screen):
    """pyte's screen without its own query answers (ours are above; pyte's raise on ``ESC[?6n``)."""

    def report_device_attributes(self, mode: int = 0, **kwargs: object) -> None:
        return None

    def report_device_status(self, mode: int, **kwargs: object) -> None:
        return None


class Terminal:
    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        self.screen = _Screen(cols, rows)
        self._stream = pyte.ByteStream(self.screen)
        #: Private modes the program set (DECSET), from the fast scan: exact even when the
        #: screen model lags behind. DECAWM (7) and DECTCEM (25) are on at start.
        self.private_modes: set[int] = {7, 25}
        self._carry = b""
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._resync = False  # output was dropped for the model: resume at a line start
        #: Bytes the screen model skipped (statistics; the scrollback has them all).
        self.model_skipped = 0
        self.queries_answered = 0

    # -- the fast path ------------------------------------------------------------------------

    @property
    def bracketed_paste(self) -> bool:
        return 2004 in self.private_modes

    def process(self, data: bytes) -> tuple[bytes, list[bytes]]:
        """Take one read of program output: ``(bytes for viewers, replies to write back)``."""
        carried = len(self._carry)
        buf = self._carry + data if carried else data
        inc = _INCOMPLETE.search(buf, max(0, len(buf) - _MAX_CARRY))
        end = inc.start() if inc else len(buf)
        self._carry = buf[end:]
        replies: list[bytes] = []
        pieces: list[bytes] = []
        pos = 0  # in buf: start of what viewers have not been given
        fed = 0  # in data: start of what is not queued for the screen model
        for m in _SCAN.finditer(buf, 0, end):
            if m.group("modes") is not None:
                on = m.group("set") == b"h"
                for part in m.group("modes").split(b";"):
                    if part:
                        (self.private_modes.add if on else self.private_modes.discard)(int(part))
                continue  # viewers need mode changes
            pieces.append(buf[pos : m.start()])
            pos = m.end()
            if m.group("da1") is not None:
                replies.append(DA1_REPLY)
            elif m.group("da2") is not None:
                replies.append(DA2_REPLY)
            elif m.group("dsr") is not None:
                replies.append(DSR_OK)
            elif m.group("cpr") is not None:
                # The cursor where the query stands: bring the model up to exactly there.
                upto = max(0, m.end() - carried)
                self._enqueue(data[fed:upto])
                fed = upto
                self.sync_now(full=True)
                y, x = self.screen.cursor.y + 1, self.screen.cursor.x + 1
                private = m.group("cpr").startswith(b"?")
                replies.append(b"\x1b[?%d;%d;1R" % (y, x) if private else b"\x1b[%d;%dR" % (y, x))
            else:
                continue  # other queries: not answered (like a basic terminal), but hidden
            self.queries_answered += 1
        if pos:
            pieces.append(buf[pos:end])
            out = b"".join(pieces)
        else:
            out = buf[:end] if end != len(buf) or carried else buf
        self._enqueue(data[fed:] if fed else data)
        return out, replies

    def _enqueue(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes > BACKLOG_MAX:
            self.drop_pending_to(BACKLOG_MAX // 2)

    # -- the screen model (lazy) ----------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def drop_pending_to(self, keep: int) -> None:
        """Forget all but the newest ``keep`` pending bytes (for the model only)."""
        while self._pending and self._pending_bytes - len(self._pending[0]) >= keep:
            gone = self._pending.popleft()
            self._pending_bytes -= len(gone)
            self.model_skipped += len(gone)
            self._resync = True
        if self._pending and self._pending_bytes > keep:
            cut = self._pending_bytes - keep
            first = self._pending[0]
            self._pending[0] = first[cut:]
            self._pending_bytes -= cut
            self.model_skipped += cut
            self._resync = True

    def feed_some(self, limit: int = SLICE) -> int:
        """Feed up to ``limit`` pending bytes to the model; the number fed."""
        fed = 0
        while self._pending and fed < limit:
            chunk = self._pending.popleft()
            if self._resync:
                nl = chunk.find(b"\n")
                if nl < 0:
                    self._pending_bytes -= len(chunk)
                    self.model_skipped += len(chunk)
                    continue
                self._resync = False
                self._pending_bytes -= nl + 1
                self.model_skipped += nl + 1
                chunk = chunk[nl + 1 :]
            take = limit - fed
            if len(chunk) > take:
                self._pending.appendleft(chunk[take:])
                chunk = chunk[:take]
            self._pending_bytes -= len(chunk)
            try:
                self._stream.feed(chunk)
            except Exception:
                # A sequence pyte cannot take must not take the session down: a fresh parser
                # (the screen is kept) resumes with the next byte.
                log.debug("screen model: pyte failed on a chunk; parser reset", exc_info=True)
                self._stream = pyte.ByteStream(self.screen)
            fed += len(chunk)
        return fed

    def sync_now(self, full: bool = False) -> None:
        """Bring the model up to date, synchronously. Unless ``full``, a large backlog is cut to
        its tail first, so this never blocks the loop for long."""
        if not full and self._pending_bytes > 4 * FLOOD_TAIL:
            self.drop_pending_to(FLOOD_TAIL)
        while self._pending:
            self.feed_some(BACKLOG_MAX)

    # -- reading the screen --------------------------------------------------------------------

    def resize(self, rows: int, cols: int) -> None:
        self.sync_now()
        self.rows, self.cols = rows, cols
        self.screen.resize(rows, cols)

    @property
    def cursor(self) -> tuple[int, int]:
        """(row, col), 0-based, as of the last sync."""
        return self.screen.cursor.y, self.screen.cursor.x

    def lines(self) -> list[str]:
        """The visible screen (as of the last sync), one string per row, trailing blanks cut."""
        return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        lines = self.lines()
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)

    def render_ansi(self) -> bytes:
        """Escape sequences that paint the current screen, cursor and modes on a viewer's terminal."""
        out: list[str] = ["\x1b[0m\x1b[H\x1b[2J"]
        blank = self.screen.default_char
        for y in range(self.rows):
            line = self.screen.buffer[y]
            # Skip trailing default blanks; the clear already painted them.
            last = -1
            for x in sorted(line):
                ch = line[x]
                if x < self.cols and (ch.data not in ("", " ") or ch[1:] != blank[1:]):
                    last = x
            if last < 0:
                continue
            out.append(f"\x1b[{y + 1};1H")
            attrs: tuple[object, ...] = blank[1:]
            for x in range(last + 1):
                ch = line[x]
                if ch.data == "":  # the right half of a wide character
                    continue
                if ch[1:] != attrs:
                    out.append(_sgr(ch))
                    attrs = ch[1:]
                out.append(ch.data)
            out.append("\x1b[0m")
        y, x = self.cursor
        out.append(f"\x1b[{y + 1};{x + 1}H")
        for mode in REPAINT_MODES:
            on = mode in self.private_modes
            if on or mode in (7, 25):
                out.append(f"\x1b[?{mode}{'h' if on else 'l'}")
        return "".join(out).encode("utf-8", "replace")


def _color(value: str, names: dict[str, int], base: int) -> str:
    if value == "default":
        return ""
    code = names.get(value)
    if code is not None:
        return str(code)
    if len(value) == 6:
        try:
            r, g, b = int(value[:2], 16), int(value[2:4], 16), int(value[4:], 16)
        except ValueError:
            return ""
        return f"{base};2;{r};{g};{b}"
    return ""


#: pyte's character attributes and their SGR codes.
_SGR_FLAGS = (("bold", "1"), ("italics", "3"), ("underscore", "4"), ("blink", "5"), ("reverse", "7"),
              ("strikethrough", "9"))


def _sgr(ch: pyte.screens.Char) -> str:
    params = ["0", *(code for attr, code in _SGR_FLAGS if getattr(ch, attr))]
    params += [part for part in (_color(ch.fg, _FG, 38), _color(ch.bg, _BG, 48)) if part]
    return f"\x1b[{';'.join(params)}m"
