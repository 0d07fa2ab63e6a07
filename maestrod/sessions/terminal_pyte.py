"""pyte as the screen model (:mod:`maestrod.sessions.terminal` uses it when avt is not installed, or when
asked for it by name). A module of its own because pyte and wcwidth take a tenth of the daemon's imports:
a daemon that models screens with avt never imports them."""

from __future__ import annotations

import logging
from collections import defaultdict

import pyte
import pyte.graphics

from maestrod.sessions.terminal_common import ALT_SCREEN_MODES, Style, StyleTable

log = logging.getLogger("maestrod.sessions.terminal")

_FG = {name: code for code, name in {**pyte.graphics.FG_ANSI, **pyte.graphics.FG_AIXTERM}.items()}
_BG = {name: code for code, name in {**pyte.graphics.BG_ANSI, **pyte.graphics.BG_AIXTERM}.items()}


class _Screen(pyte.Screen):
    """pyte's screen without its own query answers (the terminal answers them; pyte's raise on ``ESC[?6n``), and
    with an alternate screen (pyte has one buffer: leaving vim would show vim's last screen)."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines)
        self._saved_main: tuple[object, pyte.screens.Cursor] | None = None

    def report_device_attributes(self, mode: int = 0, **kwargs: object) -> None:
        return None

    def report_device_status(self, mode: int, **kwargs: object) -> None:
        return None

    def set_mode(self, *modes: int, **kwargs: object) -> None:
        if kwargs.get("private") and ALT_SCREEN_MODES.intersection(modes) and self._saved_main is None:
            # Like xterm (and avt): a fresh blank buffer; the main one and its cursor come back on leaving.
            self._saved_main = (self.buffer, self.cursor)
            self.cursor = pyte.screens.Cursor(self.cursor.x, self.cursor.y, self.cursor.attrs)
            self.buffer = defaultdict(lambda: pyte.screens.StaticDefaultDict(self.default_char))
            self.dirty.update(range(self.lines))
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: object) -> None:
        if kwargs.get("private") and ALT_SCREEN_MODES.intersection(modes) and self._saved_main is not None:
            buffer, self.cursor = self._saved_main
            self.buffer = buffer  # type: ignore[assignment]
            self._saved_main = None
            self.dirty.update(range(self.lines))
        super().reset_mode(*modes, **kwargs)

    def reset(self) -> None:
        self._saved_main = None
        super().reset()


class PyteModel:
    slice_bytes = 4096  # ~5-9 ms of pyte

    def __init__(self, rows: int, cols: int) -> None:
        self.screen = _Screen(cols, rows)
        self._stream = pyte.ByteStream(self.screen)

    def feed(self, data: bytes) -> bool:
        try:
            self._stream.feed(data)
        except Exception:
            # A sequence pyte cannot take must not take the session down: a fresh parser (the
            # screen is kept) resumes with the next byte.
            log.debug("screen model: pyte failed on a chunk; parser reset", exc_info=True)
            self._stream = pyte.ByteStream(self.screen)
        return True

    def resize(self, rows: int, cols: int) -> None:
        self.screen.resize(rows, cols)

    def lines(self) -> list[str]:
        # Not pyte's `display`: it raises IndexError on rows that some sequences leave behind (an empty
        # cell not after a wide character); the empty right half of a wide character joins as nothing.
        screen, cols = self.screen, self.screen.columns
        return ["".join(screen.buffer[y][x].data for x in range(cols)).rstrip() for y in range(screen.lines)]

    def cursor(self) -> tuple[int, int]:
        return self.screen.cursor.y, self.screen.cursor.x

    def dump(self) -> str | None:
        return None  # pyte has no serialisation of its own: a successor gets a repaint

    def load(self, dump: str) -> None:
        raise NotImplementedError("the pyte model takes a repaint, not a dump")

    def paint(self, out: list[str], rows: int, cols: int) -> None:
        blank = self.screen.default_char
        for y in range(rows):
            line = self.screen.buffer[y]
            # Skip trailing default blanks; the clear already painted them.
            last = -1
            for x in sorted(line):
                ch = line[x]
                if x < cols and (ch.data not in ("", " ") or ch[1:] != blank[1:]):
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
                    out.append(_pyte_sgr(ch))
                    attrs = ch[1:]
                out.append(ch.data)
            out.append("\x1b[0m")

    def runs(self, styles: StyleTable) -> list[list[list[object]]]:
        blank = self.screen.default_char
        cols = self.screen.columns
        rows: list[list[list[object]]] = []
        for y in range(self.screen.lines):
            line = self.screen.buffer[y]
            last = max((x for x in line if x < cols and (line[x].data not in ("", " ") or line[x][1:] != blank[1:])),
                       default=-1)
            row: list[list[object]] = []
            attrs: tuple[object, ...] | None = None
            for x in range(last + 1):
                ch = line[x]
                if ch.data == "":  # the right half of a wide character
                    continue
                if ch[1:] != attrs:
                    attrs = ch[1:]
                    row.append(["", styles.index(_pyte_style(ch))])
                row[-1][0] = f"{row[-1][0]}{ch.data}"
            rows.append(row)
        return rows


def _pyte_color(value: str, names: dict[str, int], base: int) -> str:
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


def _pyte_style_color(value: str, names: dict[str, int], base: int) -> int | str | None:
    """A pyte colour for the screen model: a palette index (0-15), ``#rrggbb``, or None (default)."""
    if value == "default":
        return None
    code = names.get(value)
    if code is not None:  # 30-37 / 40-47, or aixterm's bright 90-97 / 100-107
        return code - base if code < base + 10 else code - base - 60 + 8
    if len(value) == 6 and all(c in "0123456789abcdefABCDEF" for c in value):
        return f"#{value.lower()}"
    return None


def _pyte_style(ch: pyte.screens.Char) -> Style:
    return (_pyte_style_color(ch.fg, _FG, 30), _pyte_style_color(ch.bg, _BG, 40), bool(ch.bold), False,
            bool(ch.italics), bool(ch.underscore), bool(ch.reverse), bool(ch.strikethrough), bool(ch.blink))


def _pyte_sgr(ch: pyte.screens.Char) -> str:
    params = ["0", *(code for attr, code in _SGR_FLAGS if getattr(ch, attr))]
    params += [part for part in (_pyte_color(ch.fg, _FG, 38), _pyte_color(ch.bg, _BG, 48)) if part]
    return f"\x1b[{';'.join(params)}m"
