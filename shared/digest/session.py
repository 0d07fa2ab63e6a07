"""Compact an agent's transcript into a digest a coordinator agent can afford to read on every turn.

Why: raw transcripts are megabytes of tool output and thinking; a coordinator needs to know what a worker is
doing, what it touched and what went wrong, in a few hundred tokens.  This module turns the events of
a transcript adapter (the common model of :mod:`shared.transcript.events`, whatever the agent) into
one-line :class:`DigestEntry` objects and keeps a count-based window per session plus the session's state,
token totals and an escalation flag.

It is pure (no I/O, no clock: callers pass ``now``) and imports only attrs/msgspec/orjson/xxhash, so the CLI's
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

from collections import deque
from collections.abc import Iterable
from typing import Any

import attrs

from shared.digest.entries import (
    API_ERROR,
    API_RETRY,
    COMPACTION,
    INTERRUPT,
    MODES,
    PROMPT,
    TASK,
    TEXT,
    TOOL,
    DigestEntry,
)
from shared.digest.escalation import Attention, Escalator
from shared.digest.summaries import TEXT_CHARS, clip, first_sentence, summarize_tool_call, tool_summary
from shared.transcript.events import (
    AgentTranscript,
    ApiErrorEvent,
    AssistantTextEvent,
    CompactionEvent,
    Event,
    InterruptEvent,
    PromptEvent,
    StateChangeEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnState,
    parse_timestamp,
)
from shared.transcript.formats import DEFAULT_FORMAT, detect_format, new_parser, parser_from_checkpoint
from shared.transcript.usage import TokenUsage, estimate_cost_usd

__all__ = ["DigestConfig", "DigestUpdate", "DigestWindow", "SessionDigest", "digest_bytes"]

_TEXT_KINDS = frozenset({PROMPT, TEXT})

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
    """Incremental digest of one transcript: owns its adapter (:class:`AgentTranscript`) and an
    :class:`Escalator`.  ``format`` chooses the adapter (:mod:`shared.transcript.formats`) unless ``parser``
    is given.

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
        parser: AgentTranscript | None = None,
        format: str = DEFAULT_FORMAT,
    ) -> None:
        self.config = config or DigestConfig()
        self.parser: AgentTranscript = parser or new_parser(format, agent=agent)
        self.escalator = self.config.escalator()
        self._logs = {mode: _EntryLog(self.config.retain) for mode in MODES}
        self._thinking_since: str | None = None
        self._attention = Attention()
        #: one parser per subagent transcript of this session, by label (``subagent:<agentId>``)
        self.subagents: dict[str, AgentTranscript] = {}

    # ---------------------------------------------------------------------------------------------- input

    def feed(self, data: bytes, now: float | None = None) -> DigestUpdate:
        """Parse ``data`` (the next bytes of the file) and update entries, state and attention."""
        return self.apply(self.parser.feed(data), now)

    def finish(self, now: float | None = None) -> DigestUpdate:
        """End of a closed file (offline digests): see :meth:`AgentTranscript.finish`."""
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
            parser = self.subagents[agent] = new_parser(self.parser.format, agent=agent)
        return self.apply(parser.feed(data), now, main=False)

    def apply(self, events: Iterable[Event], now: float | None = None, *, main: bool = True) -> DigestUpdate:
        """Fold parser events into the digest.  ``main=False`` for events of another parser (a subagent
        file): their state changes are not the session's."""
        events = list(events)
        appended: dict[str, list[DigestEntry]] = {mode: [] for mode in MODES}
        updated: dict[str, list[DigestEntry]] = {mode: [] for mode in MODES}
        tools_add = self._logs["tools"].add
        text_add = self._logs["text"].add
        appended_tools, updated_tools = appended["tools"], updated["tools"]
        appended_text, updated_text = appended["text"], updated["text"]
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
                summary = tool_summary(event.name, event.input, outcome, event.details)
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
                        event.timestamp, TASK, "[TASK] " + clip(event.text, TEXT_CHARS), agent=agent
                    )
                else:
                    entry = DigestEntry(
                        event.timestamp, PROMPT, "[PROMPT] " + clip(event.text, TEXT_CHARS), agent=agent
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
                    message = "[API ERROR] " + clip(event.message, 100)
                    entry = DigestEntry(event.timestamp, API_ERROR, message, is_error=True, agent=agent)
                    if own:
                        escalator.observe(event)
                else:
                    detail = clip(event.message, 60) if event.message else "retrying"
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
                tools_add(entry, appended_tools, updated_tools)
            if own and entry.kind in _TEXT_KINDS:
                text_entry = DigestEntry(
                    entry.timestamp, entry.kind, entry.summary, entry.tool, entry.is_error, agent=agent
                )
                text_add(text_entry, appended_text, updated_text)
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

    def newest_record_time(self) -> float | None:
        """Epoch seconds of the newest record in the main transcript or a subagent's: when the agent wrote
        what the turn state rests on (an agent may flush its transcript well after that)."""
        stamps = [parse_timestamp(self.parser.last_activity)]
        stamps += [parse_timestamp(sub.last_activity) for sub in self.subagents.values()]
        known = [t for t in stamps if t is not None]
        return max(known) if known else None

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
        digest = cls(config=config, parser=parser_from_checkpoint(data["parser"]))
        digest.subagents = {
            label: parser_from_checkpoint(saved)
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



def digest_bytes(
    data: bytes,
    mode: str = "tools",
    last: int | None = 20,
    *,
    agent: str | None = None,
    config: DigestConfig | None = None,
    now: float | None = None,
    format: str | None = None,
) -> DigestWindow:
    """Digest a whole (closed) transcript held in memory - what ``maestroctl digest FILE`` calls.

    ``last=None`` returns every entry.  ``now`` defaults to the newest record's time, so offline digests
    of old files do not report them as stuck because of today's date.  ``format`` defaults to the one
    recognised from the first records (:func:`shared.transcript.formats.detect_format`)."""
    _check_mode(mode)
    retain = None if last is None else max(last, 1)
    digest = SessionDigest(
        agent=agent,
        config=DigestConfig(retain=retain) if config is None else attrs.evolve(config, retain=retain),
        format=format or detect_format(data),
    )
    digest.feed(data)
    digest.finish()
    return digest.window(mode, last, now)
