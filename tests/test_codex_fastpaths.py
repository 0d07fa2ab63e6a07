"""The fast paths of the Codex digest give what the plain paths give (bench/bench_digest_codex.py measures them).

* Frequent rollout lines (session_meta, token_count, CommandExecution items, function calls and their
  outputs) are read by typed msgspec decoders that build only the fields the adapter uses; a line of any
  other shape falls back to decoding it whole.  Every recorded rollout, and lines of odd shapes written the
  way Codex writes them, give the same events, state, usage and checkpoint with the typed decoders as with
  every line decoded whole.
* Line digests are xxh3-128 since checkpoint version 2; a version 1 checkpoint (blake2b digests) is still
  read, and a rollout re-read after it produces nothing twice.
* ``first_error_line`` searches the joined lines once, and ASCII text lowered with case-sensitive patterns;
  it picks the same line as the per-line case-insensitive search it replaced.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.transcript import CodexRolloutParser, first_error_line
from shared.transcript import codex as codex_module
from shared.transcript import outcomes

ROLLOUTS = sorted((Path(__file__).parent / "data" / "codex").glob("*.jsonl"))


class _Refuse:
    """A decoder that refuses every line: the adapter then decodes each line whole (its plain path)."""

    def decode(self, line: bytes) -> Any:
        raise msgspec.DecodeError("refused")


def run(data: bytes) -> tuple[list[Any], dict[str, Any]]:
    parser = CodexRolloutParser()
    events = parser.feed(data) + parser.finish()
    return events, parser.checkpoint()


def run_plain(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], dict[str, Any]]:
    with monkeypatch.context() as patch:
        patch.setattr(codex_module, "_TYPED", {name: _Refuse() for name in codex_module._TYPED})
        return run(data)


def typed_group(line: bytes) -> str | None:
    head = codex_module._HEAD_RE().match(line, 0, codex_module._HEAD_BYTES)
    group = head.lastgroup if head is not None else None
    return group if group in codex_module._TYPED else None


@pytest.mark.parametrize("path", ROLLOUTS, ids=lambda p: p.stem)
def test_recorded_rollouts_digest_the_same_with_typed_decoders(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = path.read_bytes()
    typed = [typed_group(line) for line in data.splitlines()]
    # the fast paths are taken
    assert {"meta", "tokens", "command", "call", "output", "context", "message", "started", "complete",
            "user"} <= set(typed)
    assert run(data) == run_plain(data, monkeypatch)


_ordinal = iter(range(100_000))


def codex_line(kind: str, payload: Any) -> bytes:
    """A line with Codex 0.171's key order (timestamp, ordinal, type, payload), so the head is recognised."""
    n = next(_ordinal)
    record = {"timestamp": f"2026-01-01T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z", "ordinal": n, "type": kind,
              "payload": payload}
    return orjson.dumps(record) + b"\n"


def tokens(info: Any) -> bytes:
    return codex_line("event_msg", {"type": "token_count", "info": info})


def usage(**counts: Any) -> dict[str, Any]:
    return {"input_tokens": 100, "cached_input_tokens": 40, "output_tokens": 10, **counts}


ODD_LINES = [
    codex_line("session_meta", {"id": 7, "cwd": ["/p"], "cli_version": None, "base_instructions": {"text": "x"}}),
    codex_line("session_meta", {"id": "s-1", "cwd": "/p", "cli_version": "0.171.0"}),
    codex_line("turn_context", {"model": "gpt-5", "cwd": "/p"}),
    codex_line("event_msg", {"type": "task_started"}),
    tokens({"total_token_usage": usage(), "last_token_usage": usage()}),
    tokens({"total_token_usage": usage(input_tokens=300, cache_write_input_tokens=5)}),
    tokens({"total_token_usage": usage(input_tokens=None)}),  # null count: 0 on the plain path
    tokens({"total_token_usage": usage(input_tokens=450.0)}),  # a float count
    tokens({"total_token_usage": usage(output_tokens="12")}),  # a string count
    tokens({"total_token_usage": {}}),  # no total
    tokens({"total_token_usage": {"output_tokens": 30}}),  # no input count
    tokens({"total_token_usage": usage(input_tokens=20), "last_token_usage": usage(input_tokens=20)}),  # restart
    tokens({"total_token_usage": usage(input_tokens=10), "last_token_usage": {"input_tokens": 5}}),  # restart
    tokens({"total_token_usage": usage(input_tokens=5), "last_token_usage": None}),  # restart, no last
    tokens(None),
    tokens(5),
    tokens({"total_token_usage": usage(input_tokens=900), "rate_limits": {"primary": None}}),
    codex_line("response_item", {"type": "function_call", "name": "exec_command", "call_id": "c1",
                                 "arguments": '{"cmd": "pytest -q"}'}),
    codex_line("event_msg", {"type": "item_completed", "thread_id": "t", "turn_id": "u",
                             "item": {"type": "CommandExecution", "id": "c1", "exit_code": 1,
                                      "aggregated_output": "FAILED test_x\n"}}),
    codex_line("response_item", {"type": "function_call_output", "call_id": "c1",
                                 "output": "Process exited with code 1\nOutput:\nFAILED"}),
    codex_line("response_item", {"type": "function_call", "name": "exec_command", "call_id": "c2",
                                 "arguments": {"cmd": ["bash", "-lc", "ls"]}}),  # arguments as an object
    codex_line("event_msg", {"type": "item_completed", "thread_id": "t", "turn_id": "u",
                             "item": {"type": "CommandExecution", "id": 5, "exit_code": "0"}}),
    codex_line("response_item", {"type": "function_call_output", "call_id": "c2",
                                 "output": [{"type": "input_text", "text": "a\nb"}]}),
    codex_line("response_item", {"type": "function_call", "call_id": 3, "arguments": "not json"}),
    codex_line("response_item", {"type": "function_call_output", "call_id": "c9", "output": {"content": "x"}}),
    codex_line("response_item", {"type": "function_call", "name": "request_user_input", "call_id": "c3",
                                 "arguments": '{"questions": [{"question": "Which?"}]}'}),
    codex_line("event_msg", {"type": "item_completed", "thread_id": "t", "turn_id": "u",
                             "item": {"type": "CommandExecution", "id": "c3", "exit_code": 0,
                                      "aggregated_output": None}}),
    codex_line("response_item", {"type": "function_call_output", "call_id": "c3", "output": None}),
    codex_line("event_msg", {"type": "task_complete", "duration_ms": 1200}),
    codex_line("turn_context", {"model": 5, "cwd": None}),
    codex_line("turn_context", {"model": "gpt-5-codex", "cwd": "/q", "approval_policy": "never"}),
    codex_line("event_msg", {"type": "turn_started", "turn_id": "x"}),
    codex_line("event_msg", {"type": "item_completed", "thread_id": "t", "turn_id": "u",
                             "item": {"type": "UserMessage", "id": "m", "content": [{"type": "text", "text": "go"}]}}),
    codex_line("event_msg", {"type": "item_completed", "thread_id": "t", "turn_id": "u",
                             "item": {"type": "UserMessage", "content": "as a string"}}),
    codex_line("event_msg", {"type": "item_completed", "thread_id": "t", "turn_id": "u",
                             "item": {"type": "UserMessage", "content": None}}),
    codex_line("response_item", {"type": "message", "id": "msg_1", "role": "assistant",
                                 "content": [{"type": "output_text", "text": "Done. All good."}]}),
    codex_line("response_item", {"type": "message", "id": "msg_2", "role": "assistant", "content": "plain"}),
    codex_line("response_item", {"type": "message", "id": "msg_3", "role": "assistant", "content": [5, None]}),
    codex_line("event_msg", {"type": "turn_complete", "duration_ms": "slow"}),
    codex_line("event_msg", {"type": "task_started"}),
    codex_line("event_msg", {"type": "task_complete", "duration_ms": 3.5, "last_agent_message": "x"}),
]


def test_lines_of_odd_shapes_digest_the_same_with_typed_decoders(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sum(typed_group(line) is not None for line in ODD_LINES) >= 20
    data = b"".join(ODD_LINES)
    typed_events, typed_checkpoint = run(data)
    assert (typed_events, typed_checkpoint) == run_plain(data, monkeypatch)
    assert typed_checkpoint["usage"]  # the counts were read
    # cut anywhere: the same again
    for cut in range(0, len(ODD_LINES), 5):
        head, tail = b"".join(ODD_LINES[:cut]), b"".join(ODD_LINES[cut:])
        parser = CodexRolloutParser()
        events = parser.feed(head)
        resumed = CodexRolloutParser.from_checkpoint(orjson.loads(orjson.dumps(parser.checkpoint())))
        events += resumed.feed(tail) + resumed.finish()
        assert events == typed_events


@pytest.mark.parametrize("path", ROLLOUTS, ids=lambda p: p.stem)
def test_a_version_1_checkpoint_is_read_and_keeps_its_digests(path: Path) -> None:
    data = path.read_bytes()
    parser = CodexRolloutParser()
    parser.feed(data)
    saved = parser.checkpoint()
    assert saved["version"] == 2
    lines = data.splitlines()
    assert {bytes.fromhex(d) for d in saved["seen"]} <= {xxhash.xxh3_128_digest(line) for line in lines}
    # the same checkpoint as version 1 wrote it: blake2b-96 digests of the same lines
    recorded = set(saved["seen"])
    old = {**saved, "version": 1, "seen": [hashlib.blake2b(line, digest_size=12).hexdigest()
                                            for line in lines if xxhash.xxh3_128_digest(line).hex() in recorded]}
    restored = CodexRolloutParser.from_checkpoint(orjson.loads(orjson.dumps(old)))
    restored.reset(0)  # the file was rewritten: read again from the start
    assert restored.feed(data) == []
    assert restored.stats.duplicate_records == len(old["seen"])
    assert restored.checkpoint()["version"] == 1
    with pytest.raises(ValueError, match="version 1 or 2"):
        CodexRolloutParser.from_checkpoint({**saved, "version": 3})


# first_error_line ---------------------------------------------------------------------------------------

_STRONG = re.compile(
    r"\berror\b|\bERR!|\bfail(?:ed|ure|s)?\b|\bexception\b|\bfatal\b|\bpanic\b|\w+Error\b", re.IGNORECASE
)
_WEAK = re.compile(
    r"not found|no such|cannot|can't|unable|invalid|denied|refused|timed out|missing|undefined|✗|✘",
    re.IGNORECASE,
)


def reference_first_error_line(text: str, limit: int = 200) -> str:
    """The selection as it was written first: every line searched on its own, case ignored."""
    lines = [line.strip() for line in outcomes._ANSI_RE().sub("", text).split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            for candidate in reversed(lines[index + 1 :]):
                if not candidate.startswith(("File ", "^", "~")):
                    return candidate[:limit]
            break
    candidates = [line for line in lines if not line.startswith(outcomes._NOISE_PREFIXES)] or lines
    chosen = next((line for line in candidates if _STRONG.search(line)), None)
    if chosen is None:
        chosen = next((line for line in candidates if _WEAK.search(line)), candidates[-1])
    return chosen[:limit]


_WORDS = ["error", "Error", "ERRORS", "ERR!", "err!", "xErr!", "KeyError", "_error", "error_", "failed", "FAIL",
          "Fails", "failure", "xfail", "fail7", "exception", "Exceptions", "fatal", "FATAL:", "panic", "panicked",
          "not found", "NOT FOUND", "Cannot", "can't", "unable", "denied", "timed out", "Missing", "undefined",
          "✗", "ok", "foo", "9", "e", "f", "p", "x", " ", "  ", "\n", "\n", "\r", "\x1b[31m", "warning: error",
          "npm warn fail", "Traceback (most recent call last)", "File x", "^^^", "ValueError: bad", "é", "ÉError",
          "İnvalid", "ſ", "K", "-", "!", ":"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=16), st.lists(st.sampled_from(["", " ", "\n", ""]), max_size=16))
def test_first_error_line_picks_the_line_the_per_line_search_picked(words: list[str], seps: list[str]) -> None:
    text = "".join(word + (seps[i] if i < len(seps) else "") for i, word in enumerate(words))
    assert first_error_line(text) == reference_first_error_line(text)
    assert first_error_line(text, 5) == reference_first_error_line(text, 5)
