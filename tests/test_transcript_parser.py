"""Tests for the sans-I/O Claude Code transcript parser (``shared.transcript``).

Real transcripts (CC 1.0.98 → 2.1.328) live in ``tests/data/transcripts`` (a copy of
public recordings; provenance in its ``SOURCES.md``, see ``docs/transcripts.md``, 'Samples');
``MAESTRO_TRANSCRIPTS_DIR`` points the tests at another directory.  Synthetic records cover the rules the
samples do not exercise.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.transcript import (
    ApiErrorEvent,
    AssistantTextEvent,
    CompactionEvent,
    FailureKind,
    InterruptEvent,
    OtherRecordEvent,
    PromptEvent,
    StateChangeEvent,
    ThinkingEvent,
    TokenUsage,
    ToolCallEvent,
    ToolResultEvent,
    TranscriptParser,
    TurnEndEvent,
    TurnState,
    agent_label_for_path,
    classify_tool_result,
    estimate_cost_usd,
    model_price,
)
from shared.transcript.events import parse_timestamp
from shared.transcript.outcomes import first_error_line
from shared.transcript.records import LineStatus, decode_line

TRANSCRIPTS = Path(os.environ.get("MAESTRO_TRANSCRIPTS_DIR", Path(__file__).parent / "data" / "transcripts"))
SAMPLES = sorted(TRANSCRIPTS.rglob("*.jsonl"))
SAMPLE_IDS = [str(p.relative_to(TRANSCRIPTS)) for p in SAMPLES]


def sample(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def parse_all(data: bytes, **kwargs: Any) -> tuple[TranscriptParser, list[Any]]:
    parser = TranscriptParser(**kwargs)
    events = parser.feed(data)
    events += parser.finish()
    return parser, events


# --------------------------------------------------------------------------------------------------------
# Synthetic records

_counter = itertools.count(1)


def _uuid() -> str:
    return f"00000000-0000-4000-8000-{next(_counter):012d}"


def line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


def envelope(record_type: str, ts: str = "2026-01-01T10:00:00.000Z", **fields: Any) -> dict[str, Any]:
    return {
        "type": record_type,
        "uuid": _uuid(),
        "parentUuid": None,
        "isSidechain": False,
        "sessionId": "s-1",
        "timestamp": ts,
        "cwd": "/home/u/proj",
        **fields,
    }


def prompt(text: str, ts: str = "2026-01-01T10:00:00.000Z", **fields: Any) -> bytes:
    return line(envelope("user", ts, message={"role": "user", "content": text}, **fields))


def assistant(
    blocks: list[dict[str, Any]],
    msg_id: str = "msg_1",
    request_id: str | None = "req_1",
    usage: dict[str, Any] | None = None,
    model: str = "claude-sonnet-4-5-20250929",
    stop_reason: str | None = None,
    ts: str = "2026-01-01T10:00:01.000Z",
    **fields: Any,
) -> bytes:
    message = {
        "id": msg_id,
        "model": model,
        "role": "assistant",
        "content": blocks,
        "stop_reason": stop_reason,
        "usage": usage or {"input_tokens": 10, "output_tokens": 5},
    }
    record = envelope("assistant", ts, message=message, **fields)
    if request_id is not None:
        record["requestId"] = request_id
    return line(record)


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(tool_id: str, name: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def tool_result(
    tool_id: str,
    content: Any = "ok",
    is_error: bool | None = None,
    ts: str = "2026-01-01T10:00:02.000Z",
    tool_use_result: Any = None,
) -> bytes:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
    if is_error is not None:
        block["is_error"] = is_error
    record = envelope("user", ts, message={"role": "user", "content": [block]})
    if tool_use_result is not None:
        record["toolUseResult"] = tool_use_result
    return line(record)


def system(subtype: str, ts: str = "2026-01-01T10:00:03.000Z", **fields: Any) -> bytes:
    return line(envelope("system", ts, subtype=subtype, **fields))


def state(parser: TranscriptParser) -> TurnState:
    """The parser's state, read through a function so type checkers do not narrow it between feeds."""
    return parser.state


def of_type(events: list[Any], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


# --------------------------------------------------------------------------------------------------------
# Every sample parses


def test_corpus_is_present() -> None:
    assert len(SAMPLES) >= 12, f"expected the copied sample transcripts under {TRANSCRIPTS}"


@pytest.mark.parametrize("path", SAMPLES, ids=SAMPLE_IDS)
def test_every_sample_parses_without_loss(path: Path) -> None:
    data = path.read_bytes()
    parser, events = parse_all(data, agent=agent_label_for_path(str(path)))
    stats = parser.stats
    assert stats.corrupt_lines == 0 and stats.oversized_lines == 0
    assert stats.lines == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    assert parser.offset == len(data)
    assert events, "a real transcript yields events"
    calls = {e.tool_use_id for e in of_type(events, ToolCallEvent)}
    results = {e.tool_use_id for e in of_type(events, ToolResultEvent)}
    assert calls == results, "every tool call is paired with a result (or aborted)"
    assert stats.orphan_results == 0
    assert state(parser) is TurnState.IDLE, "every sample ends with a finished turn"
    assert parser.usage.total_tokens > 0
    assert parser.cost_usd > 0 or parser.model is not None


def test_unterminated_last_line_is_held_until_finish() -> None:
    data = sample("00_c9e2351016_3_full.jsonl")
    assert not data.endswith(b"\n")
    parser = TranscriptParser()
    parser.feed(data)
    last_newline = data.rindex(b"\n") + 1
    assert parser.offset == last_newline, "never advance past an unterminated line"
    assert parser.pending_bytes == len(data) - last_newline
    tail_events = parser.finish()
    assert parser.offset == len(data)
    assert tail_events, "the last record is emitted once the stream is declared complete"


# --------------------------------------------------------------------------------------------------------
# Chunking, resuming, truncation, corruption (property tests over real transcripts)

SMALL_SAMPLES = [p for p in SAMPLES if p.stat().st_size < 250_000]


def reference_events(data: bytes) -> list[Any]:
    return parse_all(data)[1]


_REFERENCE: dict[Path, tuple[bytes, list[Any]]] = {}


def reference(path: Path) -> tuple[bytes, list[Any]]:
    if path not in _REFERENCE:
        data = path.read_bytes()
        _REFERENCE[path] = (data, reference_events(data))
    return _REFERENCE[path]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(SAMPLES), cuts=st.lists(st.floats(0, 1), max_size=30))
def test_any_chunking_gives_the_same_events(path: Path, cuts: list[float]) -> None:
    data, expected = reference(path)
    positions = sorted({int(c * len(data)) for c in cuts})
    parser = TranscriptParser()
    events: list[Any] = []
    previous = 0
    for position in [*positions, len(data)]:
        events += parser.feed(data[previous:position])
        previous = position
    events += parser.finish()
    assert events == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(SAMPLES), cut=st.floats(0, 1), restarts=st.integers(1, 3))
def test_resume_from_checkpoint_loses_and_repeats_nothing(path: Path, cut: float, restarts: int) -> None:
    """A daemon restart: persist the checkpoint, rebuild, re-read the file from the checkpoint offset."""
    data, expected = reference(path)
    parser = TranscriptParser()
    events: list[Any] = []
    read_until = 0
    for step in range(restarts):
        read_until = max(read_until, int(len(data) * cut * (step + 1) / restarts))
        events += parser.feed(data[parser.offset + parser.pending_bytes : read_until])
        saved = orjson.loads(orjson.dumps(parser.checkpoint()))  # must survive JSON
        parser = TranscriptParser.from_checkpoint(saved)
    events += parser.feed(data[parser.offset :])
    events += parser.finish()
    assert events == expected


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(SMALL_SAMPLES), cut=st.floats(0, 1))
def test_truncation_and_rewrite_reread_produces_no_duplicates(path: Path, cut: float) -> None:
    """The file was truncated / rewritten in place: the tailer re-reads from 0 with the same parser."""
    data, expected = reference(path)
    parser = TranscriptParser()
    events = parser.feed(data[: int(len(data) * cut)])
    parser.reset(0)
    events += parser.feed(data)
    events += parser.finish()
    assert events == expected


GARBAGE_LINES = [
    b'{"type":"assistant","message":{"content":[{"type":"text","text":"cut by a cra',
    b"\x00\x00\x00\x00",
    b"not json at all",
    b"\xff\xfe\xfd",
    b"[1, 2, 3]",
    b'"just a string"',
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(SMALL_SAMPLES),
    injections=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(GARBAGE_LINES)), min_size=1, max_size=8),
    cuts=st.lists(st.floats(0, 1), max_size=10),
)
def test_injected_corrupt_lines_are_skipped_and_counted(
    path: Path, injections: list[tuple[float, bytes]], cuts: list[float]
) -> None:
    data, expected = reference(path)
    lines = data.split(b"\n")
    for position, garbage in sorted(injections, reverse=True):
        lines.insert(int(position * (len(lines) - 1)), garbage)
    corrupted = b"\n".join(lines)
    parser = TranscriptParser()
    events: list[Any] = []
    previous = 0
    for position in [*sorted({int(c * len(corrupted)) for c in cuts}), len(corrupted)]:
        events += parser.feed(corrupted[previous:position])
        previous = position
    events += parser.finish()
    assert events == expected
    assert parser.stats.corrupt_lines == len(injections)


def test_resume_with_offset_only_does_not_repeat_events() -> None:
    """Without a checkpoint (offset only) nothing before the offset is repeated; results of calls made
    before it arrive without a name."""
    data = sample("claude-2.1.328/print-mode-tools-and-errors.jsonl")
    first = TranscriptParser()
    head = first.feed(data[: len(data) // 2])
    resumed = TranscriptParser(offset=first.offset)
    tail = resumed.feed(data[first.offset :]) + resumed.finish()
    assert resumed.offset == len(data)
    head_ids = {e.tool_use_id for e in of_type(head, ToolCallEvent)}
    tail_ids = {e.tool_use_id for e in of_type(tail, ToolCallEvent)}
    assert not head_ids & tail_ids


# --------------------------------------------------------------------------------------------------------
# Line-level robustness


def test_glued_objects_on_one_line_are_both_decoded() -> None:
    glued = prompt("first")[:-1] + b'{"type":"summary","summary":"A title","leafUuid":"x"}\n'
    parser, events = parse_all(glued)
    assert parser.stats.glued_lines == 1
    assert [e.text for e in of_type(events, PromptEvent)] == ["first"]
    assert parser.title == "A title"


def test_lone_surrogate_is_repaired_not_fatal() -> None:
    raw = assistant([text("emoji cut \\ud83d here")], msg_id="m-s")
    assert b"\\\\ud83d" in raw
    raw = raw.replace(b"\\\\ud83d", b"\\ud83d")
    _records, status, _ = decode_line(raw[:-1])
    assert status is LineStatus.REPAIRED
    parser, events = parse_all(raw)
    assert parser.stats.repaired_lines == 1
    (event,) = of_type(events, AssistantTextEvent)
    assert event.text == "emoji cut \ufffd here"
    orjson.dumps(event.text)  # encodable again


def test_invalid_utf8_is_repaired() -> None:
    raw = prompt("caf\u00e9 ok").replace("é".encode(), b"\xe9")
    parser, events = parse_all(raw)
    assert parser.stats.repaired_lines == 1
    assert of_type(events, PromptEvent)[0].text == "caf\ufffd ok"


def test_oversized_line_is_skipped_counted_and_not_buffered() -> None:
    big = prompt("x" * 5000)
    small = prompt("after")
    parser = TranscriptParser(max_line_bytes=1000)
    events = []
    for index in range(0, len(big) - 1, 300):  # arrives in pieces: must not be buffered beyond the cap
        events += parser.feed(big[index : min(index + 300, len(big) - 1)])
        assert parser.offset == 0, "never past an unterminated line"
        assert parser.pending_bytes == min(index + 300, len(big) - 1)
        assert len(parser._buffer) <= 1000
    events += parser.feed(b"\n")
    events += parser.feed(small)
    assert parser.stats.oversized_lines == 1
    assert parser.offset == len(big) + len(small)
    assert [e.text for e in of_type(events, PromptEvent)] == ["after"]


def test_wrongly_typed_fields_are_salvaged() -> None:
    record = envelope(
        "assistant",
        message={
            "id": "m-w",
            "model": "claude-opus-4-6",
            "content": [
                {"type": "text", "text": 42},
                {"type": "tool_use", "id": "t-w", "name": "Read", "input": {"file_path": "/a/b/c.py"}},
            ],
        },
        isSidechain="no",
        requestId=7,
    )
    parser, events = parse_all(line(record))
    assert parser.stats.salvaged_records == 1
    (call,) = of_type(events, ToolCallEvent)
    assert call.name == "Read"


def test_unknown_record_types_pass_through() -> None:
    raw = line(
        {"type": "brand-new-thing", "uuid": "u-new", "timestamp": "2026-01-01T00:00:00Z", "payload": [1]}
    )
    parser, events = parse_all(raw)
    (other,) = of_type(events, OtherRecordEvent)
    assert other.record_type == "brand-new-thing" and other.data == orjson.loads(raw)
    assert parser.stats.unknown_records == 1


def test_blank_lines_and_crlf() -> None:
    parser, events = parse_all(b"\n\r\n" + prompt("hi").replace(b"\n", b"\r\n") + b"   \n")
    assert [e.text for e in of_type(events, PromptEvent)] == ["hi"]
    assert parser.stats.blank_lines == 3 and parser.stats.corrupt_lines == 0


def test_duplicate_uuid_is_ignored() -> None:
    raw = prompt("once")
    parser, events = parse_all(raw + raw)
    assert len(of_type(events, PromptEvent)) == 1
    assert parser.stats.duplicate_records == 1


# --------------------------------------------------------------------------------------------------------
# Merging, pairing, usage


def test_split_response_usage_counts_once_with_final_values() -> None:
    """Pre-2.1.98 lines of one response carry placeholder usage; the largest (final) one counts."""
    placeholder = {
        "input_tokens": 3,
        "output_tokens": 8,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 50,
    }
    final = {
        "input_tokens": 3,
        "output_tokens": 143,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 50,
    }
    data = (
        prompt("go")
        + assistant([{"type": "thinking", "thinking": "hmm", "signature": "sig"}], usage=placeholder)
        + assistant([text("Reading.")], usage=placeholder)
        + assistant([tool_use("t1", "Read", file_path="/x/y.py")], usage=final)
    )
    parser, events = parse_all(data)
    assert parser.usage == TokenUsage(3, 143, 100, 50, 0)
    kinds = [type(e) for e in events if isinstance(e, (ThinkingEvent, AssistantTextEvent, ToolCallEvent))]
    assert kinds == [ThinkingEvent, AssistantTextEvent, ToolCallEvent], "blocks keep stream order"


def test_btw_replay_and_synthetic_messages_are_not_counted() -> None:
    data = (
        prompt("go")
        + assistant(
            [text("Answer.")], msg_id="m1", request_id="r1", usage={"input_tokens": 10, "output_tokens": 20}
        )
        + assistant(
            [text("Answer.")],
            msg_id="m1",
            request_id="r2",
            usage={"input_tokens": 10, "output_tokens": 20},
            isSidechain=True,
        )
        + assistant(
            [text("No response requested.")],
            msg_id="uuid-like",
            request_id=None,
            model="<synthetic>",
            usage={"input_tokens": 0, "output_tokens": 0},
        )
    )
    parser, _ = parse_all(data)
    assert parser.usage == TokenUsage(10, 20, 0, 0, 0)


def test_cache_creation_split_by_ttl() -> None:
    usage = {
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_creation_input_tokens": 1000,
        "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 800},
    }
    parser, _ = parse_all(prompt("go") + assistant([text("ok")], usage=usage, model="claude-opus-4-6"))
    assert parser.usage.cache_creation_tokens == 1000
    assert parser.usage.cache_creation_1h_tokens == 800
    expected = (1 * 5 + 1 * 25 + 200 * 6.25 + 800 * 10) / 1e6
    assert parser.cost_usd == pytest.approx(expected)


@pytest.mark.parametrize(
    "name",
    [
        "claude-2.1.328/print-mode-tools-and-errors.jsonl",
        "claude-2.1.328/interactive-bash-turn.jsonl",
        "claude-2.1.328/print-mode-one-bash.jsonl",
    ],
)
def test_token_sums_match_claude_codes_own_accounting(name: str) -> None:
    """2.1.328 writes its own per-model totals (``cost-state.modelUsage``): our de-duplicated sums agree."""
    data = sample(name)
    cost_state = [orjson.loads(x) for x in data.splitlines() if b'"cost-state"' in x][-1]
    parser, _ = parse_all(data)
    for model, totals in cost_state["modelUsage"].items():
        usage = parser.usage_by_model[model]
        assert usage.input_tokens == totals["inputTokens"]
        assert usage.output_tokens == totals["outputTokens"]
        assert usage.cache_read_tokens == totals["cacheReadInputTokens"]
        assert usage.cache_creation_tokens == totals["cacheCreationInputTokens"]
    assert parser.reported_cost_usd == cost_state["totalCostUSD"]


def test_token_sum_of_a_real_split_transcript() -> None:
    """1e_… (2.1.17): independent sum with max usage per message.id equals the parser's."""
    data = sample("1e_868c83dbb7_0_full.jsonl")
    best: dict[str, dict[str, int]] = {}
    for raw in data.splitlines():
        record = orjson.loads(raw)
        if record.get("type") != "assistant" or record["message"].get("model") == "<synthetic>":
            continue
        usage = record["message"]["usage"]
        values = {
            k: usage.get(k) or 0
            for k in (
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
            )
        }
        key = record["message"]["id"]
        if key not in best or sum(values.values()) > sum(best[key].values()):
            best[key] = values
    parser, _ = parse_all(data)
    assert parser.usage.input_tokens == sum(v["input_tokens"] for v in best.values())
    assert parser.usage.output_tokens == sum(v["output_tokens"] for v in best.values())
    assert parser.usage.cache_read_tokens == sum(v["cache_read_input_tokens"] for v in best.values())
    assert parser.usage.cache_creation_tokens == sum(v["cache_creation_input_tokens"] for v in best.values())


def input_price(model: str) -> float:
    price = model_price(model)
    assert price is not None
    return price[0]


def test_model_price_families() -> None:
    assert (
        model_price("claude-opus-4-6")
        == model_price("claude-opus-4-5-20251101")
        == (5.0, 25.0, 6.25, 10.0, 0.5)
    )
    assert input_price("claude-opus-4-1-20250805") == 15.0
    assert input_price("claude-opus-4-20250514") == 15.0
    assert input_price("claude-sonnet-4-5-20250929") == 3.0
    assert input_price("claude-3-7-sonnet-20250219") == 3.0
    assert input_price("claude-haiku-4-5-20251001") == 1.0
    assert input_price("claude-3-5-haiku-20241022") == 0.8
    assert input_price("claude-3-haiku-20240307") == 0.25
    assert model_price("gpt-4o") is None and model_price(None) is None
    cost, unpriced = estimate_cost_usd(
        {"gpt-4o": TokenUsage(10, 10), "claude-sonnet-4-5": TokenUsage(1_000_000, 0)}
    )
    assert cost == pytest.approx(3.0) and unpriced == ["gpt-4o"]


# --------------------------------------------------------------------------------------------------------
# Failure classification


@pytest.mark.parametrize(
    ("content", "is_error", "kind", "exit_code", "message"),
    [
        ("all good", None, None, None, ""),
        ("all good", False, None, None, ""),
        (
            'Exit code 1\nTraceback (most recent call last):\n  File "<string>", line 1\nAssertionError',
            True,
            FailureKind.EXIT,
            1,
            "AssertionError",
        ),
        (
            "Exit code 4\n\nno tests ran in 0.53s\nERROR: file or directory not found: x.py",
            True,
            FailureKind.EXIT,
            4,
            "ERROR: file or directory not found: x.py",
        ),
        ("Exit code 1", True, FailureKind.EXIT, 1, ""),
        (
            "<tool_use_error>File has not been read yet. Read it first.</tool_use_error>",
            True,
            FailureKind.TOOL_ERROR,
            None,
            "File has not been read yet. Read it first.",
        ),
        (
            "<tool_use_error>Sibling tool call errored</tool_use_error>",
            True,
            FailureKind.CANCELLED,
            None,
            "Sibling tool call errored",
        ),
        (
            "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was",
            True,
            FailureKind.REJECTED,
            None,
            "rejected by user",
        ),
        ("[Request interrupted by user for tool use]", True, FailureKind.INTERRUPTED, None, "interrupted"),
        (
            "PreToolUse:Bash hook error: blocked by policy",
            True,
            FailureKind.HOOK_BLOCKED,
            None,
            "PreToolUse:Bash hook error: blocked by policy",
        ),
        (
            "Command timed out after 2m 0.0s",
            True,
            FailureKind.TIMEOUT,
            None,
            "Command timed out after 2m 0.0s",
        ),
        (
            "npm warn Unknown env config\n\nsrc/a.ts(6,33): error TS2307: Cannot find module",
            True,
            FailureKind.ERROR,
            None,
            "src/a.ts(6,33): error TS2307: Cannot find module",
        ),
        (
            "EISDIR: illegal operation on a directory, read",
            True,
            FailureKind.ERROR,
            None,
            "EISDIR: illegal operation on a directory, read",
        ),
    ],
)
def test_classify_tool_result(
    content: str, is_error: bool | None, kind: FailureKind | None, exit_code: int | None, message: str
) -> None:
    outcome = classify_tool_result(content, is_error)
    assert outcome.failed == (kind is not None)
    assert outcome.kind == kind
    assert outcome.exit_code == exit_code
    assert outcome.message == message


def test_first_error_line_strips_ansi() -> None:
    assert first_error_line("\x1b[31mFAIL\x1b[0m tests/a.test.ts\nok") == "FAIL tests/a.test.ts"


def failures_of(name: str) -> list[tuple[str | None, FailureKind | None, int | None]]:
    _, events = parse_all(sample(name))
    return [
        (e.name, e.outcome.kind, e.outcome.exit_code)
        for e in of_type(events, ToolResultEvent)
        if e.outcome.failed
    ]


def test_real_failures_are_classified() -> None:
    assert failures_of("claude-2.1.328/print-mode-tools-and-errors.jsonl") == [
        ("Bash", FailureKind.EXIT, 1),
        ("Bash", FailureKind.EXIT, 4),
        ("Bash", FailureKind.EXIT, 1),
    ]
    assert failures_of("00_c9e2351016_3_full.jsonl") == [
        ("Bash", FailureKind.EXIT, 1),
        ("Edit", FailureKind.REJECTED, None),
    ]
    assert failures_of("8e_0a64736bc7_0_full.jsonl") == [
        ("mcp__linear-server__create_comment", FailureKind.REJECTED, None),
        ("mcp__linear-server__search_documentation", FailureKind.ERROR, None),
    ]
    assert ("Bash", FailureKind.CANCELLED, None) in failures_of(
        "spotter-8463c716-subagents/subagents/agent-a7be2f0.jsonl"
    )
    assert ("Task", FailureKind.TOOL_ERROR, None) in failures_of("5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl")


def test_task_result_details_are_kept() -> None:
    _, events = parse_all(sample("fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"))
    tasks = [e for e in of_type(events, ToolResultEvent) if e.name == "Task"]
    assert len(tasks) == 5
    assert all(
        t.details and t.details["total_tokens"] > 0 and t.details["total_duration_ms"] > 0 for t in tasks
    )


# --------------------------------------------------------------------------------------------------------
# Turn state


def states_after(*chunks: bytes, agent: str | None = None) -> list[TurnState]:
    parser = TranscriptParser(agent=agent)
    out = []
    for chunk in chunks:
        parser.feed(chunk)
        out.append(parser.state)
    return out


def test_state_prompt_tool_result_text_stop_hook() -> None:
    assert states_after(
        prompt("do it"),
        assistant([tool_use("t1", "Bash", command="ls")]),
        tool_result("t1"),
        assistant([text("Done.")], msg_id="m2", request_id="r2"),
        system("stop_hook_summary"),
    ) == [TurnState.WORKING, TurnState.WORKING, TurnState.WORKING, TurnState.WORKING, TurnState.IDLE]


@pytest.mark.parametrize("tool", ["AskUserQuestion", "ExitPlanMode"])
def test_state_waiting_input_until_answered(tool: str) -> None:
    assert states_after(
        prompt("plan it"),
        assistant([tool_use("q1", tool, questions=[{"question": "Which?"}])]),
        tool_result("q1", "User answered"),
    ) == [TurnState.WORKING, TurnState.WAITING_INPUT, TurnState.WORKING]


def test_state_interrupted_and_new_prompt() -> None:
    assert states_after(
        prompt("go"),
        assistant([tool_use("t1", "Edit", file_path="/a.py", old_string="a", new_string="b")]),
        tool_result(
            "t1", "The user doesn't want to proceed with this tool use. The tool use was rejected", True
        ),
        prompt("[Request interrupted by user for tool use]"),
        prompt("try again"),
    ) == [TurnState.WORKING, TurnState.WORKING, TurnState.WORKING, TurnState.INTERRUPTED, TurnState.WORKING]


def test_state_interrupt_aborts_pending_tools() -> None:
    parser = TranscriptParser()
    parser.feed(prompt("go") + assistant([tool_use("t1", "Bash", command="sleep 100")]))
    events = parser.feed(
        line(envelope("user", message={"role": "user", "content": [text("[Request interrupted by user]")]}))
    )
    (aborted,) = of_type(events, ToolResultEvent)
    assert aborted.outcome.kind is FailureKind.ABORTED and aborted.name == "Bash"
    assert of_type(events, InterruptEvent)[0].during_tool is False
    assert state(parser) is TurnState.INTERRUPTED and not parser.pending_tools


def test_state_api_error_retry_then_give_up() -> None:
    parser = TranscriptParser()
    parser.feed(prompt("go"))
    events = parser.feed(
        system(
            "api_error",
            level="error",
            error={"status": 529, "message": "Overloaded"},
            retryAttempt=1,
            maxRetries=10,
        )
    )
    (retry,) = of_type(events, ApiErrorEvent)
    assert not retry.final and retry.retry_attempt == 1 and retry.status == 529
    assert state(parser) is TurnState.WORKING and parser.api_retry == retry
    restored = TranscriptParser.from_checkpoint(orjson.loads(orjson.dumps(parser.checkpoint())))
    assert restored.api_retry == retry
    events = parser.feed(
        assistant(
            [text('API Error: 529 {"type":"error","error":{"type":"overloaded_error"}}')],
            msg_id="u-1",
            request_id=None,
            model="<synthetic>",
            isApiErrorMessage=True,
        )
    )
    (final,) = of_type(events, ApiErrorEvent)
    assert final.final and final.status == 529
    assert state(parser) is TurnState.API_ERROR
    assert parser.usage.total_tokens == 0, "synthetic messages carry no billable usage"
    parser.feed(prompt("again"))
    assert state(parser) is TurnState.WORKING


def test_state_compaction() -> None:
    parser = TranscriptParser()
    parser.feed(prompt("go") + assistant([text("Done.")], stop_reason="end_turn"))
    assert state(parser) is TurnState.IDLE
    events = parser.feed(
        system("compact_boundary", compactMetadata={"trigger": "manual", "preTokens": 150_000})
    )
    assert state(parser) is TurnState.COMPACTING
    (boundary,) = of_type(events, CompactionEvent)
    assert boundary.trigger == "manual" and boundary.pre_tokens == 150_000
    parser.feed(
        line(
            envelope(
                "user",
                message={"role": "user", "content": "This session is being continued…"},
                isCompactSummary=True,
            )
        )
    )
    assert state(parser) is TurnState.IDLE, "a manual /compact leaves the prompt idle"


def test_state_auto_compaction_continues_working() -> None:
    assert states_after(
        prompt("go") + system("compact_boundary", compactMetadata={"trigger": "auto", "preTokens": 1}),
        line(envelope("user", message={"role": "user", "content": "continued"}, isCompactSummary=True)),
    ) == [TurnState.COMPACTING, TurnState.WORKING]


def test_state_text_ending_turn_needs_quiet_time_or_eof() -> None:
    parser = TranscriptParser()
    parser.feed(
        prompt("hi", ts="2026-01-01T10:00:00.000Z")
        + assistant([text("Hello!")], ts="2026-01-01T10:00:01.000Z")
    )
    assert state(parser) is TurnState.WORKING, "more blocks may still stream"
    written = parse_timestamp("2026-01-01T10:00:01.000Z")
    assert written is not None
    assert parser.state_at(written + 1, idle_after=5) is TurnState.WORKING
    assert parser.state_at(written + 6, idle_after=5) is TurnState.IDLE
    events = parser.finish()
    assert state(parser) is TurnState.IDLE
    assert of_type(events, StateChangeEvent)[-1].new is TurnState.IDLE


def test_state_end_turn_stop_reason_and_turn_duration() -> None:
    assert states_after(prompt("a"), assistant([text("Done.")], stop_reason="end_turn"))[-1] is TurnState.IDLE
    parser = TranscriptParser()
    events = parser.feed(
        prompt("b") + assistant([text("Long.")]) + system("turn_duration", durationMs=45_000)
    )
    assert state(parser) is TurnState.IDLE
    assert of_type(events, TurnEndEvent)[-1].duration_ms == 45_000


def test_stop_hook_does_not_end_a_turn_with_a_pending_tool() -> None:
    assert states_after(
        prompt("go") + assistant([tool_use("t1", "Task", description="x", prompt="y")]),
        system("stop_hook_summary"),
    ) == [TurnState.WORKING, TurnState.WORKING]


def test_local_command_ends_immediately() -> None:
    assert states_after(
        prompt(
            "<command-name>/mcp</command-name>\n<command-message>mcp</command-message>\n<command-args></command-args>"
        ),
        prompt("<local-command-stdout>Reconnected.</local-command-stdout>"),
    ) == [TurnState.WORKING, TurnState.IDLE]


def test_sidechain_records_do_not_drive_main_state() -> None:
    parser = TranscriptParser()
    parser.feed(prompt("go") + assistant([tool_use("task1", "Task", description="sub", prompt="p")]))
    events = parser.feed(
        prompt("p", isSidechain=True)
        + assistant(
            [tool_use("s1", "AskUserQuestion", questions=[])], msg_id="ms", request_id="rs", isSidechain=True
        )
    )
    assert state(parser) is TurnState.WORKING
    assert {e.agent for e in events if hasattr(e, "agent")} == {"sidechain"}
    assert parser.pending_tools == {"task1": "Task"}


def test_subagent_file_is_detected_and_attributed() -> None:
    path = TRANSCRIPTS / "spotter-8463c716-subagents/subagents/agent-a7be2f0.jsonl"
    parser, events = parse_all(path.read_bytes())
    assert parser.own_agent == "subagent:a7be2f0"
    assert {e.agent for e in events if hasattr(e, "agent")} == {"subagent:a7be2f0"}
    assert state(parser) is TurnState.IDLE
    explicit, _ = parse_all(path.read_bytes(), agent="subagent:custom")
    assert explicit.own_agent == "subagent:custom"


def test_compaction_worker_transcript_reports_compacting_while_it_works() -> None:
    data = sample("spotter-8463c716-subagents/subagents/agent-acompact-f46190.jsonl")
    parser = TranscriptParser()
    parser.feed(data[: data.rindex(b'"type":"assistant"')].rsplit(b"\n", 1)[0] + b"\n")
    assert state(parser) is TurnState.COMPACTING
    parser.feed(data[parser.offset :])
    parser.finish()
    assert state(parser) is TurnState.IDLE


def test_inline_sidechains_of_old_versions_are_labelled() -> None:
    _, events = parse_all(sample("fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"))
    agents = {e.agent for e in of_type(events, ToolCallEvent)}
    assert agents == {None, "sidechain"}


def test_real_samples_show_their_features() -> None:
    _, events = parse_all(sample("1e_868c83dbb7_0_full.jsonl"))
    assert any(isinstance(e, ApiErrorEvent) and not e.final for e in events)
    assert of_type(events, InterruptEvent)
    _, events = parse_all(sample("4b_7d5121b42a_0_full.jsonl"))
    phases = [e.phase for e in of_type(events, CompactionEvent)]
    assert phases == ["boundary", "summary"]
    assert any(isinstance(e, PromptEvent) and e.source == "command" and e.text == "/compact" for e in events)


def test_checkpoint_is_json_and_restores_aggregates() -> None:
    data = sample("4b_7d5121b42a_0_full.jsonl")
    parser, _ = parse_all(data)
    restored = TranscriptParser.from_checkpoint(orjson.loads(orjson.dumps(parser.checkpoint())))
    assert restored.usage == parser.usage
    assert restored.state is parser.state
    assert restored.offset == parser.offset == len(data)
    assert restored.session_id == parser.session_id and restored.title == parser.title
    with pytest.raises(ValueError):
        TranscriptParser.from_checkpoint({"version": 999, "offset": 0})
