"""JSON Lines input shared by the transcript adapters: line splitting, size and nesting bounds, counters.

Both Claude Code transcripts and Codex rollouts are append-only JSONL files read while they grow, so every
adapter has the same input rules (docs/transcripts.md, 'Writing and rewriting'): only bytes up to the last
``\\n`` are consumed, the unterminated tail is buffered and :attr:`JsonlInput.offset` (the checkpoint) stops
before it; lines above ``max_line_bytes`` are skipped and counted without being buffered; nothing nests
deeper than :data:`MAX_NESTING`.  An adapter subclasses :class:`JsonlInput` and implements
``_process_line``.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import orjson

__all__ = ["MAX_LINE_BYTES", "MAX_NESTING", "JsonlInput", "ParserStats", "loads_dict", "nesting_exceeds"]

#: Records longer than this are skipped (and counted), never buffered further: real files have had single
#: lines of several MB (Claude Code ``progress`` records, base64 screenshots), but anything beyond 64 MiB is
#: pathological and would make a daemon's memory unbounded.
MAX_LINE_BYTES = 64 << 20

#: Nesting bound for what the parser decodes and may encode again (orjson encodes at most 255 levels, the
#: repairs' stdlib decoder recurses): a line the fast decoder refused, or a tool call's input, nested deeper
#: makes the line corrupt.  The rest of a line is bounded by the fast decoder's recursion limit (~1000
#: levels; beyond it the line is corrupt too).
MAX_NESTING = 128

#: Complete lines handed to ``_process_lines`` at a time.
_LINES_PER_BATCH = 1024


@attrs.define(slots=True)
class ParserStats:
    """Counters for everything unusual the parser met; exposed so the daemon can report transcript health."""

    lines: int = 0
    records: int = 0
    blank_lines: int = 0
    corrupt_lines: int = 0
    oversized_lines: int = 0
    repaired_lines: int = 0
    glued_lines: int = 0
    salvaged_records: int = 0
    duplicate_records: int = 0
    unknown_records: int = 0
    orphan_results: int = 0

    def to_dict(self) -> dict[str, int]:
        return attrs.asdict(self)



class JsonlInput:
    """Splits the bytes of a growing JSONL file into complete lines for ``_process_line``.

    ``offset`` is the absolute file offset just past the last complete line consumed (the safe checkpoint);
    ``_eof`` is true after :meth:`_finish_lines` until more bytes are fed.
    """

    def __init__(self, *, offset: int = 0, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        #: Absolute offset just past the last complete line consumed: the safe checkpoint.
        self.offset = offset
        self.max_line_bytes = max_line_bytes
        self.stats = ParserStats()
        self._buffer = b""
        self._skipping = 0  # >0: inside an oversized line, this many bytes skipped so far
        self._eof = False

    def _process_line(self, line: bytes | memoryview, events: list[Any]) -> None:
        raise NotImplementedError

    def _process_lines(self, lines: list[memoryview], events: list[Any]) -> None:
        """The complete lines of one :meth:`feed`, in order (an adapter may loop over them itself)."""
        process = self._process_line
        for line in lines:
            process(line, events)

    def feed(self, data: bytes) -> list[Any]:
        """Consume the next bytes of the file; return the events of every line completed by them."""
        events: list[Any] = []
        self._eof = False
        if not data:
            return events
        if self._skipping:
            newline = data.find(b"\n")
            if newline < 0:
                self._skipping += len(data)
                return events
            self.offset += self._skipping + newline + 1
            self._skipping = 0
            self.stats.lines += 1
            self.stats.oversized_lines += 1
            data = data[newline + 1 :]
        buffer = self._buffer + data if self._buffer else data
        view = memoryview(buffer)  # slicing a memoryview does not copy the line
        start = 0
        limit = self.max_line_bytes
        find = buffer.find
        lines: list[memoryview] = []
        while True:
            newline = find(b"\n", start)
            if newline < 0:
                break
            if newline - start > limit:
                self.stats.lines += 1
                self.stats.oversized_lines += 1
            else:
                lines.append(view[start:newline])
                if len(lines) == _LINES_PER_BATCH:  # a whole file fed at once holds a batch, not every line
                    self._process_lines(lines, events)
                    lines = []
            start = newline + 1
        if lines:
            self._process_lines(lines, events)
        self.offset += start
        rest = bytes(buffer[start:])
        if len(rest) > limit:
            self._buffer = b""
            self._skipping = len(rest)
        else:
            self._buffer = rest
        return events

    def _finish_lines(self, events: list[Any]) -> None:
        """Parse an unterminated last line and mark the end of the stream (for ``finish``)."""
        if self._buffer.strip():
            self._process_line(self._buffer, events)
        self.offset += len(self._buffer) + self._skipping
        if self._skipping:
            self.stats.lines += 1
            self.stats.oversized_lines += 1
        self._buffer = b""
        self._skipping = 0
        self._eof = True

    def reset(self, offset: int = 0) -> None:
        """Restart reading at ``offset`` (file truncated or replaced: re-read from 0).  The adapter's state,
        including what it has seen, is kept, so re-read records produce no events."""
        self.offset = offset
        self._buffer = b""
        self._skipping = 0
        self._eof = False

    @property
    def pending_bytes(self) -> int:
        """Bytes buffered after :attr:`offset` (an unterminated line)."""
        return len(self._buffer) + self._skipping


#: A string, or an unterminated one up to the end (so that a broken line costs one pass, not one per quote).
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_RUNS = re.compile(b"\x02+|\x00+")


def nesting_exceeds(text: bytes, limit: int) -> bool:
    """Does the JSON ``text`` nest arrays/objects more than ``limit`` deep?  Never recurses, never decodes.

    Two C-speed counts settle the common case (no more opening brackets than ``limit``).  Otherwise the
    strings are cut out, the brackets left become 2 (open) and 0 (close), and whole levels of innermost
    pairs are peeled with ``bytes.replace`` while that shrinks the text fast (wide, shallow JSON); what
    remains is summed run by run, stopping at the first level over the limit (a deep chain).  Linear in
    the length.  Exact for valid JSON; for broken text, exact up to where a decoder would stop.
    """
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    steps = _JSON_STRING.sub(b"", text).translate(_BRACKET_STEP, _NOT_BRACKET)
    while steps.count(2) > limit:
        if limit == 0:
            return True
        peeled = steps.replace(b"\x02\x00", b"")  # every innermost pair: the depth is one less
        if len(steps) - len(peeled) < len(steps) >> 4:  # little left to peel: a deep chain
            return _depth_exceeds(steps, limit)
        steps, limit = peeled, limit - 1
    return False


def _depth_exceeds(steps: bytes, limit: int) -> bool:
    # Runs of opening/closing brackets: few of them once the innermost pairs are rare (each run of
    # openings ends at an innermost pair), so a deep chain costs two steps, not one per bracket.
    depth = 0
    for run in _RUNS.findall(steps):
        if run[0]:
            depth += len(run)
            if depth > limit:
                return True
        else:
            depth -= len(run)
    return False


def loads_dict(line: bytes | memoryview) -> dict[str, Any] | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


