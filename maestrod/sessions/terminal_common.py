"""What the terminal (:mod:`maestrod.sessions.terminal`) and its screen models share: a module of its own, so
that the pyte model (:mod:`maestrod.sessions.terminal_pyte`, imported only when it is used) needs nothing
from the terminal, which imports it."""

from __future__ import annotations

#: The alternate screen's private modes (entering one clears the screen; leaving restores the main one).
ALT_SCREEN_MODES = frozenset({47, 1047, 1049})

#: A cell's look in the screen model: fg, bg (a palette index 0-255, ``#rrggbb`` or None for the
#: default), then bold, faint, italic, underline, inverse, strikethrough, blink.
Style = tuple[int | str | None, int | str | None, bool, bool, bool, bool, bool, bool, bool]
_STYLE_FLAGS = ("bold", "faint", "italic", "underline", "inverse", "strike", "blink")


class StyleTable:
    """The distinct styles of one screen model, numbered in order of first use (0 is the default look)."""

    def __init__(self) -> None:
        self._index: dict[Style, int] = {(None, None, False, False, False, False, False, False, False): 0}

    def index(self, style: Style) -> int:
        found = self._index.get(style)
        if found is None:
            found = self._index[style] = len(self._index)
        return found

    def as_json(self) -> list[dict[str, object]]:
        """Each style as an object with only what differs from the default (``{"fg": 1, "bold": true}``)."""
        out: list[dict[str, object]] = []
        for (fg, bg, *flags) in self._index:
            style: dict[str, object] = {}
            if fg is not None:
                style["fg"] = fg
            if bg is not None:
                style["bg"] = bg
            style.update((name, True) for name, on in zip(_STYLE_FLAGS, flags) if on)
            out.append(style)
        return out
