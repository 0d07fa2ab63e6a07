"""Follow one append-only JSONL transcript file and hand its new bytes to a sink (a transcript parser).

Why a class of its own: the failure modes of tailing Claude Code transcripts are many and well documented
(``docs/transcripts.md``, 'Writing and rewriting'), and each one lost data in some other tool.  This class is
synchronous and clock-free - the service decides *when* to call :meth:`TranscriptTailer.poll` (on an
inotify/watchfiles hint, or on its stat-poll timer) - so every case is testable with a plain file:

* **Partial last line.**  Bytes are handed over as read; the parser buffers an unterminated tail and its
  ``offset`` (the checkpoint) stays before it.  After a restart, reading resumes at that checkpoint, so a
  line half-written at the time is read whole.  (The tailer itself never interprets lines, hence lines up
  to the parser's 64 MiB cap - and larger ones, skipped and counted by the parser - cost no buffering here.)
* **Truncation** (``st_size`` below the read position), **replacement / rotation** (another ``(st_dev,
  st_ino)`` at the path: the old fd is drained first, for late writes), **in-place rewrite** (the first bytes
  or the bytes just before the read position changed): the sink is reset and the file re-read from 0; the
  parser keeps its uuid set, so records already seen produce nothing.
* **Not there yet / deleted**: polled until it (re)appears.
* **Huge backlogs** (a long session watched late): at most ``max_bytes`` are read per :meth:`poll`, which
  says whether more is waiting, so the event loop is never held for long.

``os.pread`` on a regular file does not block for long, so it runs on the event loop (no thread hop).  Only a
regular file is ever read: every open is ``O_NONBLOCK | O_NOFOLLOW`` then ``fstat``
(:func:`maestrod.private_files.open_regular`), so a FIFO or a symbolic link put at the path (by a
hostile process) is refused (counted, logged once) and can never block the event loop.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

import attrs

from maestrod.private_files import open_regular, why_not_openable

log = logging.getLogger("maestrod.transcripts")

#: Bytes compared at the start of the file and just before the read position to detect a rewrite.
FINGERPRINT = 64
CHUNK = 1 << 20


class TailSink(Protocol):
    """Where the bytes go: ``feed`` gets them in file order; ``reset`` means "the file starts over at 0"."""

    def feed(self, data: bytes) -> None: ...

    def reset(self) -> None: ...


@attrs.define
class TailStats:
    """Counters of everything unusual, for ``session.digest`` health output and tests."""

    polls: int = 0
    reads: int = 0
    bytes: int = 0
    truncations: int = 0
    rotations: int = 0
    rewrites: int = 0
    missing: int = 0
    #: opens refused: not a regular file (a FIFO, a symbolic link, ...)
    refused: int = 0

    def to_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


class TranscriptTailer:
    """Tail ``path`` from ``offset`` (a parser checkpoint).

    ``identity`` (``(st_dev, st_ino)``) and ``head`` / ``tail`` (the first bytes of the file and the bytes
    just before ``offset``) come from a previous :meth:`checkpoint_info`; with them a restart notices a file
    replaced or rewritten while the daemon was down and starts over at 0 (de-duplicated by the parser).
    """

    def __init__(
        self,
        path: str,
        sink: TailSink,
        *,
        offset: int = 0,
        identity: tuple[int, int] | None = None,
        head: bytes = b"",
        tail: bytes = b"",
        max_bytes: int = 8 * CHUNK,
        chunk: int = CHUNK,
    ) -> None:
        self.path = path
        self.sink = sink
        #: Bytes of the file handed to the sink so far (the read position; the parser's checkpoint
        #: offset is at or before it).
        self.position = offset
        self.identity = identity
        self.head = head
        self.tail = tail
        self.max_bytes = max_bytes
        self.chunk = chunk
        self.stats = TailStats()
        self.fd: int | None = None
        self._seen_stat: tuple[int, int] | None = None  # (size, mtime_ns) at the last look
        #: Why the file at the path was refused at the last open (logged when it changes), else None.
        self.refused: str | None = None

    # ------------------------------------------------------------------------------------------- reading

    def poll(self) -> bool:
        """Read what was appended since the last call (at most ``max_bytes``).  Returns True when more
        bytes are already waiting (call again soon)."""
        self.stats.polls += 1
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            st = None
        if self.fd is not None:
            fst = os.fstat(self.fd)
            if st is None or (st.st_dev, st.st_ino) != (fst.st_dev, fst.st_ino):
                # Renamed, replaced or deleted: what the writer appends to the old file still counts.
                # While nothing is at the path the old fd stays open (late writes keep coming in);
                # once a new file is there, the old one is drained a last time and the new one read from 0.
                self._read(self.fd, fst.st_size, limit=None)
                if st is None:
                    self.stats.missing += 1
                    return False
                self.close()
                self.stats.rotations += 1
                self._start_over()
        if self.fd is None:
            if st is None:
                self.stats.missing += 1
                return False
            if not self._open():
                return False
        assert self.fd is not None
        fst = os.fstat(self.fd)
        stamp = (fst.st_size, fst.st_mtime_ns)
        if stamp == self._seen_stat and fst.st_size == self.position:
            return False  # nothing changed since the last look
        self._seen_stat = stamp
        if fst.st_size < self.position:
            self.stats.truncations += 1
            self._start_over()
        elif self.position and not self._verify():
            self.stats.rewrites += 1
            self._start_over()
        return self._read(self.fd, fst.st_size, limit=self.max_bytes)

    def _open(self) -> bool:
        try:
            fd = open_regular(self.path)
        except (FileNotFoundError, NotADirectoryError):
            self.stats.missing += 1
            return False
        except OSError as exc:
            self.stats.refused += 1
            why = why_not_openable(exc)
            if why != self.refused:
                log.warning("transcript %s refused: %s", self.path, why)
                self.refused = why
            return False
        self.refused = None
        self.fd = fd
        fst = os.fstat(fd)
        identity = (fst.st_dev, fst.st_ino)
        if self.identity is not None and identity != self.identity and self.position:
            self.identity = identity
            self.stats.rotations += 1
            self._start_over()
        self.identity = identity
        self._seen_stat = None
        return True

    def _verify(self) -> bool:
        """Are the bytes we already consumed still there?  Appending never changes them; a rewrite does."""
        assert self.fd is not None
        if self.head and os.pread(self.fd, len(self.head), 0) != self.head:
            return False
        if self.tail:
            start = self.position - len(self.tail)
            if start < 0 or os.pread(self.fd, len(self.tail), start) != self.tail:
                return False
        return True

    def _start_over(self) -> None:
        self.position = 0
        self.head = b""
        self.tail = b""
        self._seen_stat = None
        self.sink.reset()

    def _read(self, fd: int, size: int, *, limit: int | None) -> bool:
        budget = limit if limit is not None else size
        while self.position < size and budget > 0:
            want = min(self.chunk, size - self.position, budget)
            data = os.pread(fd, want, self.position)
            if not data:
                break
            self.stats.reads += 1
            self.stats.bytes += len(data)
            budget -= len(data)
            if len(self.head) < FINGERPRINT and self.position < FINGERPRINT:
                self.head = (self.head + data)[:FINGERPRINT]
            self.tail = (self.tail + data)[-FINGERPRINT:] if len(data) < FINGERPRINT else data[-FINGERPRINT:]
            self.position += len(data)
            self.sink.feed(data)
        return self.position < size

    # ------------------------------------------------------------------------------------------- state

    def checkpoint_info(self, offset: int) -> dict[str, Any]:
        """What to persist beside a parser checkpoint taken at ``offset`` (<= :attr:`position`): the file
        identity and fingerprints *relative to that offset*, so a restart can verify the file."""
        tail = b""
        if self.fd is not None and offset > 0:
            n = min(FINGERPRINT, offset)
            try:
                tail = os.pread(self.fd, n, offset - n)
            except OSError:
                tail = b""
        elif offset == self.position:
            tail = self.tail
        head = self.head if offset >= len(self.head) else self.head[:offset]
        return {
            "path": self.path,
            "offset": offset,
            "identity": list(self.identity) if self.identity else None,
            "head": head.hex(),
            "tail": tail.hex(),
        }

    @staticmethod
    def restore_kwargs(info: dict[str, Any] | None) -> dict[str, Any]:
        """Constructor keywords from :meth:`checkpoint_info` output (tolerates a missing or odd record)."""
        if not info:
            return {}
        identity = info.get("identity")
        try:
            return {
                "offset": int(info.get("offset") or 0),
                "identity": (int(identity[0]), int(identity[1])) if identity else None,
                "head": bytes.fromhex(info.get("head") or ""),
                "tail": bytes.fromhex(info.get("tail") or ""),
            }
        except (TypeError, ValueError, IndexError):
            return {}

    def close(self) -> None:
        """Release the fd (the position and fingerprints stay, for a checkpoint)."""
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
        self.fd = None
        self._seen_stat = None
