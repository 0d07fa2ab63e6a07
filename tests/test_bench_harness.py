"""`python -m bench` (bench/__main__.py): every bench/bench_*.py follows the convention (a top-level
``run(quick=...)``), and the harness runs benches in --quick mode and prints one table. The numbers of a
quick run mean nothing; this proves the harness and the benches' code paths work."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO

BENCH = REPO / "bench"


def test_every_bench_exposes_run_with_quick() -> None:
    benches = sorted(BENCH.glob("bench_*.py"))
    assert len(benches) >= 8
    for path in benches:
        tree = ast.parse(path.read_text())
        runs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"]
        assert runs, f"{path.name}: no top-level run(quick: bool = False) -> list[Result] (see bench/README.md)"
        args = runs[0].args
        assert "quick" in [a.arg for a in args.args + args.kwonlyargs], f"{path.name}: run() takes no quick"


def _bench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=240)


def test_quick_run_prints_one_table() -> None:
    proc = _bench("--quick", "--only", "client_startup,lists,rpc")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("machine: ") and "quick" in out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert [cell.strip() for cell in table[0].split("|")[1:-1]] == [
        "metric", "figure", "floor / peer (same run)", "ratio", "goal", "met", "runs, spread"]
    rows = "\n".join(table[1:])
    for metric in ("client start-up: installed maestroctl", "task.list per call, page of 1000 vs unpaged",
                   "RPC system.ping"):
        assert metric in rows, rows
    assert "FAILED" not in out
    assert "results from 3 benchmarks" in out


def test_list_names_and_refuses_unknown_ones() -> None:
    proc = _bench("--list")
    assert proc.returncode == 0 and {"client_startup", "lists", "rpc", "screen"} <= set(proc.stdout.split())
    proc = _bench("--only", "nonesuch")
    assert proc.returncode == 2 and "no such benchmark: nonesuch" in proc.stderr
