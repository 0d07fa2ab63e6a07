"""The Claude Code adapter: a sans-I/O incremental parser for Claude Code transcripts (``~/.claude/projects``).

The daemon's tailer reads bytes from a transcript file and hands them to :meth:`TranscriptParser.feed`; the
parser returns the common events of :mod:`shared.transcript.events` (prompts, assistant text, tool calls paired with their results and a
failure classification, interrupts, API errors, compactions, turn ends, state changes) and keeps the
per-session aggregates a coordinator needs: the turn state, token usage without double counting, and an
estimated cost.  It never opens files or reads clocks, so it is testable with plain bytes and usable from
both the trio daemon and the blocking CLI.

Rules implemented here are explained in ``docs/transcripts.md`` ('Records' to 'Writing and rewriting'):

* Only bytes up to the last ``\\n`` are consumed; the unterminated tail is buffered and :attr:`offset` (the
  checkpoint) stops before it.  Lines above :data:`MAX_LINE_BYTES` are skipped and counted without being
  buffered.  Corrupt lines, glued objects, invalid UTF-8 and lone surrogates are recovered or counted,
  never fatal.
* Records are de-duplicated by ``uuid`` so a re-read after truncation or in-place rewrite (:meth:`reset`)
  produces no duplicate events.
* Assistant responses split over several lines (same ``message.id`` + ``requestId``) are merged for usage
  accounting: usage counts once per response, taking the line with the largest total (early lines of
  pre-2.1.98 versions carry streaming placeholders).  ``/btw`` replays (same id, other request) and
  synthetic messages (``model == "<synthetic>"``) are not counted.
* Turn state is derived from main-chain records only (``isSidechain`` false, or every record of a subagent
  file), see :class:`TurnState`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

from shared.transcript.events import (
    TOOL_OK,
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
from shared.transcript.jsonl import (
    MAX_LINE_BYTES,
    MAX_NESTING,
    JsonlInput,
    ParserStats,
    loads_dict,
    nesting_exceeds,
)
from shared.transcript.outcomes import INTERRUPT_PREFIX, classify_tool_result, first_line
from shared.transcript.records import (
    RECORD_DECODER,
    Block,
    LineStatus,
    Record,
    Usage,
    decode_line,
    raw_to_text,
)
from shared.transcript.usage import TokenUsage, estimate_cost_usd

__all__ = ["KNOWN_RECORD_TYPES", "TranscriptParser", "agent_label_for_path"]

_WAITING_TOOLS = frozenset({"AskUserQuestion", "ExitPlanMode"})
_INTERRUPT_PREFIX = INTERRUPT_PREFIX

_SUBAGENT_FILE_RE = re.compile(r"(?:^|[/\\])agent-([^/\\]+?)\.jsonl$")


def agent_label_for_path(path: str) -> str | None:
    """Attribution label for a transcript path (the ``agent`` of its :class:`TranscriptParser`):
    ``…/subagents/agent-a7be2f0.jsonl`` (and the flat 2.0.x ``agent-<id>.jsonl``) → ``subagent:a7be2f0``;
    ``None`` for a session's main transcript."""
    match = _SUBAGENT_FILE_RE.search(path)
    return f"subagent:{match.group(1)}" if match else None


_TS_CACHE: dict[str, float] = {}



class _ResultBits(msgspec.Struct, rename="camel", omit_defaults=True):
    """Small structured parts of ``toolUseResult`` worth keeping; bulky parts are skipped."""

    status: str | None = None
    agent_id: str | None = None
    total_tokens: int | None = None
    total_duration_ms: float | None = None
    total_tool_use_count: int | None = None
    is_async: bool | None = None
    interrupted: bool | None = None
    background_task_id: str | None = None
    return_code_interpretation: str | None = None


_RESULT_BITS_DECODER = msgspec.json.Decoder(_ResultBits)
_RESULT_BITS_TOOLS = frozenset({"Bash", "Task", "Agent"})


def _result_bits(raw: msgspec.Raw) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        bits = _RESULT_BITS_DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
        return None  # a string ("Error: …") or another shape
    out = msgspec.structs.asdict(bits)
    return {k: v for k, v in out.items() if v is not None} or None


def _text_of(content: str | list[Block] | None) -> str:
    if isinstance(content, str):
        return content
    if not content:
        return ""
    return "\n".join(b.text for b in content if b.type == "text" and b.text)


def _usage_tuple(usage: Usage) -> tuple[int, int, int, int, int]:
    creation = usage.cache_creation_input_tokens or 0
    one_hour = 0
    if usage.cache_creation is not None:
        one_hour = min(usage.cache_creation.ephemeral_1h_input_tokens or 0, creation)
    return (
        usage.input_tokens or 0,
        usage.output_tokens or 0,
        usage.cache_read_input_tokens or 0,
        creation,
        one_hour,
    )


#: Record types this parser knows; anything else is passed through as :class:`OtherRecordEvent`.
KNOWN_RECORD_TYPES = frozenset(
    {
        "user",
        "assistant",
        "system",
        "progress",
        "attachment",
        "summary",
        "file-history-snapshot",
        "file-history-delta",
        "queue-operation",
        "pr-link",
        "ai-title",
        "custom-title",
        "agent-name",
        "last-prompt",
        "permission-mode",
        "mode",
        "agent-setting",
        "worktree-state",
        "relocated",
        "bridge-session",
        "atis-latch",
        "frame-link",
        "fork-context-ref",
        "saved_hook_context",
        "cost-state",
        "api-request",
        "api-request-blob",
        "api-request-shape",
        "tools-used",
        "started",
        "result",
    }
)



class _Pending(msgspec.Struct, gc=False):
    name: str
    input: dict[str, Any]
    timestamp: str
    agent: str | None
    own: bool


_CHECKPOINT_VERSION = 1


class TranscriptParser(JsonlInput):
    """Incremental parser for one transcript file.

    ``agent`` labels every event from this file (use ``"subagent:<agentId>"`` for
    ``<session>/subagents/agent-<agentId>.jsonl``); with a label, every record counts for turn state.  A file
    whose records carry ``isSidechain`` + ``agentId`` from the start is recognised as a subagent file too.
    ``offset`` is the absolute file offset of the first byte that will be fed (resume without state); to
    resume with state use :meth:`checkpoint` / :meth:`from_checkpoint`.
    """

    #: Keep at most this many recent uuids in a checkpoint (the in-memory set is complete).
    checkpoint_max_uuids: ClassVar[int] = 20_000
    #: Recent assistant responses remembered for usage de-duplication.
    max_tracked_messages: ClassVar[int] = 512

    def __init__(
        self,
        *,
        agent: str | None = None,
        offset: int = 0,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(offset=offset, max_line_bytes=max_line_bytes)
        self.agent = agent
        self.session_id: str | None = None
        self.cwd: str | None = None
        self.version: str | None = None
        self.model: str | None = None
        self.title: str | None = None
        #: Claude Code's own running cost (``cost-state`` records, 2.1.3xx), if written.
        self.reported_cost_usd: float | None = None
        #: Timestamp of the newest record of any kind (progress included): a liveness signal.
        self.last_activity: str | None = None
        #: Timestamp at which :attr:`state` last changed.
        self.state_since: str | None = None
        #: Last ``system/api_error`` retry not yet followed by a response, if any.
        self.api_retry: ApiErrorEvent | None = None
        self._subagent_file = agent is not None
        self._seen_main_chain = False
        self._own_label = agent
        self._seen: dict[str, None] = {}
        self._pending: dict[str, _Pending] = {}
        self._messages: OrderedDict[str, list[Any]] = OrderedDict()
        self._usage: dict[str, list[int]] = {}
        self._base = TurnState.IDLE
        self._last_kind: str | None = None  # kind of the newest main-chain item
        self._model_active = False  # did the model respond since the last prompt?
        self._compact_trigger: str | None = None
        self._state = TurnState.IDLE
        self._dispatch: dict[str | None, Callable[[Record, list[Event]], None]] = {
            "assistant": self._on_assistant,
            "user": self._on_user,
            "system": self._on_system,
            "attachment": self._on_attachment,
            "summary": self._on_title,
            "ai-title": self._on_title,
            "custom-title": self._on_title,
            "cost-state": self._on_cost_state,
        }

    #: The transcript format this adapter reads (see :mod:`shared.transcript.formats`).
    format: ClassVar[str] = "claude"

    # ---------------------------------------------------------------------------------------------- input

    def feed(self, data: bytes) -> list[Event]:
        """Consume the next bytes of the file; return the events of every line completed by them."""
        return super().feed(data)

    def finish(self) -> list[Event]:
        """Declare the stream complete (closed file, offline digest).

        Parses an unterminated last line (419 of 546 captured files lack the final newline), advances
        :attr:`offset` past it, and lets :attr:`state` treat a turn that ended with text as idle.  Do not call
        this on a live file: the writer may still complete that line.
        """
        events: list[Event] = []
        self._finish_lines(events)
        self._emit_state_change(self.last_activity or "", events)
        return events

    # --------------------------------------------------------------------------------------------- queries

    @property
    def state(self) -> TurnState:
        """Turn state from evidence alone (no clock).  Use :meth:`state_at` to apply the idle timeout."""
        return self._state

    def state_at(self, now: float, idle_after: float = 5.0) -> TurnState:
        """:attr:`state`, except that a turn whose last response ended with text (no tool pending) counts as
        idle once nothing was written for ``idle_after`` seconds - the only end-of-turn evidence for turns
        shorter than 30 s in sessions without Stop hooks."""
        state = self._state
        if self._base is TurnState.WORKING and state is not TurnState.WAITING_INPUT and self._could_be_idle():
            last = parse_timestamp(self.last_activity)
            if last is not None and now - last >= idle_after:
                return TurnState.IDLE
        return state

    @property
    def own_agent(self) -> str | None:
        """Label carried by events of the chain whose state is reported (``None`` for a main transcript)."""
        return self._own_label

    def pending_calls(self) -> list[tuple[str, str, dict[str, Any], str, str | None]]:
        """Every tool call without a result yet (subagents included), oldest first:
        ``(tool_use_id, name, input, timestamp, agent)``."""
        return [(tid, p.name, p.input, p.timestamp, p.agent) for tid, p in self._pending.items()]

    @property
    def pending_tools(self) -> dict[str, str]:
        """Main-chain tool calls without a result yet: ``{tool_use_id: tool name}``."""
        return {tid: p.name for tid, p in self._pending.items() if p.own}

    @property
    def usage(self) -> TokenUsage:
        """Token totals over every API response in this file (subagent responses written inline included)."""
        return sum(self.usage_by_model.values(), TokenUsage())

    @property
    def usage_by_model(self) -> dict[str, TokenUsage]:
        return {model: TokenUsage(*values) for model, values in self._usage.items()}

    @property
    def cost_usd(self) -> float:
        """Estimated cost from :data:`PRICES_USD_PER_MTOK` (unknown models contribute nothing)."""
        return estimate_cost_usd(self.usage_by_model)[0]

    @property
    def unpriced_models(self) -> list[str]:
        return estimate_cost_usd(self.usage_by_model)[1]

    # ---------------------------------------------------------------------------------------- line handling

    def _process_line(self, line: bytes | memoryview, events: list[Event]) -> None:
        stats = self.stats
        stats.lines += 1
        try:
            record = RECORD_DECODER.decode(line)  # fast path: one well-formed, well-typed object
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
            pass
        except RecursionError:  # nested deeper than the decoder can hold: corrupt, whatever the rest says
            stats.corrupt_lines += 1
            return
        else:
            message = record.message  # tool inputs are kept (checkpoints): the one deep value to bound
            if message is not None and type(message.content) is list and _inputs_too_deep(message.content):
                stats.corrupt_lines += 1
                return
            self._handle(record, line, None, events)
            return
        line = bytes(line)
        if not line or line.isspace():
            stats.blank_lines += 1
            return
        if nesting_exceeds(line, MAX_NESTING):
            stats.corrupt_lines += 1
            return
        records, status, raw_objects = decode_line(line)
        if status is LineStatus.CORRUPT:
            stats.corrupt_lines += 1
            return
        if status is LineStatus.REPAIRED:
            stats.repaired_lines += 1
        elif status is LineStatus.GLUED:
            stats.glued_lines += 1
        elif status is LineStatus.SALVAGED:
            stats.salvaged_records += len(records)
        for index, record in enumerate(records):
            self._handle(record, line, raw_objects[index] if index < len(raw_objects) else None, events)

    def _handle(
        self, record: Record, line: bytes | memoryview, raw_object: dict[str, Any] | None, events: list[Event]
    ) -> None:
        self.stats.records += 1
        record_type = record.type
        timestamp = record.timestamp
        if timestamp:
            self.last_activity = timestamp
        handler = self._dispatch.get(record_type)
        if handler is None:
            if record_type not in KNOWN_RECORD_TYPES:
                self.stats.unknown_records += 1
                data = raw_object if raw_object is not None else loads_dict(line)
                events.append(OtherRecordEvent(timestamp or "", record_type, record.uuid, data))
            return
        uuid = record.uuid
        if uuid is not None:
            seen = self._seen
            if uuid in seen:
                self.stats.duplicate_records += 1
                return
            seen[uuid] = None
        handler(record, events)
        new_state = self._derive_state()
        if new_state is not self._state:
            self._set_state(new_state, timestamp or "", events)

    # -------------------------------------------------------------------------------------- attribution

    def _is_own(self, record: Record) -> bool:
        """Does this record belong to the chain whose state we report?"""
        if not record.is_sidechain:
            return True
        if self._subagent_file:
            return True
        if record.agent_id and not self._seen_main_chain:
            # A file that starts with sidechain records carrying an agentId is a subagent transcript.
            self._subagent_file = True
            if self._own_label is None:
                self._own_label = f"subagent:{record.agent_id}"
            return True
        return False

    def _label(self, record: Record, own: bool) -> str | None:
        if own:
            return self._own_label
        return f"subagent:{record.agent_id}" if record.agent_id else "sidechain"

    def _envelope(self, record: Record) -> None:
        if record.session_id and self.session_id is None:
            self.session_id = record.session_id
        if record.cwd:
            self.cwd = record.cwd
        if record.version:
            self.version = record.version

    # ----------------------------------------------------------------------------------------- records

    def _on_assistant(self, record: Record, events: list[Event]) -> None:
        message = record.message
        if message is None:
            return
        if not record.is_sidechain:
            own = True
            self._seen_main_chain = True
            agent = self._own_label
        else:
            own = self._is_own(record)
            agent = self._label(record, own)
        if record.cwd:
            self.cwd = record.cwd
        if self.session_id is None:
            self.session_id = record.session_id
        timestamp = record.timestamp or ""
        content = message.content
        model = message.model
        if record.is_api_error_message or model == "<synthetic>":
            text = _text_of(content).strip()
            if record.is_api_error_message or text.startswith("API Error"):
                status = record.api_error_status
                if status is None:
                    match = re.match(r"API Error:\s*(\d{3})", text)
                    status = int(match.group(1)) if match else None
                events.append(
                    ApiErrorEvent(
                        timestamp, agent, True, first_line(text) or str(record.error or ""), status
                    )
                )
                if own:
                    self.api_retry = None
                    self._abort_pending(timestamp, events, own_only=True)
                    self._base = TurnState.API_ERROR
                    self._last_kind = "error"
            return  # other synthetic messages ("No response requested.") are bookkeeping
        if model and own:
            self.model = model
        if message.usage is not None:
            self._account_usage(message.id, record.request_id, model or "unknown", message.usage)
        if own:
            self.api_retry = None
            self._base = TurnState.WORKING
            self._model_active = True
        if isinstance(content, str):
            if content.strip():
                events.append(AssistantTextEvent(timestamp, agent, content, message.id, model))
                if own:
                    self._last_kind = "text"
        elif content:
            for block in content:
                block_type = block.type
                if block_type == "text":
                    if block.text and block.text.strip():
                        events.append(AssistantTextEvent(timestamp, agent, block.text, message.id, model))
                        if own:
                            self._last_kind = "text"
                elif block_type == "tool_use" or block_type == "server_tool_use":
                    tool_id = block.id or ""
                    name = block.name or "?"
                    tool_input = block.input or {}
                    self._pending[tool_id] = _Pending(name, tool_input, timestamp, agent, own)
                    events.append(ToolCallEvent(timestamp, agent, tool_id, name, tool_input))
                    if own:
                        self._last_kind = "tool_use"
                elif block_type in ("thinking", "redacted_thinking"):
                    events.append(ThinkingEvent(timestamp, agent))
                    if own:
                        self._last_kind = "thinking"
                elif block_type.endswith("_tool_result"):
                    # server-side tool results (web_search_tool_result…) arrive inside the assistant message
                    pending = self._pending.pop(block.tool_use_id or "", None)
                    if pending is not None:
                        events.append(
                            ToolResultEvent(
                                timestamp,
                                agent,
                                block.tool_use_id or "",
                                pending.name,
                                pending.input,
                                TOOL_OK,
                            )
                        )
        if (
            own
            and message.stop_reason == "end_turn"
            and self._last_kind == "text"
            and not self._own_pending()
        ):
            self._base = TurnState.IDLE
            events.append(TurnEndEvent(timestamp, agent, "end_turn"))

    def _on_user(self, record: Record, events: list[Event]) -> None:
        message = record.message
        if message is None:
            return
        own = self._is_own(record)
        if own and not record.is_sidechain:
            self._seen_main_chain = True
        self._envelope(record)
        timestamp = record.timestamp or ""
        agent = self._label(record, own)
        content = message.content
        if record.is_compact_summary:
            events.append(CompactionEvent(timestamp, agent, "summary", self._compact_trigger))
            if own:
                # a manual /compact leaves the prompt idle; an automatic one continues the interrupted turn
                self._base = TurnState.IDLE if self._compact_trigger == "manual" else TurnState.WORKING
                self._last_kind = "compaction"
            return
        if isinstance(content, str):
            if not record.is_meta:
                self._on_user_text(content, timestamp, agent, own, events)
            return
        if not content:
            return
        has_result = False
        texts: list[str] = []
        for block in content:
            block_type = block.type
            if block_type == "tool_result":
                has_result = True
                self._on_tool_result(record, block, timestamp, agent, own, events)
            elif block_type == "text" and block.text:
                texts.append(block.text)
            elif block_type == "image":
                texts.append("[image]")
        if texts and not record.is_meta:
            text = "\n".join(texts)
            # next to tool results, only an interrupt marker is something the user said
            if not has_result or text.lstrip().startswith(_INTERRUPT_PREFIX):
                self._on_user_text(text, timestamp, agent, own, events)

    def _on_user_text(
        self, text: str, timestamp: str, agent: str | None, own: bool, events: list[Event]
    ) -> None:
        stripped = text.lstrip()
        if stripped.startswith(_INTERRUPT_PREFIX):
            during_tool = "for tool use" in stripped[:60]
            events.append(InterruptEvent(timestamp, agent, during_tool))
            if own:
                self._abort_pending(timestamp, events, own_only=True)
                self._base = TurnState.INTERRUPTED
                self._last_kind = "interrupt"
            return
        if stripped.startswith(("<local-command-stdout>", "<local-command-stderr>")):
            if own and not self._model_active and not self._own_pending() and self._base is TurnState.WORKING:
                self._base = TurnState.IDLE
                events.append(TurnEndEvent(timestamp, agent, "local_command"))
            return
        if stripped.startswith(
            ("<bash-stdout>", "<bash-stderr>", "<system-reminder>", "<local-command-caveat>")
        ):
            return
        source = "user"
        if stripped.startswith(("<command-name>", "<command-message>")):
            source = "command"
            text = _command_text(stripped)
        elif stripped.startswith("<bash-input>"):
            source = "bash"
            text = "!" + stripped[len("<bash-input>") :].split("</bash-input>", 1)[0]
        elif stripped.startswith("<task-notification>"):
            source = "task_notification"
            text = _task_notification_text(stripped)
        events.append(PromptEvent(timestamp, agent, text, source))
        if own:
            if source != "task_notification":
                self._abort_pending(timestamp, events, own_only=True)
            self._base = TurnState.WORKING
            self._model_active = False
            self._last_kind = "prompt"

    def _on_tool_result(
        self, record: Record, block: Block, timestamp: str, agent: str | None, own: bool, events: list[Event]
    ) -> None:
        tool_id = block.tool_use_id or ""
        pending = self._pending.pop(tool_id, None)
        name = pending.name if pending is not None else None
        details = None
        if name in _RESULT_BITS_TOOLS:
            details = _result_bits(record.tool_use_result)
        if block.is_error:
            outcome = classify_tool_result(raw_to_text(block.content), True)
        elif details is not None and details.get("interrupted"):
            outcome = ToolOutcome(True, FailureKind.INTERRUPTED, message="interrupted")
        else:
            outcome = TOOL_OK
        if pending is None:
            self.stats.orphan_results += 1
        if pending is not None and pending.agent is not None:
            agent = pending.agent
        events.append(
            ToolResultEvent(
                timestamp, agent, tool_id, name, pending.input if pending else None, outcome, details
            )
        )
        if own and pending is not None:  # a late result of an already aborted call changes nothing
            if self._base is not TurnState.INTERRUPTED or outcome.kind is not FailureKind.INTERRUPTED:
                self._base = TurnState.WORKING
            self._last_kind = "tool_result"

    def _on_system(self, record: Record, events: list[Event]) -> None:
        own = self._is_own(record)
        self._envelope(record)
        timestamp = record.timestamp or ""
        agent = self._label(record, own)
        subtype = record.subtype
        if subtype in ("stop_hook_summary", "turn_duration"):
            # Not trusted while a main-chain tool call is unanswered: a SubagentStop summary or a hook
            # running mid-turn must not end the turn.
            if own and self._base is TurnState.WORKING and not self._own_pending():
                self._base = TurnState.IDLE
            events.append(
                TurnEndEvent(
                    timestamp,
                    agent,
                    "stop_hook" if subtype == "stop_hook_summary" else "turn_duration",
                    record.duration_ms,
                )
            )
        elif subtype == "api_error":
            cause = record.cause if isinstance(record.cause, dict) else None
            error = record.error if isinstance(record.error, dict) else None
            message = ""
            status = None
            for source in (error, cause):
                if source:
                    message = message or str(source.get("message") or source.get("type") or "")
                    status = status or (
                        source.get("status") if isinstance(source.get("status"), int) else None
                    )
            event = ApiErrorEvent(
                timestamp, agent, False, message, status, record.retry_attempt, record.max_retries
            )
            events.append(event)
            if own:
                self.api_retry = event
        elif subtype == "compact_boundary":
            metadata = record.compact_metadata
            trigger = metadata.trigger if metadata else None
            self._compact_trigger = trigger
            events.append(
                CompactionEvent(
                    timestamp, agent, "boundary", trigger, metadata.pre_tokens if metadata else None
                )
            )
            if own:
                self._base = TurnState.COMPACTING
                self._last_kind = "compaction"
        elif subtype == "microcompact_boundary":
            events.append(CompactionEvent(timestamp, agent, "micro"))
        elif subtype == "local_command":
            content = record.content if isinstance(record.content, str) else ""
            if (
                own
                and content.lstrip().startswith("<local-command-std")
                and not self._model_active
                and not self._own_pending()
                and self._base is TurnState.WORKING
            ):
                self._base = TurnState.IDLE
                events.append(TurnEndEvent(timestamp, agent, "local_command"))

    def _on_attachment(self, record: Record, events: list[Event]) -> None:
        attachment = record.attachment
        if attachment is None or attachment.type != "queued_command":
            return
        prompt = attachment.prompt
        if isinstance(prompt, list):
            prompt = "\n".join(p.get("text", "") for p in prompt if isinstance(p, dict))
        if isinstance(prompt, str) and prompt.strip():
            own = self._is_own(record)
            events.append(PromptEvent(record.timestamp or "", self._label(record, own), prompt, "queued"))
            if own:
                self._base = TurnState.WORKING
                self._last_kind = "prompt"

    def _on_title(self, record: Record, events: list[Event]) -> None:
        for value in (record.custom_title, record.ai_title, record.summary):
            if isinstance(value, str) and value:
                self.title = value
                return

    def _on_cost_state(self, record: Record, events: list[Event]) -> None:
        if record.total_cost_usd is not None:
            self.reported_cost_usd = record.total_cost_usd

    # ------------------------------------------------------------------------------------------ internals

    def _own_pending(self) -> bool:
        return any(p.own for p in self._pending.values())

    def _abort_pending(self, timestamp: str, events: list[Event], own_only: bool) -> None:
        """Tool calls left without a result when their turn ended count as aborted (docs/transcripts.md, 'Tool results')."""
        if not self._pending:
            return
        for tool_id in [tid for tid, p in self._pending.items() if p.own or not own_only]:
            pending = self._pending.pop(tool_id)
            outcome = ToolOutcome(True, FailureKind.ABORTED, message="no result")
            events.append(
                ToolResultEvent(timestamp, pending.agent, tool_id, pending.name, pending.input, outcome)
            )

    def _could_be_idle(self) -> bool:
        return self._last_kind in ("text", "thinking") and not self._own_pending()

    def _derive_state(self) -> TurnState:
        base = self._base
        if base is TurnState.WORKING:
            for pending in self._pending.values():
                if pending.own and pending.name in _WAITING_TOOLS:
                    return TurnState.WAITING_INPUT
            if self._eof and self._could_be_idle():
                return TurnState.IDLE
            if self._own_label is not None and self._own_label.startswith("subagent:acompact"):
                return TurnState.COMPACTING
        return base

    def _emit_state_change(self, timestamp: str, events: list[Event]) -> None:
        new = self._derive_state()
        if new is not self._state:
            self._set_state(new, timestamp, events)

    def _set_state(self, new: TurnState, timestamp: str, events: list[Event]) -> None:
        events.append(StateChangeEvent(timestamp, self._state, new))
        self._state = new
        self.state_since = timestamp or self.state_since

    def _account_usage(
        self, message_id: str | None, request_id: str | None, model: str, usage: Usage
    ) -> None:
        values = _usage_tuple(usage)
        known = self._messages.get(message_id) if message_id is not None else None
        if known is not None and known[1] == values and known[0] == request_id:
            return  # next line of the same response, same usage: the common case since 2.1.98
        if message_id is None:
            self._add_usage(model, values, 1)
            return
        if known is None:
            self._messages[message_id] = [request_id, values, model]
            if len(self._messages) > self.max_tracked_messages:
                self._messages.popitem(last=False)
            self._add_usage(model, values, 1)
            return
        if known[0] is not None and request_id is not None and known[0] != request_id:
            return  # same response replayed under another request (/btw side question): counted already
        if sum(values) > sum(known[1]):
            self._add_usage(known[2], known[1], -1)
            self._add_usage(model, values, 1)
            known[1] = values
            known[2] = model

    def _add_usage(self, model: str, values: tuple[int, ...], sign: int) -> None:
        totals = self._usage.get(model)
        if totals is None:
            totals = self._usage[model] = [0, 0, 0, 0, 0]
        for index, value in enumerate(values):
            totals[index] += sign * value

    # ----------------------------------------------------------------------------------------- checkpoint

    def checkpoint(self) -> dict[str, Any]:
        """JSON-serialisable state for resuming after a daemon restart.

        Persist it together with (or instead of) :attr:`offset`; :meth:`from_checkpoint` followed by feeding
        the file from ``checkpoint["offset"]`` yields exactly the events a single uninterrupted parser would
        have produced after that point (pending tool calls, response usage and uuids are restored).
        """
        seen = list(self._seen)
        if len(seen) > self.checkpoint_max_uuids:
            seen = seen[-self.checkpoint_max_uuids :]
        return {
            "format": self.format,
            "version": _CHECKPOINT_VERSION,
            "offset": self.offset,
            "agent": self.agent,
            "own_label": self._own_label,
            "subagent_file": self._subagent_file,
            "seen_main_chain": self._seen_main_chain,
            "seen": seen,
            "pending": {
                tid: [p.name, _trim_input(p.input), p.timestamp, p.agent, p.own]
                for tid, p in self._pending.items()
            },
            "messages": [[mid, *entry] for mid, entry in self._messages.items()],
            "usage": self._usage,
            "base": self._base.value,
            "state": self._state.value,
            "state_since": self.state_since,
            "last_kind": self._last_kind,
            "model_active": self._model_active,
            "compact_trigger": self._compact_trigger,
            "session_id": self.session_id,
            "cwd": self.cwd,
            "version_cc": self.version,
            "model": self.model,
            "title": self.title,
            "reported_cost_usd": self.reported_cost_usd,
            "last_activity": self.last_activity,
            "api_retry": msgspec.to_builtins(self.api_retry),
            "stats": self.stats.to_dict(),
        }

    @classmethod
    def from_checkpoint(
        cls, data: dict[str, Any], *, max_line_bytes: int = MAX_LINE_BYTES
    ) -> TranscriptParser:
        """Rebuild a parser from :meth:`checkpoint`; feed the file from ``data["offset"]`` next."""
        if data.get("version") != _CHECKPOINT_VERSION:
            raise ValueError(f"unsupported transcript checkpoint version {data.get('version')!r}")
        parser = cls(agent=data.get("agent"), offset=int(data["offset"]), max_line_bytes=max_line_bytes)
        parser._own_label = data.get("own_label")
        parser._subagent_file = bool(data.get("subagent_file"))
        parser._seen_main_chain = bool(data.get("seen_main_chain"))
        parser._seen = dict.fromkeys(data.get("seen", ()))
        parser._pending = {
            tid: _Pending(name, tool_input, ts, agent, own)
            for tid, (name, tool_input, ts, agent, own) in data.get("pending", {}).items()
        }
        parser._messages = OrderedDict(
            (mid, [request_id, tuple(values), model])
            for mid, request_id, values, model in data.get("messages", ())
        )
        parser._usage = {model: list(values) for model, values in data.get("usage", {}).items()}
        parser._base = TurnState(data.get("base", "idle"))
        parser._state = TurnState(data.get("state", "idle"))
        parser.state_since = data.get("state_since")
        parser._last_kind = data.get("last_kind")
        parser._model_active = bool(data.get("model_active"))
        parser._compact_trigger = data.get("compact_trigger")
        parser.session_id = data.get("session_id")
        parser.cwd = data.get("cwd")
        parser.version = data.get("version_cc")
        parser.model = data.get("model")
        parser.title = data.get("title")
        parser.reported_cost_usd = data.get("reported_cost_usd")
        parser.last_activity = data.get("last_activity")
        if data.get("api_retry"):
            parser.api_retry = msgspec.convert(data["api_retry"], ApiErrorEvent)
        parser.stats = ParserStats(**data.get("stats", {}))
        return parser


def _trim_input(tool_input: dict[str, Any], limit: int = 1 << 20) -> dict[str, Any]:
    """Tool input for a checkpoint.  Kept whole (summaries count the lines of Edit/Write bodies, and a resumed
    parser must produce the same events); only pathological strings above ``limit`` characters are cut."""
    if all(not isinstance(v, str) or len(v) <= limit for v in tool_input.values()):
        return tool_input
    return {k: v[:limit] if isinstance(v, str) else v for k, v in tool_input.items()}


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _inputs_too_deep(blocks: list[Block]) -> bool:
    """Does a tool call's input nest deeper than :data:`MAX_NESTING`?  Level by level, never recursing."""
    for block in blocks:
        if not block.input or _SCALARS.issuperset(map(type, block.input.values())):
            continue  # the common case, a flat object, without a loop in Python
        level: list[Any] = [block.input]
        for _ in range(MAX_NESTING):
            deeper = []
            for container in level:
                for value in container.values() if type(container) is dict else container:
                    if type(value) is dict or type(value) is list:
                        deeper.append(value)
            if not deeper:
                break
            level = deeper
        else:
            return True
    return False


_TAG_RE_CACHE: dict[str, re.Pattern[str]] = {}


def _tag(text: str, name: str) -> str | None:
    pattern = _TAG_RE_CACHE.get(name)
    if pattern is None:
        pattern = _TAG_RE_CACHE[name] = re.compile(rf"<{name}>(.*?)</{name}>", re.DOTALL)
    match = pattern.search(text)
    return match.group(1).strip() if match else None


def _command_text(text: str) -> str:
    """``<command-name>/x</command-name>…<command-args>a</command-args>`` → ``/x a``."""
    name = _tag(text, "command-name") or _tag(text, "command-message") or ""
    if name and not name.startswith("/"):
        name = "/" + name
    args = _tag(text, "command-args") or ""
    return f"{name} {args}".strip()


def _task_notification_text(text: str) -> str:
    """``<task-notification>`` → ``<status>: <summary>``."""
    status = _tag(text, "status") or "done"
    summary = _tag(text, "summary") or _tag(text, "task-id") or ""
    return f"{status}: {summary}".strip()

