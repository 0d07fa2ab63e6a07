"""Codex CLI rollouts digest like Claude Code transcripts (``shared.transcript.codex``, issue 12).

The rollouts in ``tests/data/codex/`` were written by the real Codex CLI 0.171.0 driven offline by
``scripts/record_codex_rollouts.py`` (see its docstring for the scenarios and the only change made to the
files: temporary paths replaced).  Their golden digests are ``tests/data/golden/codex/<name>.<mode>.txt``
(``MAESTRO_UPDATE_GOLDEN=1`` rewrites them; review the diff).  Synthetic lines cover the record types an
offline ``codex exec`` does not write (interrupts, API errors, compaction, the older event names).
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.digest import SessionDigest, digest_bytes, render_text
from shared.transcript import (
    CodexRolloutParser,
    FailureKind,
    InterruptEvent,
    PromptEvent,
    StateChangeEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnState,
    detect_format,
    parser_from_checkpoint,
)
from tests.conftest import MAESTROCTL, maestroctl_env

HERE = Path(__file__).parent
CODEX = HERE / "data" / "codex"
GOLDEN = HERE / "data" / "golden" / "codex"
ROLLOUTS = sorted(CODEX.glob("*.jsonl"))
CLAUDE_SAMPLES = sorted((HERE / "data" / "transcripts").rglob("*.jsonl"))
UPDATE_GOLDEN = os.environ.get("MAESTRO_UPDATE_GOLDEN") == "1"


def rollout(name: str) -> bytes:
    return (CODEX / f"{name}.jsonl").read_bytes()


def parse(data: bytes) -> tuple[CodexRolloutParser, list[Any]]:
    parser = CodexRolloutParser()
    events = parser.feed(data) + parser.finish()
    return parser, events


def lines_of(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


# The recorded rollouts -------------------------------------------------------------------------------------


def test_the_recordings_are_what_the_real_codex_wrote() -> None:
    assert {p.name for p in ROLLOUTS} >= {"commands-and-patch.jsonl", "failing-streak.jsonl"}
    for path in ROLLOUTS:
        records = lines_of(path.read_bytes())
        meta = records[0]
        assert meta["type"] == "session_meta" and meta["payload"]["cli_version"] == "0.171.0"
        assert all({"timestamp", "type", "payload"} <= set(r) for r in records)
        assert b"/tmp/codex-rec-" not in path.read_bytes()  # machine paths were replaced


def test_commands_with_exit_status_patches_messages_and_turns() -> None:
    data = rollout("commands-and-patch")
    parser, events = parse(data)
    results = [e for e in events if type(e) is ToolResultEvent]
    shells = [(r.input["cmd"], r.outcome) for r in results if r.name == "exec_command" and r.input]
    assert shells[0] == ("ls", shells[0][1]) and not shells[0][1].failed
    # Codex refused a call before running it (no exit status at all): a tool error, with Codex's words
    refused = shells[1][1]
    assert refused.failed and refused.kind is FailureKind.TOOL_ERROR and "justification" in refused.message
    failed = shells[2][1]
    assert failed.failed and failed.kind is FailureKind.EXIT and failed.exit_code == 1
    test_runs = [o for cmd, o in shells if "unittest" in cmd]
    assert [o.exit_code for o in test_runs] == [1, None] and test_runs[0].message == "FAILED (failures=1)"
    # both heredoc patches became apply_patch calls, with the files Codex reported
    patches = [r for r in results if r.name == "apply_patch"]
    assert len(patches) == 2 and not any(p.outcome.failed for p in patches)
    assert patches[0].details == {"files": {"/work/project/tests/test_calc.py": "add"}, "exit_code": 0}
    assert patches[1].details == {"files": {"/work/project/calc.py": "update"}, "exit_code": 0}
    # prompts from the user's words only (not Codex's environment context), three turns that end idle
    assert [e.text for e in events if type(e) is PromptEvent] == [
        "Look at the project and run its checks.", "Fix add and add a test.", "Summarise what you did."]
    changes = [(e.old, e.new) for e in events if type(e) is StateChangeEvent]
    assert changes == [(TurnState.IDLE, TurnState.WORKING), (TurnState.WORKING, TurnState.IDLE)] * 3
    assert parser.state is TurnState.IDLE and parser.pending_calls() == []
    assert parser.session_id == lines_of(data)[0]["payload"]["id"] and parser.version == "0.171.0"
    assert parser.model == "gpt-5" and parser.cwd == "/work/project"
    assert parser.stats.corrupt_lines == parser.stats.unknown_records == parser.stats.orphan_results == 0


def test_token_usage_is_the_last_token_count_total() -> None:
    for path in ROLLOUTS:
        data = path.read_bytes()
        counts = [r["payload"]["info"]["total_token_usage"] for r in lines_of(data)
                  if r["type"] == "event_msg" and r["payload"].get("type") == "token_count" and r["payload"]["info"]]
        last = counts[-1]
        parser, _ = parse(data)
        usage = parser.usage_by_model["gpt-5"]
        assert usage.input_tokens + usage.cache_read_tokens == last["input_tokens"]
        assert usage.cache_read_tokens == last["cached_input_tokens"]
        assert usage.output_tokens == last["output_tokens"]
        window = digest_bytes(data)
        assert window.usage == usage and window.cost_usd > 0 and window.model == "gpt-5"


def test_a_failing_streak_needs_attention() -> None:
    window = digest_bytes(rollout("failing-streak"), last=None)
    assert window.needs_attention and "3 consecutive failed tool calls" in (window.attention_reason or "")
    failures = [e.summary for e in window.entries if e.is_error]
    assert failures == ["Shell: make build ✗ exit 2 — make: *** No rule to make target 'build'.  Stop.",
                        "Shell: cargo build ✗ exit 127 — /bin/bash: line 1: cargo: command not found",
                        "Shell: npm run build ✗ exit 254 — npm error code ENOENT"]


@pytest.mark.parametrize("mode", ["tools", "text"])
@pytest.mark.parametrize("path", ROLLOUTS, ids=[p.stem for p in ROLLOUTS])
def test_golden_digest(path: Path, mode: str) -> None:
    rendered = render_text(digest_bytes(path.read_bytes(), mode, None), tz=UTC)
    golden = GOLDEN / f"{path.stem}.{mode}.txt"
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", ROLLOUTS, ids=[p.stem for p in ROLLOUTS])
def test_resume_from_a_checkpoint_at_any_line_loses_and_repeats_nothing(path: Path) -> None:
    data = path.read_bytes()
    whole = SessionDigest(format="codex")
    whole.feed(data)
    expected = [e.to_dict() for e in whole.entries()]
    for cut in range(0, len(data), max(len(data) // 23, 1)):
        first = SessionDigest(format="codex")
        first.feed(data[:cut])
        saved = orjson.loads(orjson.dumps(first.checkpoint()))
        resumed = SessionDigest.from_checkpoint(saved)
        assert resumed.parser.format == "codex"
        resumed.feed(data[resumed.parser.offset :])
        assert [e.to_dict() for e in resumed.entries()] == expected, cut


def test_re_reading_the_file_produces_no_events() -> None:
    data = rollout("commands-and-patch")
    parser = CodexRolloutParser()
    parser.feed(data)
    usage, records = parser.usage_by_model, parser.stats.records
    parser.reset(0)
    assert parser.feed(data) == [] and parser.usage_by_model == usage
    assert parser.stats.duplicate_records > 0 and parser.stats.records == records


def test_the_format_is_recognised_from_the_first_records() -> None:
    assert all(detect_format(p.read_bytes()) == "codex" for p in ROLLOUTS)
    assert all(detect_format(p.read_bytes()) == "claude" for p in CLAUDE_SAMPLES)
    assert detect_format(b"") == "claude" and detect_format(b"garbage\n\n") == "claude"
    # a corrupt first line does not hide the format
    assert detect_format(b"{not json\n" + rollout("failing-streak")) == "codex"
    saved = CodexRolloutParser().checkpoint()
    assert type(parser_from_checkpoint(saved)) is CodexRolloutParser


def test_maestroctl_digest_recognises_a_rollout_without_a_flag() -> None:
    env = maestroctl_env(Path("/nonexistent/maestrod.sock"))
    path = CODEX / "commands-and-patch.jsonl"
    r = subprocess.run([MAESTROCTL, "digest", str(path), "--last", "0", "--utc"], env=env, capture_output=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == (GOLDEN / "commands-and-patch.tools.txt").read_text(encoding="utf-8")


# Synthetic lines: what offline `codex exec` runs do not write ---------------------------------------------

_clock = iter(range(10_000))


def line(kind: str, **payload: Any) -> bytes:
    second = next(_clock)
    ts = f"2026-01-01T10:{second // 60 % 60:02d}:{second % 60:02d}.000Z"
    return orjson.dumps({"timestamp": ts, "type": kind, "payload": payload}) + b"\n"


def event(kind: str, **fields: Any) -> bytes:
    return line("event_msg", type=kind, **fields)


def item(kind: str, **fields: Any) -> bytes:
    return line("response_item", type=kind, **fields)


def test_older_event_names_interrupts_errors_and_waiting() -> None:
    patch = "*** Begin Patch\n*** Update File: src/app.py\n@@\n-a\n+b\n+c\n*** Delete File: old.txt\n*** End Patch"
    data = b"".join([
        line("session_meta", id="s-1", cwd="/p", cli_version="0.60.0"),
        line("turn_context", model="gpt-5-codex", cwd="/p"),
        event("task_started"),
        event("user_message", message="run the tests"),
        item("local_shell_call", call_id="c1", status="completed",
             action={"type": "exec", "command": ["bash", "-lc", "pytest -q"]}),
        event("exec_command_end", call_id="c1", exit_code=2, aggregated_output="E   AssertionError: 1 != 2\n"),
        item("function_call_output", call_id="c1", output='{"output": "...", "metadata": {"exit_code": 2}}'),
        item("custom_tool_call", name="apply_patch", call_id="c2", input=patch),
        event("patch_apply_end", call_id="c2", success=True, changes={"/p/src/app.py": {"update": {}},
                                                                      "/p/old.txt": {"delete": {}}}),
        item("custom_tool_call_output", call_id="c2", output="Success. Updated the following files:\nM src/app.py"),
        event("token_count", info={"total_token_usage": {"input_tokens": 1000, "cached_input_tokens": 400,
                                                         "output_tokens": 50, "total_tokens": 1050}}),
        item("function_call", name="exec_command", call_id="c3", arguments='{"cmd": "sleep 100"}'),
        event("turn_aborted", reason="interrupted"),
        event("task_started"),
        event("user_message", message="ask me first"),
        item("function_call", name="request_user_input", call_id="c4",
             arguments='{"questions": [{"question": "Which branch?"}]}'),
    ])
    parser = CodexRolloutParser()
    events = parser.feed(data)
    assert parser.state is TurnState.WAITING_INPUT and parser.pending_tools == {"c4": "request_user_input"}
    results = {e.tool_use_id: e for e in events if type(e) is ToolResultEvent}
    assert results["c1"].outcome.exit_code == 2 and results["c1"].outcome.message == "E   AssertionError: 1 != 2"
    assert results["c2"].details == {"files": {"/p/src/app.py": "update", "/p/old.txt": "delete"}, "exit_code": 0}
    assert results["c3"].outcome.kind is FailureKind.INTERRUPTED
    assert [e.during_tool for e in events if type(e) is InterruptEvent] == [True]
    usage = parser.usage_by_model["gpt-5-codex"]
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (600, 400, 50)
    window = digest_bytes(data, last=None)
    summaries = [e.summary for e in window.entries]
    assert "Shell: pytest -q ✗ exit 2 — E   AssertionError: 1 != 2" in summaries
    assert "Patch: src/app.py (+2 -1), old.txt (deleted)" in summaries
    assert "Shell: sleep 100 ✗ interrupted" in summaries and "[INTERRUPTED]" in summaries
    assert window.state == "waiting_input" and window.running == ("Question: Which branch?",)
    assert window.cost_usd > 0  # gpt-5-codex is priced

    more = CodexRolloutParser.from_checkpoint(orjson.loads(orjson.dumps(parser.checkpoint())))
    tail = more.feed(b"".join([
        item("function_call_output", call_id="c4", output="main"),
        line("compacted", message="summary"),
        event("error", message="stream disconnected before completion: 500 Internal Server Error"),
    ]))
    assert more.state is TurnState.API_ERROR
    window_after = SessionDigest(parser=more)
    window_after.apply(tail)
    kinds = [e.kind for e in window_after.entries()]
    assert kinds == ["tool", "compaction", "api_error"]
    assert window_after.attention().kind == "api_error"


def test_bad_lines_are_counted_never_fatal() -> None:
    data = b"".join([b"{oops\n", b"[1, 2]\n", b"\n", line("mystery", x=1), b"[" * 5000 + b"]" * 5000 + b"\n",
                     item("function_call", name="exec_command", call_id="d", arguments="[" * 300 + "]" * 300),
                     item("function_call_output", call_id="unknown", output="x")])
    parser, events = parse(data)
    assert parser.stats.corrupt_lines == 3 and parser.stats.blank_lines == 1
    assert parser.stats.unknown_records == 1 and parser.stats.orphan_results == 1
    calls = [e for e in events if type(e) is ToolCallEvent]
    assert calls[0].input == {"arguments": "[" * 300 + "]" * 300}  # too deep to keep as JSON
    orjson.dumps(parser.checkpoint())  # still encodable
