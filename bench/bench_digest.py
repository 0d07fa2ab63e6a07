"""Benchmark the transcript digest: ingest throughput and compression, with a coverage check.

(a) Ingest: digest every sample transcript (parse + digest + window) and compare its throughput with a
    floor measured over the same bytes in the same run: ``orjson.loads`` of every line (parse only, no
    logic).  Goal: ratio >= 0.5.
(b) Compression: transcript bytes / rendered digest bytes (``render_text`` of the untrimmed window,
    header included) per sample and summed over the corpus, in ``tools`` and ``text`` mode.
    Goals: >= 100x (tools) and >= 300x (text).  While compressing, every edited/written path (last two
    segments), every Bash command (first 40 characters, whitespace collapsed) and every failed tool call
    of the transcript must appear in the untrimmed ``tools`` digest; the expected items are collected by an
    independent scan with orjson (not by the parser under test) and misses are listed.

Run: ``python bench/bench_digest.py [DIR]`` (default: ``$MAESTRO_TRANSCRIPTS_DIR`` or
``tests/data/transcripts``).  Prints plain figures; exit status 1 if a goal is missed.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Result, goal_met, print_table, spread_of  # noqa: E402
from shared.digest import DigestWindow, agent_label_for_path, digest_bytes, render_text  # noqa: E402

INGEST_GOAL = 0.5
TOOLS_GOAL = 100.0
TEXT_GOAL = 300.0
FILE_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")


def corpus_dir(argv: list[str]) -> Path:
    if len(argv) > 1:
        return Path(argv[1])
    env = os.environ.get("MAESTRO_TRANSCRIPTS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "tests" / "data" / "transcripts"


def load_corpus(root: Path) -> list[tuple[str, bytes]]:
    return [(str(p.relative_to(root)), p.read_bytes()) for p in sorted(root.rglob("*.jsonl"))]


def parse_only(data: bytes) -> int:
    """The floor: orjson.loads on every non-empty line, nothing else."""
    count = 0
    for line in data.split(b"\n"):
        if line:
            with contextlib.suppress(orjson.JSONDecodeError):
                orjson.loads(line)
            count += 1
    return count


def best_time(function: Callable[[], Any], repeat: int) -> float:
    """Median of ``repeat`` timings (robust against a noisy neighbour)."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def bench_ingest(corpus: list[tuple[str, bytes]], repeat: int = 15) -> Result:
    total = sum(len(data) for _, data in corpus)

    def run_floor() -> None:
        for _, data in corpus:
            parse_only(data)

    def run_digest() -> None:
        for name, data in corpus:
            digest_bytes(data, "tools", 20, agent=agent_label_for_path(name))

    run_floor()
    run_digest()  # warm up imports and caches
    floor_times, digest_times = [], []
    for _ in range(3):  # interleave so both see the same machine conditions
        floor_times.append(best_time(run_floor, repeat))
        digest_times.append(best_time(run_digest, repeat))
    floor = min(floor_times)
    digest = min(digest_times)
    floor_mbps = total / floor / 1e6
    digest_mbps = total / digest / 1e6
    ratio = digest_mbps / floor_mbps
    print("== (a) ingest")
    print(f"corpus: {len(corpus)} files, {total:,} bytes")
    print(f"parse-only orjson.loads per line: {floor_mbps:8.1f} MB/s")
    print(f"digest (parse+digest+window):     {digest_mbps:8.1f} MB/s")
    verdict = "OK" if ratio >= INGEST_GOAL else "MISSED"
    print(f"ratio digest/parse-only:          {ratio:8.2f}x  (goal >= {INGEST_GOAL}x) {verdict}")
    goal = f">= {INGEST_GOAL}x"
    rates = [total / t / 1e6 for t in digest_times]
    return Result("digest ingest", digest_mbps, "MB/s", floor=floor_mbps, floor_label="orjson parse-only",
                  goal=goal, met=goal_met(ratio, goal), runs=len(digest_times) * repeat,
                  spread=f"3 medians of {repeat}: {spread_of(rates, 'MB/s', 1, 0)}",
                  note=f"{len(corpus)} transcripts, {total:,} bytes")


def _last_two(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").rstrip("/").split("/") if p]
    return "/".join(parts[-2:]) if parts else path


def _norm(text: str) -> str:
    return " ".join(text.split())


def expected_items(data: bytes) -> tuple[set[str], set[str], list[tuple[str, str]]]:
    """Independent scan: (edited/written paths, Bash command prefixes, failed calls as (tool, key))."""
    paths: set[str] = set()
    commands: set[str] = set()
    calls: dict[str, tuple[str, str]] = {}
    failed: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        uuid = record.get("uuid")
        if record.get("type") in ("user", "assistant") and uuid:
            if uuid in seen:
                continue
            seen.add(uuid)
        message = record.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            continue
        for block in message["content"]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                name = block.get("name", "")
                tool_input = block.get("input") or {}
                key = name
                if name in FILE_TOOLS:
                    path = tool_input.get("file_path") or tool_input.get("notebook_path") or ""
                    key = _last_two(path)
                    paths.add(key)
                elif name == "Bash":
                    key = _norm(str(tool_input.get("command", "")))[:40]
                    commands.add(key)
                elif name.startswith("mcp__"):
                    key = "/".join(name.split("__")[1:])  # how the digest labels MCP tools
                calls[block.get("id", "")] = (name, key)
            elif block.get("type") == "tool_result" and block.get("is_error"):
                failed.append(calls.get(block.get("tool_use_id", ""), ("?", "")))
    return paths, commands, failed


def coverage_misses(data: bytes, window: DigestWindow) -> list[str]:
    paths, commands, failed = expected_items(data)
    summaries = [entry.summary for entry in window.entries]
    blob = "\n".join(summaries)
    misses = [f"path {p!r}" for p in sorted(paths) if p not in blob]
    misses += [f"bash {c!r}" for c in sorted(commands) if c not in blob]
    # each failed call must be matched by an error entry naming it (a collapsed entry xN matches N calls)
    error_summaries = [entry.summary for entry in window.entries if entry.is_error]
    remaining = [entry.count for entry in window.entries if entry.is_error]
    for name, key in failed:
        for index, summary in enumerate(error_summaries):
            if remaining[index] > 0 and key in summary:
                remaining[index] -= 1
                break
        else:
            misses.append(f"failed {name} {key!r}")
    return misses


def bench_compression(corpus: list[tuple[str, bytes]]) -> tuple[float, float, int]:
    print("\n== (b) compression (transcript bytes / rendered digest bytes, untrimmed, header included)")
    print(f"{'file':58} {'bytes':>9} {'tools':>7} {'ratio':>7} {'text':>6} {'ratio':>7} misses")
    total = tools_total = text_total = 0
    all_misses: list[str] = []
    for name, data in corpus:
        agent = agent_label_for_path(name)
        tools = digest_bytes(data, "tools", None, agent=agent)
        text = digest_bytes(data, "text", None, agent=agent)
        tools_bytes = len(render_text(tools, tz=UTC).encode())
        text_bytes = len(render_text(text, tz=UTC).encode())
        misses = coverage_misses(data, tools)
        all_misses += [f"{name}: {m}" for m in misses]
        total += len(data)
        tools_total += tools_bytes
        text_total += text_bytes
        print(
            f"{name[:58]:58} {len(data):9,} {tools_bytes:7,} {len(data) / tools_bytes:6.0f}x"
            f" {text_bytes:6,} {len(data) / text_bytes:6.0f}x {len(misses)}"
        )
    tools_ratio = total / tools_total
    text_ratio = total / text_total
    print(
        f"{'TOTAL':58} {total:9,} {tools_total:7,} {tools_ratio:6.1f}x {text_total:6,} {text_ratio:6.1f}x"
        f" {len(all_misses)}"
    )
    for mode, ratio_value, goal in (("tools", tools_ratio, TOOLS_GOAL), ("text", text_ratio, TEXT_GOAL)):
        verdict = "OK" if ratio_value >= goal else "MISSED"
        print(f"{mode + ' mode:':11} {ratio_value:.1f}x (goal >= {goal:.0f}x) {verdict}")
    print(f"coverage misses (edited paths, Bash commands, failed calls): {len(all_misses)}")
    for miss in all_misses:
        print("  MISS", miss)
    return tools_ratio, text_ratio, len(all_misses)


def run(quick: bool = False, root: Path | None = None) -> list[Result]:
    root = root or corpus_dir([])
    corpus = load_corpus(root)
    if not corpus:
        raise SystemExit(f"no *.jsonl under {root}")
    if quick:
        corpus = corpus[:2]
    print(f"transcripts: {root}")
    ingest = bench_ingest(corpus, 2 if quick else 15)
    tools_ratio, text_ratio, misses = bench_compression(corpus)
    return [ingest,
            Result("digest compression, tools mode", tools_ratio, "x", goal=f">= {TOOLS_GOAL:.0f}x",
                   met=goal_met(tools_ratio, f">= {TOOLS_GOAL}"), note=f"{misses} coverage misses"),
            Result("digest compression, text mode", text_ratio, "x", goal=f">= {TEXT_GOAL:.0f}x",
                   met=goal_met(text_ratio, f">= {TEXT_GOAL}"))]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    argv = [a for a in argv if a != "--quick"]
    results = run(quick, corpus_dir(argv))
    print_table(results)
    return 0 if all(r.met is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
