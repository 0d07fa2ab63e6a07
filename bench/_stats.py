"""Small statistics shared by the benchmarks (run as scripts, so `bench/` is on sys.path)."""

from __future__ import annotations


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``: the sorted value at index ``int(q * n)``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
