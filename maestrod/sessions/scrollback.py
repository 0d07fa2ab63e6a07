"""Bounded raw output of a session, addressed by absolute byte offsets.

Offset 0 is the first byte the program ever wrote; :attr:`Scrollback.total` counts every byte
received (also the ones already dropped), so a reader that remembers an offset can tell
exactly what it missed, and a benchmark can check that no byte was lost.
"""

from __future__ import annotations


class Scrollback:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("scrollback capacity must be >= 1 byte")
        self.capacity = capacity
        self._buf = bytearray()
        self._start = 0  # absolute offset of _buf[0]
        # Trim in batches: a memmove of `capacity` bytes per `slack` bytes appended.
        self._slack = max(capacity // 4, 4096)

    @property
    def start(self) -> int:
        """The oldest offset still held."""
        return self._start

    @property
    def total(self) -> int:
        """Bytes received so far (== the offset the next byte will have)."""
        return self._start + len(self._buf)

    def append(self, data: bytes) -> None:
        self._buf += data
        excess = len(self._buf) - self.capacity
        if excess > self._slack:
            del self._buf[:excess]
            self._start += excess

    def read(self, offset: int, limit: int) -> tuple[int, bytes]:
        """``(actual_offset, data)``: at most ``limit`` bytes from ``offset``.

        An offset older than :attr:`start` is moved up to it (the caller sees the gap as
        ``actual_offset > offset``); one past :attr:`total` gives ``(total, b"")``.
        """
        held_from = max(self._start, self.total - self.capacity)
        offset = min(max(offset, held_from), self.total)
        i = offset - self._start
        return offset, bytes(self._buf[i : i + max(0, limit)])

    def tail(self, n: int) -> bytes:
        return bytes(self._buf[-n:]) if n > 0 else b""
