"""Escalation: the pure rules that decide whether a session needs a human or its coordinator.

Fed the common events of the session's own agent (:mod:`shared.transcript.events`), so the rules are the
same for every agent kind.
"""

from __future__ import annotations

from typing import Any

import attrs

from shared.digest.summaries import clip, format_duration
from shared.transcript.events import (
    NON_AGENT_FAILURES,
    ApiErrorEvent,
    AssistantTextEvent,
    Event,
    PromptEvent,
    StateChangeEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnState,
    parse_timestamp,
)

__all__ = ["Attention", "Escalator"]



@attrs.frozen(slots=True)
class Attention:
    """Whether a session needs a human/coordinator, and why (``None`` when it does not).

    ``kind`` (``failures``, ``api_error``, ``waiting_input``, ``stuck``) identifies the rule; transitions
    are detected on ``(needs_attention, kind)`` so a reason whose numbers grow does not re-fire an event."""

    needs_attention: bool = False
    reason: str | None = None
    kind: str | None = None

    def same_verdict(self, other: Attention) -> bool:
        return self.needs_attention == other.needs_attention and self.kind == other.kind


@attrs.define(slots=True)
class Escalator:
    """Pure rules deciding ``needs_attention`` (issue 4, "Escalation").

    Raised by: ``failure_threshold`` consecutive failed tool calls (user rejections, cancellations and
    aborts are not the agent's failures and neither count nor reset), an API error Claude Code gave up on,
    being stuck (more than ``stuck_tool_calls`` tool calls and ``stuck_seconds`` seconds without any text),
    or waiting for input longer than ``waiting_input_seconds``.  Failure/API flags clear on the next
    successful tool call or prompt; the time-based ones clear as soon as their condition stops holding.
    Only events of the session's own chain count (the caller filters).
    """

    failure_threshold: int = 3
    stuck_tool_calls: int = 25
    stuck_seconds: float = 600.0
    waiting_input_seconds: float = 300.0
    consecutive_failures: int = 0
    last_failure: str | None = None
    api_gave_up: str | None = None
    tool_calls_since_text: int = 0
    #: ISO timestamps (as in the transcript) of the last text/prompt and of entering ``waiting_input``
    last_text_at: str | None = None
    waiting_since: str | None = None

    def observe(self, event: Event, failure_summary: str | None = None) -> None:
        """Fold in one event of the session's own chain (callers filter subagent events out; state
        changes are always passed).  ``failure_summary`` names a failed step in the attention reason."""
        cls = type(event)
        if cls is ToolResultEvent:
            assert isinstance(event, ToolResultEvent)
            outcome = event.outcome
            if not outcome.failed:
                self.consecutive_failures = 0
                self.last_failure = None
                self.api_gave_up = None
            elif outcome.kind not in NON_AGENT_FAILURES:
                self.consecutive_failures += 1
                self.last_failure = failure_summary or (event.name or "tool")
        elif cls is ToolCallEvent:
            self.tool_calls_since_text += 1
            if self.last_text_at is None:
                self.last_text_at = event.timestamp
        elif cls is AssistantTextEvent:
            self.tool_calls_since_text = 0
            self.last_text_at = event.timestamp
            self.api_gave_up = None
        elif cls is PromptEvent:
            assert isinstance(event, PromptEvent)
            self.tool_calls_since_text = 0
            self.last_text_at = event.timestamp
            if event.source != "task_notification":
                self.consecutive_failures = 0
                self.last_failure = None
                self.api_gave_up = None
        elif cls is ApiErrorEvent:
            assert isinstance(event, ApiErrorEvent)
            if event.final:
                self.api_gave_up = event.message or "API error"
        elif cls is StateChangeEvent:
            assert isinstance(event, StateChangeEvent)
            if event.new is TurnState.WAITING_INPUT:
                self.waiting_since = event.timestamp
            elif event.old is TurnState.WAITING_INPUT:
                self.waiting_since = None

    def is_stuck(self, now: float | None, state: TurnState) -> bool:
        if state not in (TurnState.WORKING, TurnState.COMPACTING) or now is None:
            return False
        if self.tool_calls_since_text <= self.stuck_tool_calls:
            return False
        since = parse_timestamp(self.last_text_at)
        return since is not None and now - since > self.stuck_seconds

    def evaluate(self, now: float | None, state: TurnState) -> Attention:
        if self.consecutive_failures >= self.failure_threshold:
            reason = f"{self.consecutive_failures} consecutive failed tool calls (last: {self.last_failure})"
            return Attention(True, reason, "failures")
        if self.api_gave_up is not None:
            return Attention(True, f"API error: {clip(self.api_gave_up, 100)}", "api_error")
        waiting_since = parse_timestamp(self.waiting_since)
        if state is TurnState.WAITING_INPUT and waiting_since is not None and now is not None:
            waited = now - waiting_since
            if waited > self.waiting_input_seconds:
                return Attention(True, f"waiting for input for {format_duration(waited)}", "waiting_input")
        if self.is_stuck(now, state):
            since = parse_timestamp(self.last_text_at) or 0.0
            quiet = format_duration((now or since) - since)
            return Attention(
                True, f"stuck: {self.tool_calls_since_text} tool calls without text for {quiet}", "stuck"
            )
        return Attention()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

