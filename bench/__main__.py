"""``python -m bench [--quick] [--only a,b] [--skip a,b] [--list]``: every benchmark in one go, one table.

A benchmark is a module ``bench/bench_<name>.py`` with ``run(quick: bool = False) -> list[Result]``
(the convention is in bench/_report.py and bench/README.md). Each runs in turn (the machine is shared:
running them side by side would measure each other); its own detail lines print as it goes, then one table
of every result: metric, the floor or peer measured in the same run, ratio, goal, met, runs and spread.
A benchmark that raises is a row saying so (exit status 1), and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import Result, machine, print_table  # noqa: E402


def discover() -> list[str]:
    """Every benchmark's name (``bench_rpc.py`` -> ``rpc``), in file order."""
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def _names(text: str | None) -> set[str]:
    return {n.strip().removeprefix("bench_").removesuffix(".py") for n in (text or "").split(",") if n.strip()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes: proves every benchmark runs, its numbers mean nothing")
    ap.add_argument("--only", help="comma-separated names (rpc,client_startup,...)")
    ap.add_argument("--skip", help="comma-separated names to leave out")
    ap.add_argument("--list", action="store_true", help="print the benchmarks' names and exit")
    args = ap.parse_args(argv)
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    only, skip = _names(args.only), _names(args.skip)
    unknown = (only | skip) - set(names)
    if unknown:
        ap.error(f"no such benchmark: {', '.join(sorted(unknown))} (have: {', '.join(names)})")
    chosen = [n for n in names if (not only or n in only) and n not in skip]
    print(f"machine: {machine()}")
    print(f"benchmarks: {', '.join(chosen)}{' (quick: sizes too small to mean anything)' if args.quick else ''}")
    results: list[Result] = []
    failed = 0
    started = time.monotonic()
    for name in chosen:
        print(f"\n== {name}", flush=True)
        t0 = time.monotonic()
        try:
            module = importlib.import_module(f"bench_{name}")
            got = module.run(quick=args.quick)
            if not isinstance(got, list) or not all(isinstance(r, Result) for r in got):
                raise TypeError(f"bench_{name}.run() must return a list of Result, got {type(got).__name__}")
            results += got
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed += 1
            traceback.print_exc()
            results.append(Result(f"{name}: FAILED", float("nan"), "", note=f"{type(exc).__name__}: {exc}"[:120]))
        print(f"({name}: {time.monotonic() - t0:.1f} s)", flush=True)
    print_table(results)
    print(f"total {time.monotonic() - started:.0f} s; {len(results)} results from {len(chosen)} benchmarks"
          + (f"; {failed} FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
