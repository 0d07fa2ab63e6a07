"""Benchmark the Codex rollout digest: ingest throughput and compression, with a coverage check.

Same method as ``bench_digest.py`` (Claude Code transcripts), on Codex CLI rollout files:

(a) Ingest: digest every rollout (parse + digest + window) vs the floor measured over the same bytes in the
    same run, ``orjson.loads`` of every line.  Goal: ratio >= 0.5.
(b) Compression: rollout bytes / rendered digest bytes (untrimmed, header included), ``tools`` and ``text``
    mode, reported (the recorded rollouts are short sessions whose bytes are mostly Codex's own instructions,
    so the ratio is a figure, not a goal).  Every command (first 40 characters), every patched file and
    every failed call must appear in the ``tools`` digest; the expected items come from an independent scan
    with orjson (``CommandExecution`` / ``FileChange`` items and the calls' arguments), misses are listed.

(a') The same per file: the two short recordings are mostly Codex's own instructions and ~1 KB lines, where
     fixed costs per line and per file weigh most; ``long-session`` is a session the size of a real one
     (test runs, listings, file contents, git log and diff).

Run: ``python bench/bench_digest_codex.py [DIR]`` (default: ``tests/data/codex``, the rollouts the real
Codex CLI wrote, see ``scripts/record_codex_rollouts.py``).  Exit status 1 if a goal is missed.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Result, goal_met, print_table, spread_of  # noqa: E402
from bench_digest import best_time, parse_only  # noqa: E402
from shared.digest import DigestWindow, digest_bytes, render_text  # noqa: E402

INGEST_GOAL = 0.5
_PATCH_FILE = re.compile(r"^\*\*\* (?:Add|Update|Delete) File: (.+)$", re.MULTILINE)


def corpus_dir(argv: list[str]) -> Path:
    if len(argv) > 1:
        return Path(argv[1])
    return Path(__file__).resolve().parents[1] / "tests" / "data" / "codex"


def load_corpus(root: Path) -> list[tuple[str, bytes]]:
    return [(str(p.relative_to(root)), p.read_bytes()) for p in sorted(root.rglob("*.jsonl"))]


def bench_ingest_per_file(corpus: list[tuple[str, bytes]], repeat: int) -> list[Result]:
    """The same measure file by file (floor and digest of one file, alternated, 3 medians each)."""
    print("\n== (a') ingest per file")
    print(f"{'file':40} {'bytes':>9} {'lines':>6} {'floor MB/s':>11} {'digest MB/s':>12} {'ratio':>6}")
    results = []
    for name, data in corpus:
        floor_times, digest_times = [], []
        for _ in range(3):
            floor_times.append(best_time(lambda data=data: parse_only(data), repeat))
            digest_times.append(best_time(lambda data=data: digest_bytes(data, "tools", 20), repeat))
        floor_mbps = len(data) / min(floor_times) / 1e6
        digest_mbps = len(data) / min(digest_times) / 1e6
        ratio = digest_mbps / floor_mbps
        lines = data.count(b"\n")
        print(f"{name[:40]:40} {len(data):9,} {lines:6} {floor_mbps:11.1f} {digest_mbps:12.1f} {ratio:6.2f}")
        goal = f">= {INGEST_GOAL}x"
        rates = [len(data) / t / 1e6 for t in digest_times]
        results.append(Result(f"codex digest ingest, {name}", digest_mbps, "MB/s", floor=floor_mbps,
                              floor_label="orjson parse-only", goal=goal, met=goal_met(ratio, goal),
                              runs=len(digest_times) * repeat,
                              spread=f"3 medians of {repeat}: {spread_of(rates, 'MB/s', 1, 0)}",
                              note=f"{len(data):,} bytes, {lines} lines"))
    return results


def bench_ingest(corpus: list[tuple[str, bytes]], repeat: int) -> Result:
    total = sum(len(data) for _, data in corpus)

    def run_floor() -> None:
        for _, data in corpus:
            parse_only(data)

    def run_digest() -> None:
        for _, data in corpus:
            digest_bytes(data, "tools", 20)

    run_floor()
    run_digest()
    floor_times, digest_times = [], []
    for _ in range(3):
        floor_times.append(best_time(run_floor, repeat))
        digest_times.append(best_time(run_digest, repeat))
    floor_mbps = total / min(floor_times) / 1e6
    digest_mbps = total / min(digest_times) / 1e6
    ratio = digest_mbps / floor_mbps
    print("== (a) ingest")
    print(f"corpus: {len(corpus)} rollouts, {total:,} bytes")
    print(f"parse-only orjson.loads per line: {floor_mbps:8.1f} MB/s")
    print(f"digest (parse+digest+window):     {digest_mbps:8.1f} MB/s")
    print(f"ratio digest/parse-only:          {ratio:8.2f}x  (goal >= {INGEST_GOAL}x)")
    goal = f">= {INGEST_GOAL}x"
    rates = [total / t / 1e6 for t in digest_times]
    return Result("codex digest ingest", digest_mbps, "MB/s", floor=floor_mbps, floor_label="orjson parse-only",
                  goal=goal, met=goal_met(ratio, goal), runs=len(digest_times) * repeat,
                  spread=f"3 medians of {repeat}: {spread_of(rates, 'MB/s', 1, 0)}",
                  note=f"{len(corpus)} rollouts, {total:,} bytes")


def _last_two(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").rstrip("/").split("/") if p]
    return "/".join(parts[-2:]) if parts else path


def expected_items(data: bytes) -> tuple[set[str], set[str], int]:
    """Independent scan: (patched files, command prefixes, failed calls)."""
    files: set[str] = set()
    commands: set[str] = set()
    failed = 0
    cwd = ""
    for line in data.splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        payload = record.get("payload") if isinstance(record, dict) else None
        if not isinstance(payload, dict):
            continue
        if record.get("type") == "session_meta":
            cwd = str(payload.get("cwd") or "").rstrip("/") + "/"
        elif record.get("type") == "event_msg" and payload.get("type") == "item_completed":
            item = payload.get("item") or {}
            if item.get("type") == "FileChange":  # paths are absolute; the patch names them from the cwd
                files.update(_last_two(p.removeprefix(cwd)) for p in item.get("changes") or {})
            elif item.get("type") == "CommandExecution" and item.get("exit_code") not in (0, None):
                failed += 1
        elif record.get("type") == "response_item" and payload.get("type") == "function_call":
            args = orjson.loads(payload.get("arguments") or "{}")
            cmd = args.get("cmd") if isinstance(args, dict) else None
            if isinstance(cmd, str) and not cmd.lstrip().startswith("apply_patch"):
                commands.add(" ".join(cmd.split())[:40])
            elif isinstance(cmd, str):
                files.update(_last_two(p.strip()) for p in _PATCH_FILE.findall(cmd))
    return files, commands, failed


def coverage_misses(data: bytes, window: DigestWindow) -> list[str]:
    files, commands, failed = expected_items(data)
    blob = "\n".join(entry.summary for entry in window.entries)
    misses = [f"file {f!r}" for f in sorted(files) if f not in blob]
    misses += [f"command {c!r}" for c in sorted(commands) if c not in blob]
    shown = sum(e.count for e in window.entries if e.is_error and "✗ exit" in e.summary)
    if shown < failed:
        misses.append(f"{failed - shown} failed command(s)")
    return misses


def bench_compression(corpus: list[tuple[str, bytes]]) -> tuple[float, float, int]:
    print("\n== (b) compression (rollout bytes / rendered digest bytes, untrimmed, header included)")
    print(f"{'file':40} {'bytes':>9} {'tools':>7} {'ratio':>7} {'text':>6} {'ratio':>7} misses")
    total = tools_total = text_total = 0
    all_misses: list[str] = []
    for name, data in corpus:
        tools = digest_bytes(data, "tools", None)
        text = digest_bytes(data, "text", None)
        tools_bytes = len(render_text(tools, tz=UTC).encode())
        text_bytes = len(render_text(text, tz=UTC).encode())
        misses = coverage_misses(data, tools)
        all_misses += [f"{name}: {m}" for m in misses]
        total += len(data)
        tools_total += tools_bytes
        text_total += text_bytes
        print(f"{name[:40]:40} {len(data):9,} {tools_bytes:7,} {len(data) / tools_bytes:6.0f}x"
              f" {text_bytes:6,} {len(data) / text_bytes:6.0f}x {len(misses)}")
    tools_ratio, text_ratio = total / tools_total, total / text_total
    print(f"{'TOTAL':40} {total:9,} {tools_total:7,} {tools_ratio:6.1f}x {text_total:6,} {text_ratio:6.1f}x"
          f" {len(all_misses)}")
    print(f"coverage misses (commands, patched files, failed commands): {len(all_misses)}")
    for miss in all_misses:
        print("  MISS", miss)
    return tools_ratio, text_ratio, len(all_misses)


def run(quick: bool = False, root: Path | None = None) -> list[Result]:
    root = root or corpus_dir([])
    corpus = load_corpus(root)
    if not corpus:
        raise SystemExit(f"no *.jsonl under {root}")
    print(f"rollouts: {root}")
    ingest = bench_ingest(corpus[:1] if quick else corpus, 2 if quick else 40)
    per_file = bench_ingest_per_file(corpus[:1] if quick else corpus, 2 if quick else 40)
    tools_ratio, text_ratio, misses = bench_compression(corpus)
    return [ingest, *per_file,
            Result("codex digest compression, tools mode", tools_ratio, "x", goal="0 coverage misses",
                   met=misses == 0, note=f"{misses} coverage misses"),
            Result("codex digest compression, text mode", text_ratio, "x")]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    results = run(quick, corpus_dir([a for a in argv if a != "--quick"]))
    print_table(results)
    return 0 if all(r.met is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
