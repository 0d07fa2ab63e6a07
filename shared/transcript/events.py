"""The common model of agent events: what every transcript adapter produces and every consumer reads.

A transcript adapter (:mod:`shared.transcript.claude` for Claude Code, :mod:`shared.transcript.codex` for
Codex CLI rollouts) turns the bytes of one agent's log into these events and keeps the per-file aggregates
listed by :class:`AgentTranscript` (turn state, token usage by model, identity); the digest
(:mod:`shared.digest`) and the daemon know only this module.  Why a common model: two vendors' agents must
look the same to a coordinator (one digest format, one status vocabulary, one escalation rule), and a
third format must be one new adapter, not a change to every consumer.

Events are immutable msgspec structs (cheap to make: a transcript yields one per step).  ``agent`` is
``None`` for the file's own agent and ``subagent:<id>`` / ``sidechain`` for another agent's steps written
into it.  Timestamps are the ISO-8601 strings the transcript carries; :func:`parse_timestamp` converts them.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Protocol, TypeAlias

import msgspec

from shared.transcript.usage import TokenUsage

__all__ = [
    "NON_AGENT_FAILURES",
    "TOOL_OK",
    "AgentTranscript",
    "ApiErrorEvent",
    "AssistantTextEvent",
    "CompactionEvent",
    "Event",
    "FailureKind",
    "InterruptEvent",
    "OtherRecordEvent",
    "PromptEvent",
    "StateChangeEvent",
    "ThinkingEvent",
    "ToolCallEvent",
    "ToolOutcome",
    "ToolResultEvent",
    "TurnEndEvent",
    "TurnState",
    "parse_timestamp",
]


class TurnState(enum.StrEnum):
    """What the agent is doing, derived from the transcript alone (docs/transcripts.md, 'Turn state').

    ``working``: a prompt or tool result is being answered, or a tool runs.  ``waiting_input``: an
    ``AskUserQuestion``/``ExitPlanMode`` call has no result yet.  ``idle``: the turn ended (stop hook,
    ``turn_duration``, ``stop_reason: end_turn``, a finished local command, or - once the caller says the
    stream is quiet - the last response ended with text and no tool is pending).  ``interrupted``: the user
    pressed Esc / rejected a tool.  ``api_error``: Claude Code gave up on an API error (synthetic
    ``API Error`` message).  ``compacting``: a compaction boundary was written (or this is the compaction
    worker's own transcript while it works).
    """

    WORKING = "working"
    WAITING_INPUT = "waiting_input"
    IDLE = "idle"
    INTERRUPTED = "interrupted"
    API_ERROR = "api_error"
    COMPACTING = "compacting"


class FailureKind(enum.StrEnum):
    """Why a tool call failed (docs/transcripts.md, 'Tool results')."""

    #: ``is_error`` with no more specific text
    ERROR = "error"
    #: Bash ``Exit code N``
    EXIT = "exit"
    #: harness-side ``<tool_use_error>`` (file not read yet, string not found, validation...)
    TOOL_ERROR = "tool_error"
    #: the user (or a permission rule) rejected the call
    REJECTED = "rejected"
    #: cancelled because a parallel sibling call failed
    CANCELLED = "cancelled"
    #: interrupted by the user while running
    INTERRUPTED = "interrupted"
    #: a PreToolUse hook blocked it
    HOOK_BLOCKED = "hook_blocked"
    #: the command timed out
    TIMEOUT = "timeout"
    #: no result ever came (turn ended / interrupted / new prompt while pending)
    ABORTED = "aborted"


#: Failure kinds that are not the agent's own failure: they do not count towards escalation.
NON_AGENT_FAILURES = frozenset(
    {FailureKind.REJECTED, FailureKind.CANCELLED, FailureKind.ABORTED, FailureKind.INTERRUPTED}
)


class ToolOutcome(msgspec.Struct, frozen=True, gc=False):
    """Result status of one tool call; ``message`` is the most useful error line (may be empty)."""

    failed: bool
    kind: FailureKind | None = None
    exit_code: int | None = None
    message: str = ""


TOOL_OK = ToolOutcome(failed=False)


class PromptEvent(msgspec.Struct, frozen=True, gc=False):
    """Something the user (or the harness on their behalf) asked: typed prompt, slash command, ``!`` bash
    input, a steering prompt queued while busy, or a background-task notification."""

    timestamp: str
    agent: str | None
    text: str
    source: str  # "user" | "command" | "bash" | "queued" | "task_notification"


class AssistantTextEvent(msgspec.Struct, frozen=True, gc=False):
    """A ``text`` block written by the model (one per block, in stream order)."""

    timestamp: str
    agent: str | None
    text: str
    message_id: str | None
    model: str | None


class ThinkingEvent(msgspec.Struct, frozen=True, gc=False):
    """A ``thinking``/``redacted_thinking`` block; the content is deliberately not carried."""

    timestamp: str
    agent: str | None


class ToolCallEvent(msgspec.Struct, frozen=True, gc=False):
    """A ``tool_use`` (or server-side ``server_tool_use``) block."""

    timestamp: str
    agent: str | None
    tool_use_id: str
    name: str
    input: dict[str, Any]


class ToolResultEvent(msgspec.Struct, frozen=True, gc=False):
    """The result paired with an earlier :class:`ToolCallEvent` (``name``/``input`` are ``None`` if the call
    was not seen, e.g. after resuming from an offset without a checkpoint).  ``details`` holds the few small
    structured bits worth keeping, with snake_case keys: Task/Agent ``status``, ``agent_id``,
    ``total_tokens``, ``total_duration_ms``, ``total_tool_use_count``, ``is_async``; Bash ``interrupted``,
    ``background_task_id``, ``return_code_interpretation``.
    """

    timestamp: str
    agent: str | None
    tool_use_id: str
    name: str | None
    input: dict[str, Any] | None
    outcome: ToolOutcome
    details: dict[str, Any] | None = None


class InterruptEvent(msgspec.Struct, frozen=True, gc=False):
    """``[Request interrupted by user]`` (Esc while streaming) or ``… for tool use`` (Esc/deny in a tool)."""

    timestamp: str
    agent: str | None
    during_tool: bool


class ApiErrorEvent(msgspec.Struct, frozen=True, gc=False):
    """``final=False``: ``system/api_error``, Claude Code will retry.  ``final=True``: a synthetic
    ``API Error …`` assistant message, Claude Code gave up (includes usage/rate limits)."""

    timestamp: str
    agent: str | None
    final: bool
    message: str
    status: int | None = None
    retry_attempt: int | None = None
    max_retries: int | None = None


class CompactionEvent(msgspec.Struct, frozen=True, gc=False):
    """``phase``: ``boundary`` (``system/compact_boundary``), ``summary`` (the ``isCompactSummary`` user
    record that follows it) or ``micro`` (``system/microcompact_boundary``)."""

    timestamp: str
    agent: str | None
    phase: str
    trigger: str | None = None
    pre_tokens: int | None = None


class TurnEndEvent(msgspec.Struct, frozen=True, gc=False):
    """Explicit end-of-turn evidence: ``stop_hook``, ``turn_duration``, ``end_turn`` or ``local_command``."""

    timestamp: str
    agent: str | None
    reason: str
    duration_ms: float | None = None


class StateChangeEvent(msgspec.Struct, frozen=True, gc=False):
    """The derived :class:`TurnState` changed while processing the record at ``timestamp``."""

    timestamp: str
    old: TurnState
    new: TurnState


class OtherRecordEvent(msgspec.Struct, frozen=True, gc=False):
    """A record of a type this parser does not know: passed through so callers can log or inspect it."""

    timestamp: str
    record_type: str | None
    uuid: str | None
    data: dict[str, Any] | None


Event: TypeAlias = (
    PromptEvent
    | AssistantTextEvent
    | ThinkingEvent
    | ToolCallEvent
    | ToolResultEvent
    | InterruptEvent
    | ApiErrorEvent
    | CompactionEvent
    | TurnEndEvent
    | StateChangeEvent
    | OtherRecordEvent
)



_TS_CACHE: dict[str, float] = {}


def parse_timestamp(timestamp: str | None) -> float | None:
    """ISO-8601 transcript timestamp (``2026-01-22T01:41:10.123Z``) to epoch seconds; None if unparsable."""
    if not timestamp:
        return None
    cached = _TS_CACHE.get(timestamp)
    if cached is not None:
        return cached
    try:
        value = datetime.fromisoformat(timestamp).timestamp()  # 3.11+ accepts the "Z" suffix
    except ValueError:
        return None
    if len(_TS_CACHE) > 4096:
        _TS_CACHE.clear()
    _TS_CACHE[timestamp] = value
    return value


class AgentTranscript(Protocol):
    """What a consumer may ask of a transcript adapter (one per file, sans-I/O, checkpointable).

    ``feed`` takes the next bytes of the file and returns the events of the lines they complete; ``finish``
    declares a closed file (an unterminated last line is parsed, a turn that ended with text counts as
    idle); ``reset`` restarts reading at an offset keeping what was seen (a truncated or rewritten file
    produces no duplicate events).  ``checkpoint()`` is JSON and names its ``format``, so
    :func:`shared.transcript.formats.parser_from_checkpoint` can rebuild the right adapter.
    """

    format: str
    agent: str | None
    offset: int
    max_line_bytes: int
    session_id: str | None
    cwd: str | None
    version: str | None
    model: str | None
    title: str | None
    reported_cost_usd: float | None
    last_activity: str | None
    state_since: str | None

    @property
    def stats(self) -> Any: ...

    def feed(self, data: bytes) -> list[Event]: ...

    def finish(self) -> list[Event]: ...

    def reset(self, offset: int = 0) -> None: ...

    @property
    def pending_bytes(self) -> int: ...

    @property
    def state(self) -> TurnState: ...

    def state_at(self, now: float, idle_after: float = 5.0) -> TurnState: ...

    @property
    def own_agent(self) -> str | None: ...

    def pending_calls(self) -> list[tuple[str, str, dict[str, Any], str, str | None]]: ...

    @property
    def usage_by_model(self) -> dict[str, TokenUsage]: ...

    def checkpoint(self) -> dict[str, Any]: ...
