"""Claude Code transcript parsing (sans-I/O): decode JSONL records and turn them into events and state.

Entry points: :class:`TranscriptParser` (incremental, checkpointable) and, for digests, ``shared.digest``.
"""

from shared.transcript.parser import (
    ApiErrorEvent,
    AssistantTextEvent,
    CompactionEvent,
    Event,
    FailureKind,
    InterruptEvent,
    OtherRecordEvent,
    ParserStats,
    PromptEvent,
    StateChangeEvent,
    ThinkingEvent,
    TokenUsage,
    ToolCallEvent,
    ToolOutcome,
    ToolResultEvent,
    TranscriptParser,
    TurnEndEvent,
    TurnState,
    classify_tool_result,
    estimate_cost_usd,
    model_price,
)
from shared.transcript.records import MAX_LINE_BYTES

__all__ = [
    "MAX_LINE_BYTES",
    "ApiErrorEvent",
    "AssistantTextEvent",
    "CompactionEvent",
    "Event",
    "FailureKind",
    "InterruptEvent",
    "OtherRecordEvent",
    "ParserStats",
    "PromptEvent",
    "StateChangeEvent",
    "ThinkingEvent",
    "TokenUsage",
    "ToolCallEvent",
    "ToolOutcome",
    "ToolResultEvent",
    "TranscriptParser",
    "TurnEndEvent",
    "TurnState",
    "classify_tool_result",
    "estimate_cost_usd",
    "model_price",
]
