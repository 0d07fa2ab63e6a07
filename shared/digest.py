"""Compact a Claude Code transcript into a digest a coordinator agent can afford to read on every turn.

Why: raw transcripts are megabytes of tool output and thinking; a coordinator needs to know what a worker is
doing, what it touched and what went wrong, in a few hundred tokens.  This module turns the events of
:class:`shared.transcript.parser.TranscriptParser` into one-line :class:`DigestEntry` objects and keeps a
count-based window per session plus the session's state, token totals and an escalation flag.

It is pure (no I/O, no clock: callers pass ``now``) and imports only attrs/msgspec/orjson, so the CLI's
``maestroctl digest FILE`` can load it lazily and quickly.

Modes (same entry model):

* ``tools`` (default) - one line per step: ``Read: src/api.py``, ``Edit: src/api.py (+8 -2)``,
  ``Write: app.py (12 lines)``, ``Bash: npm test ✗ exit 1 — <first error line>``, ``Grep: "def add" src/``,
  ``Task(Explore): <description>``, ``TodoWrite: 3/7 done``, the first sentence of assistant text,
  ``[PROMPT] …``.  Thinking appears only as a live marker, tool outputs and file bodies never, consecutive
  duplicates collapse (``×3``) and paths keep their last two segments.
* ``text`` - only the agent's own words and the user prompts.

Tool calls become entries when their result arrives (so an entry never changes its text); calls still
running are reported separately in :attr:`DigestWindow.running`, like the thinking marker.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any

import attrs

from shared.transcript.parser import (
    NON_AGENT_FAILURES,
    ApiErrorEvent,
    AssistantTextEvent,
    CompactionEvent,
    Event,
    FailureKind,
    InterruptEvent,
    PromptEvent,
    StateChangeEvent,
    ThinkingEvent,
    TokenUsage,
    ToolCallEvent,
    ToolOutcome,
    ToolResultEvent,
    TranscriptParser,
    TurnState,
    agent_label_for_path,
    estimate_cost_usd,
    parse_timestamp,
)

__all__ = [
    "MODES",
    "Attention",
    "DigestConfig",
    "DigestEntry",
    "DigestUpdate",
    "DigestWindow",
    "Escalator",
    "SessionDigest",
    "agent_label_for_path",
    "digest_bytes",
    "entry_line",
    "render_text",
    "short_path",
    "summarize_tool_call",
]

MODES = ("tools", "text")

#: Entry kinds: ``prompt`` (user prompt / slash command), ``text`` (assistant words), ``tool`` (a finished
#: tool call), ``task`` (a finished Task/Agent call or a background-task notification), ``interrupt``,
#: ``api_error`` (given up), ``api_retry`` (transient), ``compaction``.
PROMPT = "prompt"
TEXT = "text"
TOOL = "tool"
INTERRUPT = "interrupt"
API_ERROR = "api_error"
API_RETRY = "api_retry"
COMPACTION = "compaction"
TASK = "task"

MAX_SUMMARY = 120
#: Characters of a Bash command kept in a summary (at least 40, so a command stays recognisable).
BASH_CHARS = 56
#: Characters of a prompt / assistant sentence kept.
TEXT_CHARS = 96
ARG_CHARS = 40

_TEXT_KINDS = frozenset({PROMPT, TEXT})


# --------------------------------------------------------------------------------------------------------
# Entry model


@attrs.define(slots=True, eq=False)
class DigestEntry:
    """One digest line.  ``count`` > 1 means that many consecutive identical steps (rendered ``×N``);
    ``timestamp`` is then the latest one.  ``agent`` is ``None`` for the session's own agent and
    ``subagent:<id>`` / ``sidechain`` for subagent steps.  ``seq`` numbers entries per mode from 0, so a
    follower can ask for "everything after seq N"."""

    timestamp: str
    kind: str
    summary: str
    tool: str | None = None
    is_error: bool = False
    count: int = 1
    agent: str | None = None
    seq: int = 0

    def same_step(self, other: DigestEntry) -> bool:
        return (
            self.summary == other.summary
            and self.kind == other.kind
            and self.is_error == other.is_error
            and self.agent == other.agent
            and self.tool == other.tool
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "timestamp": self.timestamp,
            "kind": self.kind,
            "summary": self.summary,
            "tool": self.tool,
            "is_error": self.is_error,
            "count": self.count,
            "agent": self.agent,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DigestEntry:
        return cls(
            timestamp=data["timestamp"],
            kind=data["kind"],
            summary=data["summary"],
            tool=data.get("tool"),
            is_error=bool(data.get("is_error")),
            count=int(data.get("count", 1)),
            agent=data.get("agent"),
            seq=int(data.get("seq", 0)),
        )


# --------------------------------------------------------------------------------------------------------
# Summaries

_SENTENCE_MARKS = ((". ", 23), ("! ", 23), ("? ", 23), (".\t", 23), ("。", 8), ("！", 8), ("？", 8))
_MARKUP_RE = re.compile(r"\*\*|__|`")


def _clip(text: str, limit: int) -> str:
    """Whitespace-collapsed ``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    text = " ".join(text[: limit * 4].split())  # a prefix suffices: collapsing only shortens
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def short_path(path: Any) -> str:
    """Last two segments of a path (``/home/u/proj/src/api.py`` → ``src/api.py``): enough to recognise a
    file, short enough for a digest line.  A trailing slash (a directory) is kept."""
    if not isinstance(path, str) or not path:
        return "?"
    parts = [p for p in re.split(r"[/\\]", path) if p]
    if not parts:
        return path
    tail = "/" if path.endswith(("/", "\\")) else ""
    if len(parts) <= 2 and not path.startswith(("/", "\\")) and ":" not in parts[0]:
        return "/".join(parts) + tail
    return "/".join(parts[-2:]) + tail


def _line_count(text: Any) -> int:
    if not isinstance(text, str) or not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def first_sentence(text: str, limit: int = TEXT_CHARS) -> str:
    """First sentence of an assistant message, clipped to ``limit``.

    Markdown markup is removed; a heading is skipped when a paragraph follows it (``## Summary`` says
    nothing); a filler opener (``Perfect!``, ``Done.``) is extended by the next sentence.
    """
    lines: list[str] = []
    position = 0
    size = len(text)
    while position < size and len(lines) < 2:
        newline = text.find("\n", position)
        if newline < 0:
            newline = size
        line = text[position : min(newline, position + 2000)].strip()
        position = newline + 1
        if (
            not line
            or line.startswith("```")
            or not line.strip(_RULE_STRIP)
            or (line[0] == "<" and _TAG_LINE_RE.match(line))
        ):
            continue
        lines.append(line)
    if not lines:
        return ""
    if lines[0].startswith("#") and len(lines) > 1 and not lines[1].startswith("#"):
        lines.pop(0)
    line = lines[0][: limit * 3]
    if "*" in line or "`" in line or "_" in line:
        line = _MARKUP_RE.sub("", line)
    line = line.lstrip("#>*-•+ ").strip()
    if not line:
        return ""
    end = len(line)
    for mark, shortest in _SENTENCE_MARKS:
        index = line.find(mark, shortest)  # a shorter "sentence" is a filler opener (Perfect!): keep going
        if index != -1 and index + 1 < end:
            end = index + 1
    return _clip(line[:end], limit)


_RULE_STRIP = "-*_=#|: "
_TAG_LINE_RE = re.compile(r"^</?[\w-]+>$")


def _scalar_args(tool_input: dict[str, Any], limit: int = ARG_CHARS) -> str:
    parts = []
    for key, value in tool_input.items():
        if isinstance(value, (str, int, float, bool)) and value != "":
            parts.append(f"{key}={value}")
        if len(parts) == 2:
            break
    return _clip(" ".join(parts), limit)


def _summarize_bash(tool_input: dict[str, Any]) -> str:
    command = _clip(str(tool_input.get("command", "")), BASH_CHARS)
    background = " (bg)" if tool_input.get("run_in_background") else ""
    return f"Bash: {command}{background}"


def _summarize_edit(tool_input: dict[str, Any]) -> str:
    added = _line_count(tool_input.get("new_string"))
    removed = _line_count(tool_input.get("old_string"))
    return f"Edit: {short_path(tool_input.get('file_path'))} (+{added} -{removed})"


def _summarize_multi_edit(tool_input: dict[str, Any]) -> str:
    edits = tool_input.get("edits")
    added = removed = 0
    if isinstance(edits, list):
        for edit in edits:
            if isinstance(edit, dict):
                added += _line_count(edit.get("new_string"))
                removed += _line_count(edit.get("old_string"))
    return f"MultiEdit: {short_path(tool_input.get('file_path'))} (+{added} -{removed})"


def _summarize_write(tool_input: dict[str, Any]) -> str:
    return (
        f"Write: {short_path(tool_input.get('file_path'))} ({_line_count(tool_input.get('content'))} lines)"
    )


def _summarize_grep(tool_input: dict[str, Any]) -> str:
    pattern = _clip(str(tool_input.get("pattern", "")), ARG_CHARS)
    where = tool_input.get("path")
    scope = short_path(where) if where else str(tool_input.get("glob") or tool_input.get("type") or "")
    return f'Grep: "{pattern}" {scope}'.rstrip()


def _summarize_glob(tool_input: dict[str, Any]) -> str:
    where = tool_input.get("path")
    scope = f" {short_path(where)}" if where else ""
    return f"Glob: {_clip(str(tool_input.get('pattern', '')), ARG_CHARS)}{scope}"


def _summarize_task(name: str, tool_input: dict[str, Any]) -> str:
    kind = tool_input.get("subagent_type")
    label = f"{name}({kind})" if kind else name
    description = tool_input.get("description") or tool_input.get("prompt") or ""
    background = " (bg)" if tool_input.get("run_in_background") else ""
    return f"{label}: {_clip(str(description), 60)}{background}"


def _summarize_todo(tool_input: dict[str, Any]) -> str:
    todos = tool_input.get("todos")
    if not isinstance(todos, list):
        return "TodoWrite"
    done = sum(1 for t in todos if isinstance(t, dict) and t.get("status") == "completed")
    return f"TodoWrite: {done}/{len(todos)} done"


def _summarize_question(tool_input: dict[str, Any]) -> str:
    questions = tool_input.get("questions")
    text = ""
    if isinstance(questions, list) and questions and isinstance(questions[0], dict):
        text = str(questions[0].get("question", ""))
    return f"AskUserQuestion: {_clip(text, 80)}"


def _summarize_plan(tool_input: dict[str, Any]) -> str:
    return f"ExitPlanMode: {first_sentence(str(tool_input.get('plan', '')), 80)}"


def _summarize_url(tool_input: dict[str, Any]) -> str:
    url = re.sub(r"^https?://(www\.)?", "", str(tool_input.get("url", "")))
    return f"WebFetch: {_clip(url, 60)}"


def summarize_tool_call(name: str, tool_input: dict[str, Any] | None) -> str:
    """One-line description of a tool call (without its outcome).  Unknown tools show ``Name: k=v k=v``."""
    args = tool_input if isinstance(tool_input, dict) else {}
    simple = _SUMMARIZERS.get(name)
    if simple is not None:
        return simple(args)
    if name in ("Task", "Agent"):
        return _summarize_task(name, args)
    if name == "WebSearch":
        return f'WebSearch: "{_clip(str(args.get("query", "")), 60)}"'
    if name in ("Read", "NotebookRead"):
        return f"Read: {short_path(args.get('file_path') or args.get('notebook_path'))}"
    if name == "NotebookEdit":
        return f"NotebookEdit: {short_path(args.get('notebook_path'))} ({args.get('edit_mode') or 'replace'})"
    if name == "Skill":
        return f"Skill: {_clip(str(args.get('skill') or args.get('command') or ''), 60)}"
    if name == "TaskCreate":
        return f"TaskCreate: {_clip(str(args.get('subject', '')), 60)}"
    if name == "TaskUpdate":
        return f"TaskUpdate: #{args.get('taskId', '?')} {args.get('status', '')}".rstrip()
    if name in ("BashOutput", "KillBash", "KillShell", "TaskOutput", "TaskStop", "TaskGet"):
        ident = args.get("bash_id") or args.get("shell_id") or args.get("task_id") or args.get("taskId") or ""
        return f"{name}: {ident}".rstrip(": ")
    if name.startswith("mcp__"):
        parts = name.split("__")
        label = "/".join(parts[1:]) if len(parts) > 2 else name
        return f"{label} {_scalar_args(args)}".rstrip()
    rendered = _scalar_args(args)
    return f"{name}: {rendered}" if rendered else name


_SUMMARIZERS = {
    "Bash": _summarize_bash,
    "Edit": _summarize_edit,
    "MultiEdit": _summarize_multi_edit,
    "Write": _summarize_write,
    "Grep": _summarize_grep,
    "Glob": _summarize_glob,
    "TodoWrite": _summarize_todo,
    "AskUserQuestion": _summarize_question,
    "ExitPlanMode": _summarize_plan,
    "WebFetch": _summarize_url,
}


def _outcome_suffix(outcome: ToolOutcome, details: dict[str, Any] | None = None) -> str:
    if not outcome.failed:
        if details and details.get("status") == "async_launched":
            return " (bg)"
        if details and details.get("total_tokens"):
            seconds = int((details.get("total_duration_ms") or 0) / 1000)
            return f" ({_tokens(int(details['total_tokens']))} tok, {_duration(seconds)})"
        return ""
    kind = outcome.kind
    if kind is FailureKind.EXIT:
        detail = f" — {outcome.message}" if outcome.message else ""
        return f" ✗ exit {outcome.exit_code}{detail}"
    if kind in (FailureKind.REJECTED, FailureKind.CANCELLED, FailureKind.INTERRUPTED, FailureKind.ABORTED):
        return f" ✗ {kind.value}"
    return f" ✗ {outcome.message or (kind.value if kind else 'error')}"


def _tool_summary(
    name: str | None,
    tool_input: dict[str, Any] | None,
    outcome: ToolOutcome,
    details: dict[str, Any] | None = None,
) -> str:
    """Call summary plus outcome, within :data:`MAX_SUMMARY`: the error detail is shortened first, so the
    command or path (what a reader needs to recognise the step) survives."""
    base = summarize_tool_call(name or "?", tool_input)
    suffix = _outcome_suffix(outcome, details)
    if suffix == " (bg)" and base.endswith(" (bg)"):
        suffix = ""
    if len(base) + len(suffix) > MAX_SUMMARY:
        suffix = " " + _clip(suffix, max(16, MAX_SUMMARY - len(base) - 1))
        if len(base) + len(suffix) > MAX_SUMMARY:
            base = _clip(base, MAX_SUMMARY - len(suffix))
    return base + suffix


# --------------------------------------------------------------------------------------------------------
# Escalation


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
            return Attention(True, f"API error: {_clip(self.api_gave_up, 100)}", "api_error")
        waiting_since = parse_timestamp(self.waiting_since)
        if state is TurnState.WAITING_INPUT and waiting_since is not None and now is not None:
            waited = now - waiting_since
            if waited > self.waiting_input_seconds:
                return Attention(True, f"waiting for input for {_duration(waited)}", "waiting_input")
        if self.is_stuck(now, state):
            since = parse_timestamp(self.last_text_at) or 0.0
            quiet = _duration((now or since) - since)
            return Attention(
                True, f"stuck: {self.tool_calls_since_text} tool calls without text for {quiet}", "stuck"
            )
        return Attention()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


# --------------------------------------------------------------------------------------------------------
# Window and builder


#: The :class:`Escalator` fields that are configuration (from :class:`DigestConfig`), not state.
_THRESHOLDS = ("failure_threshold", "stuck_tool_calls", "stuck_seconds", "waiting_input_seconds")


@attrs.frozen(slots=True)
class DigestConfig:
    """Tunables.  ``retain``: entries kept per mode (``None`` keeps all - offline use only)."""

    retain: int | None = 500
    failure_threshold: int = 3
    stuck_tool_calls: int = 25
    stuck_seconds: float = 600.0
    waiting_input_seconds: float = 300.0
    #: a turn that ended with text counts as idle after this many quiet seconds (live use)
    idle_after_seconds: float = 5.0
    #: include subagent steps (inline sidechains / subagent files fed to this digest) in ``tools`` mode
    include_subagents: bool = True

    def escalator(self) -> Escalator:
        return Escalator(**{name: getattr(self, name) for name in _THRESHOLDS})


@attrs.frozen(slots=True)
class DigestWindow:
    """What a coordinator (or ``maestroctl digest``) sees for one session at one moment."""

    mode: str
    entries: tuple[DigestEntry, ...]
    total_entries: int
    state: str
    state_since: str | None
    needs_attention: bool
    attention_reason: str | None
    stuck: bool
    usage: TokenUsage
    cost_usd: float
    reported_cost_usd: float | None
    #: tool calls without a result yet, as summaries (``Bash: npm test``), oldest first
    running: tuple[str, ...]
    #: timestamp of the thinking block the agent is currently in, if its newest step is thinking
    thinking_since: str | None
    last_activity: str | None
    title: str | None
    session_id: str | None
    agent: str | None
    model: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "session_id": self.session_id,
            "agent": self.agent,
            "title": self.title,
            "model": self.model,
            "state": self.state,
            "state_since": self.state_since,
            "needs_attention": self.needs_attention,
            "attention_reason": self.attention_reason,
            "stuck": self.stuck,
            "last_activity": self.last_activity,
            "running": list(self.running),
            "thinking_since": self.thinking_since,
            "total_entries": self.total_entries,
            "usage": self.usage.to_dict(),
            "cost_usd": round(self.cost_usd, 6),
            "reported_cost_usd": self.reported_cost_usd,
            "entries": [entry.to_dict() for entry in self.entries],
        }


@attrs.frozen(slots=True)
class DigestUpdate:
    """What one :meth:`SessionDigest.feed` changed: new entries, entries whose ``count`` grew (per mode),
    whether the turn state changed, and the new :class:`Attention` if it changed (send
    ``session.needs_attention`` immediately when ``attention`` is set and ``needs_attention`` is true)."""

    events: list[Event]
    appended: dict[str, list[DigestEntry]]
    updated: dict[str, list[DigestEntry]]
    state_changed: bool
    attention: Attention | None

    @property
    def changed(self) -> bool:
        return bool(
            self.state_changed
            or self.attention is not None
            or any(self.appended.values())
            or any(self.updated.values())
        )


class _EntryLog:
    """Entries of one mode: a bounded deque plus the running total, collapsing consecutive duplicates."""

    __slots__ = ("entries", "total")

    def __init__(self, retain: int | None) -> None:
        self.entries: deque[DigestEntry] = deque(maxlen=retain)
        self.total = 0

    def add(self, entry: DigestEntry, appended: list[DigestEntry], updated: list[DigestEntry]) -> None:
        entries = self.entries
        if entries:
            last = entries[-1]
            if last.same_step(entry):
                last.count += entry.count
                last.timestamp = entry.timestamp
                if not any(e is last for e in appended) and not any(e is last for e in updated):
                    updated.append(last)
                return
        entry.seq = self.total
        self.total += 1
        entries.append(entry)
        appended.append(entry)


class SessionDigest:
    """Incremental digest of one transcript: owns a :class:`TranscriptParser` and an :class:`Escalator`.

    The daemon keeps one per Claude session, calls :meth:`feed` with new bytes of the main transcript and
    :meth:`feed_subagent` with new bytes of ``<session>/subagents/agent-<id>.jsonl`` files, and serves
    :meth:`window`.  ``agent`` labels the main parser (leave ``None`` for a session's main transcript; use
    ``subagent:<id>`` to digest a subagent file on its own).
    """

    def __init__(
        self,
        *,
        agent: str | None = None,
        config: DigestConfig | None = None,
        parser: TranscriptParser | None = None,
    ) -> None:
        self.config = config or DigestConfig()
        self.parser = parser or TranscriptParser(agent=agent)
        self.escalator = self.config.escalator()
        self._logs = {mode: _EntryLog(self.config.retain) for mode in MODES}
        self._thinking_since: str | None = None
        self._attention = Attention()
        #: one parser per subagent transcript of this session, by label (``subagent:<agentId>``)
        self.subagents: dict[str, TranscriptParser] = {}

    # ---------------------------------------------------------------------------------------------- input

    def feed(self, data: bytes, now: float | None = None) -> DigestUpdate:
        """Parse ``data`` (the next bytes of the file) and update entries, state and attention."""
        return self.apply(self.parser.feed(data), now)

    def finish(self, now: float | None = None) -> DigestUpdate:
        """End of a closed file (offline digests): see :meth:`TranscriptParser.finish`."""
        return self.apply(self.parser.finish(), now)

    def feed_subagent(self, agent: str, data: bytes, now: float | None = None) -> DigestUpdate:
        """Parse the next bytes of one of this session's subagent transcripts.

        ``agent`` is the file's label (:func:`agent_label_for_path`); resume reading that file at
        ``digest.subagents[agent].offset``.  Its steps appear in ``tools`` mode marked as subagent steps (not
        in ``text`` mode, not in escalation), its tokens are added to the session's usage, and a running
        compaction worker (``subagent:acompact-…``) shows the session as ``compacting``.
        """
        parser = self.subagents.get(agent)
        if parser is None:
            parser = self.subagents[agent] = TranscriptParser(agent=agent)
        return self.apply(parser.feed(data), now, main=False)

    def apply(self, events: Iterable[Event], now: float | None = None, *, main: bool = True) -> DigestUpdate:
        """Fold parser events into the digest.  ``main=False`` for events of another parser (a subagent
        file): their state changes are not the session's."""
        events = list(events)
        appended: dict[str, list[DigestEntry]] = {mode: [] for mode in MODES}
        updated: dict[str, list[DigestEntry]] = {mode: [] for mode in MODES}
        tools_log = self._logs["tools"]
        text_log = self._logs["text"]
        own_agent = self.parser.own_agent
        include_subagents = self.config.include_subagents
        state_changed = False
        escalator = self.escalator
        for event in events:
            cls = type(event)
            if cls is StateChangeEvent:
                if main:
                    state_changed = True
                    escalator.observe(event)
                continue
            agent = getattr(event, "agent", None)
            own = agent == own_agent
            entry: DigestEntry | None = None
            if cls is ToolCallEvent:
                if own:
                    self._thinking_since = None
                    escalator.observe(event)
                continue
            if cls is ToolResultEvent:
                assert isinstance(event, ToolResultEvent)
                outcome = event.outcome
                if event.name is None and not outcome.failed:
                    continue  # result of a call we never saw (resumed without checkpoint): nothing to say
                summary = _tool_summary(event.name, event.input, outcome, event.details)
                kind = TASK if event.name == "Task" or event.name == "Agent" else TOOL
                entry = DigestEntry(event.timestamp, kind, summary, event.name, outcome.failed, agent=agent)
                if own:
                    escalator.observe(event, summary)
            elif cls is AssistantTextEvent:
                assert isinstance(event, AssistantTextEvent)
                sentence = first_sentence(event.text)
                if sentence:
                    entry = DigestEntry(event.timestamp, TEXT, sentence, agent=agent)
                if own:
                    self._thinking_since = None
                    escalator.observe(event)
            elif cls is ThinkingEvent:
                if own and self._thinking_since is None:
                    self._thinking_since = event.timestamp
                continue
            elif cls is PromptEvent:
                assert isinstance(event, PromptEvent)
                if event.source == "task_notification":
                    entry = DigestEntry(
                        event.timestamp, TASK, "[TASK] " + _clip(event.text, TEXT_CHARS), agent=agent
                    )
                else:
                    entry = DigestEntry(
                        event.timestamp, PROMPT, "[PROMPT] " + _clip(event.text, TEXT_CHARS), agent=agent
                    )
                if own:
                    self._thinking_since = None
                    escalator.observe(event)
            elif cls is InterruptEvent:
                entry = DigestEntry(event.timestamp, INTERRUPT, "[INTERRUPTED]", agent=agent)
                if own:
                    self._thinking_since = None
            elif cls is ApiErrorEvent:
                assert isinstance(event, ApiErrorEvent)
                if event.final:
                    message = "[API ERROR] " + _clip(event.message, 100)
                    entry = DigestEntry(event.timestamp, API_ERROR, message, is_error=True, agent=agent)
                    if own:
                        escalator.observe(event)
                else:
                    detail = _clip(event.message, 60) if event.message else "retrying"
                    entry = DigestEntry(event.timestamp, API_RETRY, f"[API RETRY] {detail}", agent=agent)
            elif cls is CompactionEvent:
                assert isinstance(event, CompactionEvent)
                if event.phase != "boundary":
                    continue
                size = f" {event.pre_tokens // 1000}k tokens" if event.pre_tokens else ""
                summary = " ".join(f"[COMPACTED] {event.trigger or ''}{size}".split())
                entry = DigestEntry(event.timestamp, COMPACTION, summary, agent=agent)
            if entry is None:
                continue
            if own or (include_subagents and entry.kind not in _TEXT_KINDS):
                # subagent narration and the subagent's prompt (the Task prompt again) are left out
                tools_log.add(entry, appended["tools"], updated["tools"])
            if own and entry.kind in _TEXT_KINDS:
                text_entry = DigestEntry(
                    entry.timestamp, entry.kind, entry.summary, entry.tool, entry.is_error, agent=agent
                )
                text_log.add(text_entry, appended["text"], updated["text"])
        attention = self.attention(now)
        attention_change = None
        if not attention.same_verdict(self._attention):
            attention_change = attention
        self._attention = attention
        return DigestUpdate(events, appended, updated, state_changed, attention_change)

    # --------------------------------------------------------------------------------------------- output

    def _now(self, now: float | None) -> float | None:
        return now if now is not None else parse_timestamp(self.parser.last_activity)

    def state(self, now: float | None = None) -> TurnState:
        """Turn state; with ``now`` the idle timeout of :class:`DigestConfig` applies.  A compaction worker
        writing more recently than the main transcript makes a working or idle session ``compacting``."""
        parser = self.parser
        state = parser.state if now is None else parser.state_at(now, self.config.idle_after_seconds)
        if state in (TurnState.WORKING, TurnState.IDLE):
            main_activity = parser.last_activity or ""
            for label, sub in self.subagents.items():
                if not label.startswith("subagent:acompact") or (sub.last_activity or "") <= main_activity:
                    continue
                sub_state = sub.state if now is None else sub.state_at(now, self.config.idle_after_seconds)
                if sub_state is TurnState.COMPACTING:
                    return TurnState.COMPACTING
        return state

    def usage_by_model(self) -> dict[str, TokenUsage]:
        """Tokens of the main transcript plus every subagent transcript fed to this digest, per model."""
        merged = dict(self.parser.usage_by_model)
        for sub in self.subagents.values():
            for model, usage in sub.usage_by_model.items():
                merged[model] = merged[model] + usage if model in merged else usage
        return merged

    def attention(self, now: float | None = None) -> Attention:
        """Current escalation verdict (``now`` defaults to the newest record's time)."""
        return self.escalator.evaluate(self._now(now), self.state(now))

    @property
    def last_attention(self) -> Attention:
        """The verdict of the last :meth:`feed` / :meth:`apply` / :meth:`poll` (what changes are reported
        against)."""
        return self._attention

    def poll(self, now: float) -> Attention | None:
        """Re-evaluate time-based rules (stuck, waiting too long) without new bytes; returns the new
        :class:`Attention` if it changed since the last feed/poll."""
        attention = self.attention(now)
        previous, self._attention = self._attention, attention
        return None if attention.same_verdict(previous) else attention

    def entries(self, mode: str = "tools") -> list[DigestEntry]:
        """All retained entries of ``mode``."""
        return list(self._logs[_check_mode(mode)].entries)

    def total_entries(self, mode: str = "tools") -> int:
        """Entries ever made in ``mode`` (retained or not): the next entry's ``seq``."""
        return self._logs[_check_mode(mode)].total

    def window(self, mode: str = "tools", last: int | None = 20, now: float | None = None) -> DigestWindow:
        """The last ``last`` entries (``None``: all retained) with the session's aggregates."""
        log = self._logs[_check_mode(mode)]
        entries = tuple(log.entries) if last is None else tuple(list(log.entries)[-last:] if last > 0 else ())
        parser = self.parser
        state = self.state(now)
        clock = self._now(now)
        attention = self.escalator.evaluate(clock, state)
        calls = parser.pending_calls()
        if self.config.include_subagents:
            for sub in self.subagents.values():
                calls += sub.pending_calls()
        running = tuple(
            summarize_tool_call(name, tool_input)
            for _tid, name, tool_input, _ts, agent in calls
            if agent == parser.own_agent or self.config.include_subagents
        )
        usage_by_model = self.usage_by_model()
        return DigestWindow(
            mode=mode,
            entries=entries,
            total_entries=log.total,
            state=state.value,
            state_since=parser.state_since,
            needs_attention=attention.needs_attention,
            attention_reason=attention.reason,
            stuck=self.escalator.is_stuck(clock, state),
            usage=sum(usage_by_model.values(), TokenUsage()),
            cost_usd=estimate_cost_usd(usage_by_model)[0],
            reported_cost_usd=parser.reported_cost_usd,
            running=running if mode == "tools" else (),
            thinking_since=self._thinking_since if state is TurnState.WORKING and mode == "tools" else None,
            last_activity=parser.last_activity,
            title=parser.title,
            session_id=parser.session_id,
            agent=parser.own_agent,
            model=parser.model,
        )

    # ------------------------------------------------------------------------------------------ checkpoint

    def checkpoint(self) -> dict[str, Any]:
        """JSON-serialisable state (parser checkpoint, retained entries, escalator) for daemon restarts."""
        return {
            "parser": self.parser.checkpoint(),
            "subagents": {label: sub.checkpoint() for label, sub in self.subagents.items()},
            "logs": {
                mode: {"total": log.total, "entries": [e.to_dict() for e in log.entries]}
                for mode, log in self._logs.items()
            },
            "escalator": self.escalator.to_dict(),
            "thinking_since": self._thinking_since,
            "attention": [self._attention.needs_attention, self._attention.reason, self._attention.kind],
        }

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any], config: DigestConfig | None = None) -> SessionDigest:
        """Restore from :meth:`checkpoint`; then feed the main file from ``digest.parser.offset`` and each
        subagent file from ``digest.subagents[label].offset``."""
        digest = cls(config=config, parser=TranscriptParser.from_checkpoint(data["parser"]))
        digest.subagents = {
            label: TranscriptParser.from_checkpoint(saved)
            for label, saved in (data.get("subagents") or {}).items()
        }
        for mode, saved in data.get("logs", {}).items():
            log = digest._logs[_check_mode(mode)]
            log.total = int(saved.get("total", 0))
            log.entries.extend(DigestEntry.from_dict(e) for e in saved.get("entries", ()))
        # thresholds come from the (possibly new) config, counters from the checkpoint
        fields = {f.name for f in attrs.fields(Escalator)}.difference(_THRESHOLDS)
        saved_escalator = data.get("escalator") or {}
        digest.escalator = attrs.evolve(
            digest.escalator, **{k: v for k, v in saved_escalator.items() if k in fields}
        )
        digest._thinking_since = data.get("thinking_since")
        needs, reason, kind = ([*list(data.get("attention") or ()), False, None, None])[:3]
        digest._attention = Attention(bool(needs), reason, kind)
        return digest


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown digest mode {mode!r} (expected one of {', '.join(MODES)})")
    return mode


# --------------------------------------------------------------------------------------------------------
# Rendering and convenience


def _clock(timestamp: str, tz: tzinfo | None) -> str:
    if tz is UTC and len(timestamp) >= 19 and timestamp.endswith("Z"):
        return timestamp[11:19]
    epoch = parse_timestamp(timestamp)
    if epoch is None:
        return "--:--:--"
    return datetime.fromtimestamp(epoch, tz).strftime("%H:%M:%S")


def _tokens(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return str(value)


def entry_line(entry: DigestEntry, own_agent: str | None, tz: tzinfo | None = None) -> str:
    """``14:32:05 ↳ Read: src/api.py ×2``: time, ``↳`` for a step of another agent than ``own_agent`` (a
    subagent), the summary and ``×N`` for repeats."""
    marker = "↳ " if entry.agent is not None and entry.agent != own_agent else ""
    repeat = f" ×{entry.count}" if entry.count > 1 else ""
    return f"{_clock(entry.timestamp, tz)} {marker}{entry.summary}{repeat}"


def render_text(window: DigestWindow, *, tz: tzinfo | None = None, header: bool = True) -> str:
    """Human/agent-readable digest: ``14:32:05 Read: src/api.py`` per entry (``✗`` marks failures, ``×N``
    repeats, ``↳`` subagent steps), then running tools and the thinking marker.  ``tz=None`` renders local
    time; pass ``datetime.UTC`` for reproducible output."""
    lines: list[str] = []
    if header:
        usage = window.usage
        parts = [window.state]
        if window.needs_attention:
            parts.append(f"⚠ {window.attention_reason}")
        elif window.stuck:
            parts.append("stuck")
        shown = f"{len(window.entries)}/{window.total_entries}"
        parts.append(f"{shown} {window.mode}")
        parts.append(
            f"tok in {_tokens(usage.input_tokens)} out {_tokens(usage.output_tokens)}"
            f" cache {_tokens(usage.cache_read_tokens)}r/{_tokens(usage.cache_creation_tokens)}w"
            f" ≈${window.cost_usd:.2f}"
        )
        lines.append("# " + " · ".join(parts))
    lines.extend(entry_line(entry, window.agent, tz) for entry in window.entries)
    if window.last_activity:
        clock = _clock(window.last_activity, tz)
        for summary in window.running:
            lines.append(f"{clock} … {summary}")
        if window.thinking_since:
            lines.append(f"{_clock(window.thinking_since, tz)} … [THINKING]")
    return "\n".join(lines) + "\n"


def digest_bytes(
    data: bytes,
    mode: str = "tools",
    last: int | None = 20,
    *,
    agent: str | None = None,
    config: DigestConfig | None = None,
    now: float | None = None,
) -> DigestWindow:
    """Digest a whole (closed) transcript held in memory - what ``maestroctl digest FILE`` calls.

    ``last=None`` returns every entry.  ``now`` defaults to the newest record's time, so offline digests
    of old files do not report them as stuck because of today's date."""
    _check_mode(mode)
    base = config or DigestConfig()
    retain = None if last is None else max(last, 1)
    digest = SessionDigest(agent=agent, config=attrs.evolve(base, retain=retain))
    digest.feed(data)
    digest.finish()
    return digest.window(mode, last, now)
