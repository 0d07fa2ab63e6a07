"""Per-session resource use: resident memory and CPU of a session's whole process tree, from ``/proc``.

One scan of ``/proc/*/stat`` gives every process's parent, CPU ticks and resident pages; a session's figure
is the sum over its first process and all its descendants (Claude Code's node, its tools, their children).
A scan is kept for ``ttl`` seconds, so listing many sessions, or asking often, costs one scan; CPU is the
share of one core the tree used between two scans of it (None on its first one)."""

from __future__ import annotations

import os
import time

import attrs

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class Usage:
    rss_bytes: int
    #: Percent of one core since the previous sample of this tree (None: first sample).
    cpu_percent: float | None
    processes: int


def _scan(proc: str = "/proc") -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, utime+stime ticks, resident pages)."""
    table: dict[int, tuple[int, int, int]] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"{proc}/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue  # it ended meanwhile
        # The command name (field 2) may hold spaces and parentheses: split after its last ")".
        fields = data[data.rfind(b")") + 2:].split()
        try:
            table[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[21]))
        except (IndexError, ValueError):
            continue
    return table


class ProcessTrees:
    def __init__(self, ttl: float = 1.0, proc: str = "/proc") -> None:
        self.ttl = ttl
        self.proc = proc
        self._at = -1e9
        self._table: dict[int, tuple[int, int, int]] = {}
        self._children: dict[int, list[int]] = {}
        #: root pid -> (monotonic time, CPU ticks) of its previous sample.
        self._last: dict[int, tuple[float, int]] = {}
        self._cache: dict[int, Usage] = {}

    def _refresh(self) -> float:
        now = time.monotonic()
        if now - self._at >= self.ttl:
            self._table = _scan(self.proc)
            children: dict[int, list[int]] = {}
            for pid, (ppid, _, _) in self._table.items():
                children.setdefault(ppid, []).append(pid)
            self._children = children
            self._at = now
            self._cache = {}
            self._last = {pid: v for pid, v in self._last.items() if pid in self._table}
        return now

    def usage(self, root: int | None) -> Usage | None:
        """The tree under ``root`` (None when it is gone)."""
        if not root:
            return None
        now = self._refresh()
        if root in self._cache:
            return self._cache[root]
        if root not in self._table:
            return None
        rss = ticks = count = 0
        stack = [root]
        while stack:
            pid = stack.pop()
            _, t, pages = self._table[pid]
            rss += pages
            ticks += t
            count += 1
            stack.extend(self._children.get(pid, ()))
        prev = self._last.get(root)
        cpu = None
        if prev is not None and now > prev[0]:
            cpu = round(max(0.0, (ticks - prev[1]) / TICKS / (now - prev[0]) * 100), 1)
        if prev is None or now - prev[0] >= self.ttl:
            self._last[root] = (now, ticks)
        found = Usage(rss * PAGE, cpu, count)
        self._cache[root] = found
        return found
