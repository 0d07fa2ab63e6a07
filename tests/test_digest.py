"""Tests for the digest compactor (``shared.digest``): entry formats, windows, escalation, goldens.

Golden digests of the real sample transcripts live in ``tests/data/golden/<sample>.<mode>.txt`` (rendered
in UTC).  After a deliberate format change regenerate them with ``MAESTRO_UPDATE_GOLDEN=1`` and review
the diff before committing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.digest import (
    MAX_SUMMARY,
    DigestConfig,
    DigestEntry,
    Escalator,
    SessionDigest,
    agent_label_for_path,
    digest_bytes,
    first_sentence,
    render_text,
    short_path,
    summarize_tool_call,
)
from shared.transcript import TurnState
from shared.transcript.events import parse_timestamp

HERE = Path(__file__).parent
TRANSCRIPTS = Path(os.environ.get("MAESTRO_TRANSCRIPTS_DIR", HERE / "data" / "transcripts"))
GOLDEN = HERE / "data" / "golden"
SAMPLES = sorted(TRANSCRIPTS.rglob("*.jsonl"))
SAMPLE_IDS = [str(p.relative_to(TRANSCRIPTS)) for p in SAMPLES]
UPDATE_GOLDEN = os.environ.get("MAESTRO_UPDATE_GOLDEN") == "1"

# Synthetic records -----------------------------------------------------------------------------------------

_seq = iter(range(1, 1_000_000))


def _record(record_type: str, ts: str, **fields: Any) -> bytes:
    record = {"type": record_type, "uuid": f"u-{next(_seq)}", "isSidechain": False, "timestamp": ts, **fields}
    return orjson.dumps(record) + b"\n"


def ts(second: int) -> str:
    return f"2026-01-01T14:{second // 60:02d}:{second % 60:02d}.000Z"


def prompt(text: str, second: int = 0) -> bytes:
    return _record("user", ts(second), message={"role": "user", "content": text})


def assistant(blocks: list[dict[str, Any]], second: int = 1, msg: str | None = None) -> bytes:
    message = {
        "id": msg or f"m-{next(_seq)}",
        "model": "claude-sonnet-4-5",
        "content": blocks,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    return _record("assistant", ts(second), message=message, requestId=f"r-{message['id']}")


def call(tool_id: str, name: str, second: int = 1, **tool_input: Any) -> bytes:
    return assistant([{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}], second)


def result(tool_id: str, content: str = "ok", is_error: bool | None = None, second: int = 2) -> bytes:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
    if is_error is not None:
        block["is_error"] = is_error
    return _record("user", ts(second), message={"role": "user", "content": [block]})


def say(text: str, second: int = 3) -> bytes:
    return assistant([{"type": "text", "text": text}], second)


def think(second: int = 1) -> bytes:
    return assistant([{"type": "thinking", "thinking": "secret reasoning", "signature": "s"}], second)


def api_gave_up(text: str, second: int = 4) -> bytes:
    """The synthetic ``API Error`` message Claude Code writes when it gives up."""
    message = {"id": "x", "model": "<synthetic>", "content": [{"type": "text", "text": text}]}
    return _record("assistant", ts(second), isApiErrorMessage=True, message=message)


def summaries(data: bytes, mode: str = "tools") -> list[str]:
    window = digest_bytes(data, mode, None)
    return [e.summary + (f" ×{e.count}" if e.count > 1 else "") for e in window.entries]


# Entry formats ---------------------------------------------------------------------------------------------


def test_tool_summaries_match_the_issue_examples() -> None:
    assert summarize_tool_call("Read", {"file_path": "/home/u/proj/src/api.py"}) == "Read: src/api.py"
    edit = {
        "file_path": "/home/u/proj/src/api.py",
        "old_string": "a\nb",
        "new_string": "1\n2\n3\n4\n5\n6\n7\n8",
    }
    assert summarize_tool_call("Edit", edit) == "Edit: src/api.py (+8 -2)"
    assert (
        summarize_tool_call("Write", {"file_path": "/p/app.py", "content": "x\n" * 12})
        == "Write: p/app.py (12 lines)"
    )
    assert (
        summarize_tool_call("Write", {"file_path": "app.py", "content": "x\n" * 12})
        == "Write: app.py (12 lines)"
    )
    assert summarize_tool_call("Grep", {"pattern": "def add", "path": "src/"}) == 'Grep: "def add" src/'
    assert summarize_tool_call(
        "Task", {"subagent_type": "Explore", "description": "find handlers", "prompt": "…"}
    ) == ("Task(Explore): find handlers")
    assert summarize_tool_call("Agent", {"subagent_type": "Plan", "description": "d"}) == "Agent(Plan): d"
    todos = [{"content": str(i), "status": "completed" if i < 3 else "pending"} for i in range(7)]
    assert summarize_tool_call("TodoWrite", {"todos": todos}) == "TodoWrite: 3/7 done"
    assert summarize_tool_call("Bash", {"command": "npm test"}) == "Bash: npm test"
    assert summarize_tool_call("Glob", {"pattern": "**/*.py"}) == "Glob: **/*.py"
    assert summarize_tool_call("WebFetch", {"url": "https://www.example.com/a"}) == "WebFetch: example.com/a"
    assert summarize_tool_call("WebSearch", {"query": "q"}) == 'WebSearch: "q"'
    assert summarize_tool_call("mcp__linear__get_issue", {"id": "ENT-1"}) == "linear/get_issue id=ENT-1"
    assert (
        summarize_tool_call(
            "MultiEdit",
            {
                "file_path": "/a/b/c.md",
                "edits": [{"old_string": "x", "new_string": "y\nz"}, {"old_string": "p", "new_string": "q"}],
            },
        )
        == "MultiEdit: b/c.md (+3 -2)"
    )
    assert (
        summarize_tool_call("AskUserQuestion", {"questions": [{"question": "Which DB?"}]})
        == "AskUserQuestion: Which DB?"
    )
    assert summarize_tool_call("SomeNewTool", {"a": 1, "b": "two", "c": 3}) == "SomeNewTool: a=1 b=two"


def test_short_path_keeps_last_two_segments() -> None:
    assert short_path("/Users/me/work/cli/cmd/entire/strategy/hooks.go") == "strategy/hooks.go"
    assert short_path("src/api.py") == "src/api.py"
    assert short_path("README.md") == "README.md"
    assert short_path("/home/u/proj/src/") == "proj/src/"
    assert short_path("C:\\Users\\me\\proj\\main.rs") == "proj/main.rs"
    assert short_path(None) == "?"


def test_bash_failure_entry_has_exit_code_and_first_error_line() -> None:
    data = (
        prompt("test it")
        + call("t1", "Bash", command="npm test")
        + result("t1", "Exit code 1\n> jest\nFAIL src/api.test.ts\n  ● adds\n", True)
    )
    assert summaries(data)[1:] == ["Bash: npm test ✗ exit 1 — FAIL src/api.test.ts"]


def test_prompt_text_first_sentence_and_thinking_marker() -> None:
    data = (
        prompt("Please  fix\nthe build")
        + think(1)
        + say("## Plan\n\nI'll fix the build first. Then the tests.", 2)
        + say("Perfect! All tests pass now. Nothing else to do.", 3)
        + think(4)
    )
    window = digest_bytes(data, "tools", None)
    assert [e.summary for e in window.entries] == [
        "[PROMPT] Please fix the build",
        "I'll fix the build first.",
        "Perfect! All tests pass now.",
    ]
    assert all("secret" not in e.summary for e in window.entries), "thinking content never appears"
    assert window.thinking_since is None and window.state == "idle", "a finished turn shows no marker"
    live = SessionDigest()
    live.feed(data)
    assert live.window().thinking_since == ts(4), "while the turn runs, the agent is shown thinking"
    assert render_text(live.window(), tz=UTC).rstrip().endswith("14:00:04 … [THINKING]")


def test_first_sentence_edge_cases() -> None:
    assert first_sentence("```\ncode\n```\nDone.") == "code"
    assert (
        first_sentence("<analysis>\nLet me look at this carefully. More.") == "Let me look at this carefully."
    )
    assert first_sentence("**Bold** claim: `x` is fine.") == "Bold claim: x is fine."
    assert first_sentence("e" * 500).endswith("…") and len(first_sentence("e" * 500)) <= 96
    assert (
        first_sentence("CLAUDE.mdファイルを更新しました。主な更新内容") == "CLAUDE.mdファイルを更新しました。"
    )
    assert first_sentence("   \n\n") == ""


def test_consecutive_duplicates_collapse() -> None:
    data = prompt("go") + b"".join(
        call(f"t{i}", "Bash", second=i, command="false") + result(f"t{i}", "Exit code 1", True, second=i)
        for i in range(3)
    )
    window = digest_bytes(data, "tools", None)
    assert [(e.summary, e.count) for e in window.entries] == [("[PROMPT] go", 1), ("Bash: false ✗ exit 1", 3)]
    assert window.entries[-1].timestamp == ts(2), "a collapsed entry carries its latest time"
    assert "Bash: false ✗ exit 1 ×3" in render_text(window, tz=UTC)


def test_running_tool_is_shown_until_its_result() -> None:
    digest = SessionDigest()
    digest.feed(prompt("go") + call("t1", "Bash", second=5, command="sleep 60"))
    window = digest.window()
    assert window.running == ("Bash: sleep 60",) and [e.summary for e in window.entries] == ["[PROMPT] go"]
    assert "… Bash: sleep 60" in render_text(window, tz=UTC)
    update = digest.feed(result("t1", "done", second=65))
    assert [e.summary for e in update.appended["tools"]] == ["Bash: sleep 60"]
    assert digest.window().running == ()


def test_text_mode_keeps_only_words_and_prompts() -> None:
    data = prompt("go") + say("Reading the file.") + call("t1", "Read", file_path="/a/b.py") + result("t1")
    assert summaries(data, "text") == ["[PROMPT] go", "Reading the file."]
    assert summaries(data, "tools") == ["[PROMPT] go", "Reading the file.", "Read: a/b.py"]


def test_interrupt_api_error_and_compaction_entries() -> None:
    data = (
        prompt("go")
        + _record(
            "system",
            ts(2),
            subtype="api_error",
            level="error",
            error={"message": "Overloaded"},
            retryAttempt=1,
        )
        + _record(
            "user",
            ts(3),
            message={"role": "user", "content": [{"type": "text", "text": "[Request interrupted by user]"}]},
        )
        + api_gave_up("API Error: 500 Internal server error", 4)
        + _record(
            "system",
            ts(5),
            subtype="compact_boundary",
            compactMetadata={"trigger": "auto", "preTokens": 167_000},
        )
    )
    window = digest_bytes(data, "tools", None)
    assert [(e.kind, e.summary, e.is_error) for e in window.entries] == [
        ("prompt", "[PROMPT] go", False),
        ("api_retry", "[API RETRY] Overloaded", False),
        ("interrupt", "[INTERRUPTED]", False),
        ("api_error", "[API ERROR] API Error: 500 Internal server error", True),
        ("compaction", "[COMPACTED] auto 167k tokens", False),
    ]


def test_subagent_steps_are_marked_and_narration_dropped() -> None:
    data = (TRANSCRIPTS / "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl").read_bytes()
    window = digest_bytes(data, "tools", None)
    sub = [e for e in window.entries if e.agent == "sidechain"]
    assert sub and all(e.kind == "tool" for e in sub)
    text = render_text(window, tz=UTC)
    assert "↳ Write: components/TodoItem.tsx (44 lines)" in text
    assert "Task(general-purpose): Setup Next.js project (41.5k tok, 2m)" in text
    only_main = digest_bytes(data, "tools", None, config=DigestConfig(include_subagents=False))
    assert all(e.agent is None for e in only_main.entries)


@pytest.mark.parametrize("path", SAMPLES, ids=SAMPLE_IDS)
def test_every_entry_is_one_short_line(path: Path) -> None:
    data = path.read_bytes()
    for mode in ("tools", "text"):
        window = digest_bytes(data, mode, None, agent=agent_label_for_path(str(path)))
        assert window.total_entries == len(window.entries) > 0
        for entry in window.entries:
            assert 0 < len(entry.summary) <= MAX_SUMMARY
            assert "\n" not in entry.summary
            if mode == "text":
                assert entry.kind in ("prompt", "text")
        orjson.dumps(window.to_dict())


# Windows ---------------------------------------------------------------------------------------------------


def test_window_is_count_based_with_totals() -> None:
    data = prompt("go") + b"".join(
        call(f"t{i}", "Read", second=i, file_path=f"/p/f{i}.py") + result(f"t{i}", second=i)
        for i in range(30)
    )
    window = digest_bytes(data, "tools", 20)
    assert len(window.entries) == 20 and window.total_entries == 31
    assert window.entries[-1].summary == "Read: p/f29.py" and window.entries[-1].seq == 30
    as_dict = window.to_dict()
    assert as_dict["total_entries"] == 31 and len(as_dict["entries"]) == 20
    assert as_dict["usage"]["input_tokens"] == 30
    assert as_dict["state"] == "working", "the model has yet to answer the last tool result"
    assert digest_bytes(data, "tools", 0).entries == ()
    with pytest.raises(ValueError):
        digest_bytes(data, "verbose")


def test_agent_label_for_path() -> None:
    assert agent_label_for_path("/r/projects/-x/8463/subagents/agent-a7be2f0.jsonl") == "subagent:a7be2f0"
    assert agent_label_for_path("/r/projects/-x/agent-acompact-f46190.jsonl") == "subagent:acompact-f46190"
    assert agent_label_for_path("/r/projects/-x/8463c716-aaaa.jsonl") is None


def test_update_reports_new_and_grown_entries() -> None:
    digest = SessionDigest()
    first = digest.feed(
        prompt("go") + call("t1", "Bash", command="false") + result("t1", "Exit code 1", True)
    )
    assert [e.summary for e in first.appended["tools"]] == ["[PROMPT] go", "Bash: false ✗ exit 1"]
    assert first.state_changed and first.changed
    second = digest.feed(call("t2", "Bash", command="false") + result("t2", "Exit code 1", True))
    assert second.appended["tools"] == [] and [e.count for e in second.updated["tools"]] == [2]
    assert digest.feed(b"").changed is False


# Escalation ------------------------------------------------------------------------------------------------


def failing(tool_id: str, second: int) -> bytes:
    return call(tool_id, "Bash", second=second, command="make") + result(
        tool_id, "Exit code 2\nmake: *** [all] Error 2", True, second=second
    )


def test_three_consecutive_failures_need_attention_until_a_success() -> None:
    digest = SessionDigest()
    digest.feed(prompt("build"))
    assert digest.feed(failing("a", 1)).attention is None
    assert digest.feed(failing("b", 2)).attention is None
    update = digest.feed(failing("c", 3))
    assert update.attention is not None and update.attention.needs_attention
    assert (
        update.attention.reason
        == "3 consecutive failed tool calls (last: Bash: make ✗ exit 2 — make: *** [all] Error 2)"
    )
    window = digest.window()
    assert window.needs_attention and window.attention_reason == update.attention.reason
    cleared = digest.feed(call("d", "Read", second=4, file_path="/x") + result("d", second=4))
    assert cleared.attention is not None and not cleared.attention.needs_attention


def test_prompt_clears_attention_and_rejections_do_not_count() -> None:
    digest = SessionDigest()
    digest.feed(prompt("go") + failing("a", 1) + failing("b", 2))
    rejected = "The user doesn't want to proceed with this tool use. The tool use was rejected"
    digest.feed(
        call("r", "Edit", second=3, file_path="/a", old_string="x", new_string="y")
        + result("r", rejected, True, 3)
    )
    assert not digest.window().needs_attention, "a user rejection is not the agent failing"
    assert digest.feed(failing("c", 4)).attention.needs_attention  # type: ignore[union-attr]
    assert not digest.feed(prompt("stop and think", 5)).attention.needs_attention  # type: ignore[union-attr]


def test_configurable_failure_threshold() -> None:
    data = prompt("go") + failing("a", 1) + failing("b", 2)
    assert digest_bytes(data, config=DigestConfig(failure_threshold=2)).needs_attention
    assert not digest_bytes(data).needs_attention


def test_api_error_given_up_needs_attention() -> None:
    data = prompt("go") + api_gave_up("API Error: 529 overloaded", 4)
    window = digest_bytes(data)
    assert window.state == "api_error" and window.needs_attention
    assert window.attention_reason == "API error: API Error: 529 overloaded"


def test_stuck_after_many_tool_calls_without_text() -> None:
    config = DigestConfig(stuck_tool_calls=5, stuck_seconds=60)
    digest = SessionDigest(config=config)
    digest.feed(prompt("go", 0) + say("Starting.", 1))
    for i in range(6):
        digest.feed(call(f"t{i}", "Read", second=2 + i, file_path=f"/f{i}") + result(f"t{i}", second=2 + i))
    start = parse_timestamp(ts(1))
    assert start is not None
    assert not digest.window(now=start + 30).stuck, "not for long enough"
    window = digest.window(now=start + 61, last=5)
    assert window.state == "working" and window.stuck and window.needs_attention
    assert window.attention_reason is not None and window.attention_reason.startswith(
        "stuck: 6 tool calls without text"
    )
    assert digest.poll(start + 61) is not None and digest.poll(start + 62) is None
    digest.feed(say("Found it.", 9))
    assert not digest.window(now=start + 120).stuck


def test_waiting_for_input_too_long() -> None:
    config = DigestConfig(waiting_input_seconds=120)
    digest = SessionDigest(config=config)
    digest.feed(
        prompt("plan", 0) + call("q", "AskUserQuestion", second=10, questions=[{"question": "Which?"}])
    )
    asked = parse_timestamp(ts(10))
    assert asked is not None
    assert digest.window(now=asked + 60).state == "waiting_input"
    assert not digest.window(now=asked + 60).needs_attention
    change = digest.poll(asked + 121)
    assert change is not None and change.needs_attention
    window = digest.window(now=asked + 121)
    assert window.needs_attention and window.attention_reason == "waiting for input for 2m"
    assert window.running == ("AskUserQuestion: Which?",)
    digest.feed(result("q", "User answered: Postgres", second=140))
    assert not digest.window(now=asked + 500).needs_attention


def test_escalator_is_a_pure_rule_object() -> None:
    escalator = Escalator(failure_threshold=1)
    assert not escalator.evaluate(None, TurnState.IDLE).needs_attention
    escalator.api_gave_up = "boom"
    assert escalator.evaluate(None, TurnState.API_ERROR).reason == "API error: boom"


def test_real_failing_bash_streak_raises_and_clears() -> None:
    """print-mode-tools-and-errors: three failing Bash calls in a row, then a successful Grep."""
    data = (TRANSCRIPTS / "claude-2.1.328/print-mode-tools-and-errors.jsonl").read_bytes()
    digest = SessionDigest()
    changes = []
    for raw in data.splitlines(keepends=True):
        update = digest.feed(raw)
        if update.attention is not None:
            changes.append(update.attention)
    assert [c.needs_attention for c in changes] == [True, False]
    assert changes[0].reason is not None and changes[0].reason.startswith(
        "3 consecutive failed tool calls (last: Bash: false"
    )
    window = digest.window(last=None)
    assert sum(e.count for e in window.entries if e.is_error) == 3


# Checkpoint / resume ---------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(SAMPLES), cuts=st.lists(st.floats(0, 1), min_size=1, max_size=3))
def test_digest_resume_from_checkpoint_loses_and_repeats_no_entry(path: Path, cuts: list[float]) -> None:
    data = path.read_bytes()
    expected = digest_bytes(data, "tools", None).to_dict()
    config = DigestConfig(retain=None)
    digest = SessionDigest(config=config)
    for cut in sorted(cuts):
        position = int(cut * len(data))
        start = digest.parser.offset + digest.parser.pending_bytes
        if position > start:
            digest.feed(data[start:position])
        saved = orjson.loads(orjson.dumps(digest.checkpoint()))
        digest = SessionDigest.from_checkpoint(saved, config)
    digest.feed(data[digest.parser.offset :])
    digest.finish()
    assert digest.window("tools", None).to_dict() == expected


# Goldens ---------------------------------------------------------------------------------------------------


def golden_path(sample: Path, mode: str) -> Path:
    return GOLDEN / f"{str(sample.relative_to(TRANSCRIPTS)).replace('/', '__')}.{mode}.txt"


@pytest.mark.parametrize("mode", ["tools", "text"])
@pytest.mark.parametrize("path", SAMPLES, ids=SAMPLE_IDS)
def test_golden_digest(path: Path, mode: str) -> None:
    window = digest_bytes(path.read_bytes(), mode, None, agent=agent_label_for_path(str(path)))
    rendered = render_text(window, tz=UTC)
    golden = golden_path(path, mode)
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), f"missing {golden}; run with MAESTRO_UPDATE_GOLDEN=1 and review it"
    assert rendered == golden.read_text(encoding="utf-8")


# Import hygiene --------------------------------------------------------------------------------------------


def test_digest_module_imports_light() -> None:
    """``maestroctl digest`` imports this lazily; it must not drag in trio or cattrs."""
    code = (
        "import sys, shared.digest; "
        "print(sorted(m for m in ('trio', 'cattrs', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=HERE.parent, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_entry_round_trip() -> None:
    entry = DigestEntry("2026-01-01T00:00:00Z", "tool", "Read: a/b.py", "Read", False, 2, "subagent:x", 7)
    assert DigestEntry.from_dict(orjson.loads(orjson.dumps(entry.to_dict()))).to_dict() == entry.to_dict()


# Subagent files ------------------------------------------------------------------------------------------


SUBAGENTS = TRANSCRIPTS / "spotter-8463c716-subagents" / "subagents"


def test_subagent_files_feed_into_the_session_digest() -> None:
    digest = SessionDigest()
    digest.feed(
        prompt("go", 0)
        + call("task", "Task", second=1, subagent_type="Explore", description="look", prompt="p")
    )
    label = agent_label_for_path(str(SUBAGENTS / "agent-a7be2f0.jsonl"))
    assert label == "subagent:a7be2f0"
    update = digest.feed_subagent(label, (SUBAGENTS / "agent-a7be2f0.jsonl").read_bytes())
    assert update.appended["tools"] and all(
        e.agent == label and e.kind == "tool" for e in update.appended["tools"]
    )
    assert update.appended["text"] == [] and not update.state_changed
    window = digest.window(last=None)
    assert window.state == "working" and window.running[0] == "Task(Explore): look"
    assert window.usage == digest.parser.usage + digest.subagents[label].usage
    assert "↳ Read: services/tmux.ex" in render_text(window, tz=UTC)
    assert not window.needs_attention, "a subagent's failures do not escalate the session"
    restored = SessionDigest.from_checkpoint(orjson.loads(orjson.dumps(digest.checkpoint())))
    assert restored.subagents[label].offset == digest.subagents[label].offset
    assert restored.window(last=None).to_dict() == window.to_dict()


def test_running_compaction_worker_shows_the_session_compacting() -> None:
    digest = SessionDigest()
    digest.feed(prompt("go", 0) + say("Done. All good here.", 1))
    digest.finish()
    assert digest.window().state == "idle"
    data = (SUBAGENTS / "agent-acompact-f46190.jsonl").read_bytes()
    label = "subagent:acompact-f46190"
    head = data[: data.index(b'"type":"assistant"')].rsplit(b"\n", 1)[0] + b"\n"
    digest.feed_subagent(label, head)
    assert digest.window().state == "compacting"
    digest.feed_subagent(label, data[len(head) :])
    last = parse_timestamp(digest.subagents[label].last_activity)
    assert last is not None
    assert digest.window(now=last + 30).state == "idle", "the worker went quiet after its summary"


# A cut command keeps what a coordinator needs (issue 12) ----------------------------------------------------


def test_a_cut_command_keeps_its_description_and_the_verbs_that_matter() -> None:
    command = ('for t in $(maestroctl --json task ready | python3 -c "import json,sys; '
               'print(\' \'.join(t[\'id\'] for t in json.load(sys.stdin)))"); do '
               'maestroctl session spawn --name w-$t --task $t; done; maestroctl session spawn --name reviewer')
    summary = summarize_tool_call("Bash", {"command": command, "description": "spawn workers"})
    assert summary.startswith("Bash: for t in $(maestroctl --json task ready | pyt")  # 40+ chars kept
    assert summary.endswith(" · spawn workers · …maestroctl session spawn ×2")
    # verbs without a description; a verb already visible is not repeated
    long_test = "cd /very/long/path/somewhere/in/the/tree && python -m pytest -q tests/test_x.py && git commit -am x"
    assert summarize_tool_call("Bash", {"command": long_test}).endswith("… · …pytest, …git commit")
    visible = "git commit -m 'a message long enough to be cut by the digest line' && git push"
    assert summarize_tool_call("Bash", {"command": visible}) == (
        "Bash: git commit -m 'a message long enough to be cut… · …git push")
    # short commands, and long ones with nothing to add, are unchanged
    assert summarize_tool_call("Bash", {"command": "npm test", "description": "run tests"}) == "Bash: npm test"
    plain = "x" * 80
    assert summarize_tool_call("Bash", {"command": plain}) == "Bash: " + "x" * 55 + "…"
    # the failure still shows, and the line stays short
    sample = call("c", "Bash", command=command, description="spawn workers") + result(
        "c", "Exit code 1\nError: no such task", is_error=True, second=2)
    entry = digest_bytes(sample, last=None).entries[-1]
    assert entry.is_error and "✗ exit 1" in entry.summary and len(entry.summary) <= MAX_SUMMARY
