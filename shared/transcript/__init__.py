"""Agent transcripts (sans-I/O): one common event model, one adapter per transcript format.

Layout (docs/transcripts.md, 'Layout'):

* :mod:`~shared.transcript.events` - the common model: events, turn states, tool outcomes, and the
  :class:`AgentTranscript` protocol every adapter implements;
* :mod:`~shared.transcript.claude` (with :mod:`~shared.transcript.records`, its typed record decoder) -
  Claude Code transcripts; :mod:`~shared.transcript.codex` - Codex CLI rollout files;
* :mod:`~shared.transcript.formats` - which adapter reads a file (recognised from its first records);
* :mod:`~shared.transcript.usage` - token usage and prices; :mod:`~shared.transcript.outcomes` - tool
  failure classification; :mod:`~shared.transcript.jsonl` - the line input every adapter shares.

This package re-exports the names most callers need, so ``from shared.transcript import TurnState`` works;
the modules above are where they live.
"""

from shared.transcript.claude import KNOWN_RECORD_TYPES, TranscriptParser, agent_label_for_path
from shared.transcript.events import (
    NON_AGENT_FAILURES,
    TOOL_OK,
    AgentTranscript,
    ApiErrorEvent,
    AssistantTextEvent,
    CompactionEvent,
    Event,
    FailureKind,
    InterruptEvent,
    OtherRecordEvent,
    PromptEvent,
    StateChangeEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolOutcome,
    ToolResultEvent,
    TurnEndEvent,
    TurnState,
    parse_timestamp,
)
from shared.transcript.codex import CodexRolloutParser
from shared.transcript.formats import FORMATS, detect_format, new_parser, parser_from_checkpoint
from shared.transcript.jsonl import MAX_LINE_BYTES, MAX_NESTING, ParserStats
from shared.transcript.outcomes import classify_tool_result, first_error_line
from shared.transcript.usage import PRICES_USD_PER_MTOK, TokenUsage, estimate_cost_usd, model_price

__all__ = [
    "FORMATS",
    "KNOWN_RECORD_TYPES",
    "MAX_LINE_BYTES",
    "MAX_NESTING",
    "NON_AGENT_FAILURES",
    "PRICES_USD_PER_MTOK",
    "TOOL_OK",
    "AgentTranscript",
    "ApiErrorEvent",
    "CodexRolloutParser",
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
    "agent_label_for_path",
    "classify_tool_result",
    "detect_format",
    "estimate_cost_usd",
    "first_error_line",
    "model_price",
    "new_parser",
    "parse_timestamp",
    "parser_from_checkpoint",
]
