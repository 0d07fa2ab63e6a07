"""Context hand-off's pure parts (maestrod/scheduler/handoff.py): a transcript's last-turn context use, the
model window table, the successor's seed within its budget. The real Claude Code round trip is in
tests/test_e2e_task_run.py."""

from __future__ import annotations

import json
from pathlib import Path

from maestrod.scheduler.config import HandoffConfig
from maestrod.scheduler.handoff import context_use, last_usage, seed_prompt, window_for


def record(model: str, usage: dict[str, int], *, sidechain: bool = False) -> bytes:
    return json.dumps({"type": "assistant", "isSidechain": sidechain,
                       "message": {"role": "assistant", "model": model, "usage": usage}}).encode()


def test_last_main_turn_counts_input_and_both_caches(tmp_path: Path) -> None:
    lines = [record("claude-sonnet-4-5", {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 7}),
             record("claude-sonnet-4-5", {"input_tokens": 3, "cache_creation_input_tokens": 1000,
                                          "cache_read_input_tokens": 150_000, "output_tokens": 99}),
             record("claude-haiku-4-5", {"input_tokens": 1}, sidechain=True),  # a subagent's turn
             record("<synthetic>", {"input_tokens": 0}),  # an error message Claude Code wrote itself
             b'{"type":"user","message":{"role":"user","content":"hi"}}', b'{"type":"assist']  # half-written
    assert last_usage(b"\n".join(lines)) == ("claude-sonnet-4-5", 151_003)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines))
    use = context_use(str(path), HandoffConfig())
    assert use is not None and use.window == 200_000 and round(use.share, 3) == 0.755
    assert context_use(str(tmp_path / "missing.jsonl"), HandoffConfig()) is None
    assert last_usage(b'{"type":"user"}') is None


def test_window_table() -> None:
    cfg = HandoffConfig(default_window=150_000, windows={"claude-sonnet-4-5": 500_000, "gpt-5": 400_000})
    assert window_for("claude-opus-4-1-20250805", cfg) == 200_000
    assert window_for("claude-sonnet-4-5-20250929", cfg) == 500_000  # the longer configured prefix wins
    assert window_for("claude-sonnet-4[1m]", HandoffConfig()) == 1_000_000
    assert window_for("gpt-5-codex", cfg) == 400_000
    assert window_for("some-new-model", cfg) == 150_000


def test_seed_keeps_the_note_and_cuts_the_digest_to_the_budget() -> None:
    task = {"id": "t-1", "title": "port the parser", "description": "all of it"}
    digest = "\n".join(f"12:00:{i:02d} Bash: step {i}" for i in range(400))
    seed = seed_prompt(task, "s-old", "NOTE: parser half done; tests in tests/p.py", digest, 800)
    assert "You take over task t-1: port the parser from session s-old" in seed
    assert "NOTE: parser half done" in seed and "all of it" in seed
    assert "step 399" in seed and "step 0\n" not in seed  # the latest steps kept
    assert len(seed) // 4 <= 800 + 50
    assert "(the predecessor wrote no note)" in seed_prompt(task, "s-old", None, "", 800)
