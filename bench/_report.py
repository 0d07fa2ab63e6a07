"""One result line of a benchmark, and the table `python -m bench` prints.

The convention every ``bench/bench_*.py`` follows (so ``python -m bench`` finds it):

* the module exposes ``run(quick: bool = False) -> list[Result]``: it measures, prints whatever detail it
  likes as it goes, and returns one :class:`Result` per figure that has a goal or a floor;
* ``quick=True`` is a smoke test of the harness (tiny sizes, a second or two): the numbers mean nothing,
  the code paths are the real ones;
* its ``if __name__ == "__main__"`` block parses its own options and ends with
  ``print_table(results)``, so ``python bench/bench_x.py`` still works alone;
* it imports its helpers as top-level modules (``from _daemon import running_daemon``) after putting
  ``bench/`` on ``sys.path``, so it runs both as a script and imported by ``python -m bench``;
* a floor or peer is measured in the same run (never a constant), and ``runs``/``spread`` say how many
  samples the figure comes from and how far they spread (use :func:`spread_of`).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence


@dataclasses.dataclass
class Result:
    #: What is measured, e.g. "client start-up (maestroctl --json task list)".
    metric: str
    #: The figure, in ``unit``.
    value: float
    unit: str
    #: The floor or peer it is compared with, measured in the same run (None: an absolute figure).
    floor: float | None = None
    #: What the floor is, e.g. "python -I -c pass".
    floor_label: str = ""
    #: ``value / floor`` unless the bench says otherwise (e.g. a rate against a rate).
    ratio: float | None = None
    #: The goal as text ("<= 1.3x", ">= 0.8x", "<= 10 ms") and whether this run met it (None: no goal).
    goal: str = ""
    met: bool | None = None
    #: How many samples the figure comes from, and their spread as text ("p10-p90 13.1-15.4 ms").
    runs: int = 1
    spread: str = ""
    #: Anything a reader needs to trust the figure (sizes, what was skipped and why).
    note: str = ""

    def __post_init__(self) -> None:
        if self.ratio is None and self.floor:
            self.ratio = self.value / self.floor


def goal_met(value: float | None, goal: str) -> bool | None:
    """Whether ``value`` meets ``goal`` ("<= 1.3x", ">= 0.8", "<= 10 ms"): the number after the operator."""
    if value is None or not goal:
        return None
    op, _, rest = goal.partition(" ")
    number = float(rest.split()[0].rstrip("x%"))
    if op == "<=":
        return value <= number
    if op == ">=":
        return value >= number
    raise ValueError(f"goal must start with <= or >=: {goal!r}")


def spread_of(samples: Sequence[float], unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    """``p10-p90 a-b unit`` of ``samples`` (times ``scale``), or ``min-max`` below 10 samples."""
    if not samples:
        return ""
    ordered = sorted(samples)
    if len(ordered) < 10:
        lo, hi, name = ordered[0], ordered[-1], "min-max"
    else:
        lo, hi, name = ordered[int(0.1 * len(ordered))], ordered[int(0.9 * len(ordered)) - 1], "p10-p90"
    return f"{name} {lo * scale:.{digits}f}-{hi * scale:.{digits}f}{(' ' + unit) if unit else ''}"


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} {unit}".rstrip()


def machine() -> str:
    """One line: the CPU, its cores, the load, the Python, the date (the table means nothing without it)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, load {load}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")


def table(results: Sequence[Result]) -> str:
    """The results as a Markdown table (it reads in a terminal and pastes into the README)."""
    header = ["metric", "figure", "floor / peer (same run)", "ratio", "goal", "met", "runs, spread"]
    rows = []
    for r in results:
        floor = f"{_fmt(r.floor, r.unit)} {r.floor_label}".strip() if r.floor is not None else r.floor_label
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        runs = f"{r.runs}" + (f", {r.spread}" if r.spread else "")
        metric = r.metric + (f" ({r.note})" if r.note else "")
        rows.append([metric, _fmt(r.value, r.unit), floor or "-",
                     f"{r.ratio:.2f}x" if r.ratio is not None else "-", r.goal or "-", met, runs])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    return "\n".join(lines)


def print_table(results: Sequence[Result]) -> None:
    print()
    print(table(results))
    print(f"\nmachine: {machine()}")
    sys.stdout.flush()
