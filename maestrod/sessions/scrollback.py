"""Bounded raw output of a session, addressed by absolute byte offsets.

Offset 0 is the first byte the program ever wrote; :attr:`Scrollback.total` counts every byte
received (also the ones already dropped), so a reader that remembers an offset can tell
exactly what it missed, and a benchmark can check that no byte was lost.

Memory: the bytes are kept in immutable blocks of at most :data:`BLOCK` bytes (a read that big
is kept as it came), and whole blocks are dropped from the front. One contiguous buffer trimmed
from the front (the old design) held ~1.9x its bound in a busy daemon: its slack, bytearray's
over-allocation and, above all, the allocator, which cannot reuse the freed front of a buffer
that keeps growing at the back, so every trim left a hole. Here the most held is the bound plus
one block, and every block freed is the size the next one needs.
"""

from __future__ import annotations

from collections import deque

#: Output is gathered into blocks of this size (a larger read becomes a block by itself).
BLOCK = 64 * 1024


class Scrollback:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("scrollback capacity must be >= 1 byte")
        self.capacity = capacity
        # A small bound gets small blocks, so that what is held stays close to the bound.
        self._block = max(1, min(BLOCK, capacity // 16))
        self._blocks: deque[bytes] = deque()  # full blocks, oldest first
        self._held = 0  # bytes in _blocks
        self._tail = bytearray()  # the block being filled
        self._start = 0  # absolute offset of _blocks[0][0] (or of _tail[0] when no block is held)

    @property
    def start(self) -> int:
        """The oldest offset still held."""
        return self._start

    @property
    def total(self) -> int:
        """Bytes received so far (== the offset the next byte will have)."""
        return self._start + self._held + len(self._tail)

    def append(self, data: bytes) -> None:
        if not data:
            return
        if not self._tail and len(data) >= self._block:
            self._push(data)  # as it came: no copy
        else:
            self._tail += data
            if len(self._tail) >= self._block:
                self._push(bytes(self._tail))
                self._tail = bytearray()
        # Drop whole old blocks while the newest `capacity` bytes are held without them.
        while self._blocks and self._held + len(self._tail) - len(self._blocks[0]) >= self.capacity:
            gone = self._blocks.popleft()
            self._held -= len(gone)
            self._start += len(gone)

    def resume(self, start: int, data: bytes) -> None:
        """Continue a scrollback handed over by a previous daemon: ``data`` is what it held, from absolute
        offset ``start`` (so offsets, and :attr:`total`, go on where they were). Only on an empty one."""
        if self.total:
            raise ValueError("resume() is for an empty scrollback")
        self._start = start
        self.append(data)

    def _push(self, block: bytes) -> None:
        self._blocks.append(block)
        self._held += len(block)

    def read(self, offset: int, limit: int) -> tuple[int, bytes]:
        """``(actual_offset, data)``: at most ``limit`` bytes from ``offset``.

        An offset older than :attr:`start` is moved up to it (the caller sees the gap as
        ``actual_offset > offset``); one past :attr:`total` gives ``(total, b"")``.
        """
        total = self.total
        held_from = max(self._start, total - self.capacity)
        offset = min(max(offset, held_from), total)
        want = min(max(0, limit), total - offset)
        pieces: list[bytes] = []
        pos = self._start  # absolute offset of the block being looked at
        for block in (*self._blocks, self._tail):
            end = pos + len(block)
            if end > offset and want > 0:
                i = offset - pos
                piece = bytes(block[i : i + want])
                pieces.append(piece)
                offset += len(piece)
                want -= len(piece)
            pos = end
            if want <= 0:
                break
        data = b"".join(pieces)
        return offset - len(data), data

    def tail(self, n: int) -> bytes:
        if n <= 0:
            return b""
        return self.read(self.total - n, n)[1]
