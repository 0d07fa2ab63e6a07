"""The Codex CLI adapter: a sans-I/O incremental parser for Codex rollout files.

Codex writes each session to ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl``, one
``{"timestamp", "type", "payload"}`` object per line (docs/transcripts.md, 'Codex CLI rollouts').  This adapter
turns those lines into the common events of :mod:`shared.transcript.events`, so a Codex session digests like
a Claude Code one:

* prompts from ``event_msg`` ``user_message`` (older versions) or ``item_completed`` of a ``UserMessage``
  (0.17x) - the ``response_item`` user messages also carry Codex's own context and are not prompts;
* the agent's words from ``response_item`` ``message`` (role assistant), thinking from ``reasoning``;
* tool calls from ``function_call`` (``arguments`` is a JSON string), ``custom_tool_call`` and
  ``local_shell_call``, their results from ``function_call_output`` / ``custom_tool_call_output``, joined on
  ``call_id``.  A command's exit status comes from ``exec_command_end`` or a ``CommandExecution`` item when
  the rollout has one, else from the output text; a patch's files from ``patch_apply_end`` or a
  ``FileChange`` item.  Every way Codex patches (the ``apply_patch`` tool, freeform or function, and an
  ``apply_patch`` heredoc run as a command) becomes one ``apply_patch`` call with the patch as ``input``;
* token usage from ``token_count`` (the growth of ``total_token_usage``, attributed to the model of the
  current ``turn_context``);
* turn state from ``task_started``/``turn_started`` (working), ``task_complete``/``turn_complete`` (idle),
  ``turn_aborted`` (interrupted), ``error`` (api_error) and a pending ``request_user_input`` call
  (waiting_input).

Lines carry no unique id, so re-read lines (after :meth:`reset`) are recognised by a digest of their bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import msgspec
import orjson
import xxhash

from shared.lazy_re import lazy_pattern
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
from shared.transcript.jsonl import MAX_LINE_BYTES, MAX_NESTING, JsonlInput, ParserStats, nesting_exceeds
from shared.transcript.outcomes import classify_exec_output, first_line
from shared.transcript.usage import TokenUsage

__all__ = ["KNOWN_LINE_TYPES", "CodexRolloutParser"]

#: Top-level line types this adapter knows (read or deliberately ignored); others pass as OtherRecordEvent.
KNOWN_LINE_TYPES = frozenset(
    {"session_meta", "response_item", "event_msg", "turn_context", "compacted", "world_state",
     "token_usage_record"}
)
#: Tools that run a command (the argument is ``cmd`` or ``command``, a string or an argv list).
SHELL_TOOLS = frozenset({"exec_command", "shell", "shell_command", "local_shell", "container.exec"})
#: Tools whose pending call means the agent waits for the user.
_WAITING_TOOLS = frozenset({"request_user_input"})
_HEREDOC_PATCH_RE = lazy_pattern(r"^\s*(?:cd [^&;]+&&\s*)?apply_patch\s*<<-?\s*['\"]?(\w+)['\"]?\s*\n(.*)\n\1\s*$",
                               re.DOTALL)
#: Version 2: line digests are xxh3-128 (version 1: blake2b-96; still read, and kept by such a parser).
_CHECKPOINT_VERSION = 2
_LINE_DIGESTS: dict[int, Callable[[bytes], bytes]] = {
    1: lambda line: hashlib.blake2b(line, digest_size=12).digest(),
    2: xxhash.xxh3_128_digest,
}
#: Bytes at the start of a line enough to see its type (a message's role, a completed item's type), as
#: Codex writes them (0.171: ~170 bytes to a message's role, ~210 to an item's type).
_HEAD_BYTES = 320
#: One match at the start of a line tells its type for the lines that are either bulky and useless for a
#: digest (a group named ``skip…``: counted, not decoded) or frequent and read through a typed decoder (the
#: other groups, see :data:`_TYPED`).  Every other line is decoded whole.
_HEAD_RE = lazy_pattern(
    rb'^\{"timestamp":"[^"]*",(?:"ordinal":\d+,)?"type":"(?:'
    rb'(?P<meta>session_meta")|(?P<skip_state>world_state"|token_usage_record")|(?P<context>turn_context")'
    rb'|response_item","payload":\{"type":"(?:(?P<call>function_call")|(?P<output>function_call_output")'
    rb'|message",(?:"[a-z_]+":"[^"\\]*",)*"role":"(?:(?P<skip_context>developer|user|system)|(?P<message>assistant))")'
    rb'|event_msg","payload":\{"type":"(?:(?P<tokens>token_count")|(?P<skip_settings>thread_settings_applied")'
    rb'|(?P<started>task_started"|turn_started")|(?P<complete>task_complete"|turn_complete")'
    rb'|item_completed",(?:"[a-z_]+":"[^"\\]*",)*"item":\{"type":"'
    # the agent's words and reasoning again as items (the response_item copies are the ones read)
    rb'(?:(?P<skip_item>AgentMessage"|Reasoning")|(?P<command>CommandExecution")|(?P<user>UserMessage"))))'
)
_USAGE_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "cache_write_input_tokens")

# Typed decoders for the frequent lines: msgspec builds only the fields read (skipping ids, rate limits,
# instructions... without building them) and checks their types, ~2x faster than decoding the line whole.
# ``Any`` fields take whatever the line holds, as ``dict.get`` would; a line of another shape (a field of
# another type, a payload that is not an object) fails to decode and is then decoded whole like any line.


P = TypeVar("P")


class _Line(msgspec.Struct, Generic[P], gc=False):
    """One rollout line whose payload has the shape ``P`` (the fields a handler reads)."""

    payload: P
    timestamp: Any = None


class _MetaPayload(msgspec.Struct, gc=False):
    id: Any = None
    cwd: Any = None
    cli_version: Any = None


class _Usage(msgspec.Struct, gc=False):
    """A ``token_count`` total; an object without ``input_tokens`` or with a count that is not an int is
    left to the generic path (which reads a missing count as 0 and an empty object as no total)."""

    input_tokens: int
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cache_write_input_tokens: int = 0


class _TokenInfo(msgspec.Struct, gc=False):
    total_token_usage: _Usage | None = None
    last_token_usage: _Usage | None = None


class _TokenCountPayload(msgspec.Struct, gc=False):
    info: _TokenInfo | None = None


class _CommandItem(msgspec.Struct, gc=False):
    id: Any = None
    exit_code: Any = None
    aggregated_output: Any = None


class _CommandPayload(msgspec.Struct, gc=False):
    item: _CommandItem


class _CallPayload(msgspec.Struct, gc=False):
    name: Any = None
    arguments: Any = None
    call_id: Any = None


class _OutputPayload(msgspec.Struct, gc=False):
    call_id: Any = None
    output: Any = None


class _ContextPayload(msgspec.Struct, gc=False):
    model: Any = None
    cwd: Any = None


class _MessagePayload(msgspec.Struct, gc=False):
    role: Any = None
    content: Any = None
    id: Any = None


class _TurnPayload(msgspec.Struct, gc=False):
    type: Any = None
    duration_ms: Any = None


class _UserItem(msgspec.Struct, gc=False):
    content: Any = None


class _UserPayload(msgspec.Struct, gc=False):
    item: _UserItem


#: Head group -> decoder of that line (the handler is ``CodexRolloutParser._typed_<group>``).
_TYPED: dict[str, msgspec.json.Decoder[Any]] = {
    "meta": msgspec.json.Decoder(_Line[_MetaPayload]),
    "tokens": msgspec.json.Decoder(_Line[_TokenCountPayload]),
    "command": msgspec.json.Decoder(_Line[_CommandPayload]),
    "call": msgspec.json.Decoder(_Line[_CallPayload]),
    "output": msgspec.json.Decoder(_Line[_OutputPayload]),
    "context": msgspec.json.Decoder(_Line[_ContextPayload]),
    "message": msgspec.json.Decoder(_Line[_MessagePayload]),
    "started": msgspec.json.Decoder(_Line[_TurnPayload]),
    "complete": msgspec.json.Decoder(_Line[_TurnPayload]),
    "user": msgspec.json.Decoder(_Line[_UserPayload]),
}


class _Pending(msgspec.Struct, gc=False):
    name: str
    input: dict[str, Any]
    timestamp: str
    agent: str | None


def _usage_counts(usage: Any) -> list[int]:
    """``_USAGE_FIELDS`` of a token usage (a :class:`_Usage`, a dict, anything else: zeros)."""
    if isinstance(usage, _Usage):
        return [usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.cache_write_input_tokens]
    usage = _dict(usage)
    try:
        return [int(usage.get(f) or 0) for f in _USAGE_FIELDS]
    except (TypeError, ValueError):
        return [0, 0, 0, 0]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _message_text(content: Any) -> str:
    """Text of a Responses API message ``content`` (``output_text`` / ``input_text`` / ``text`` parts)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))


def _output_text(output: Any) -> str:
    """A tool output as text: a string, ``{"content": ...}`` / ``{"output": ...}``, or a list of parts."""
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        for key in ("content", "output"):
            if key in output:
                return _output_text(output[key])
        return ""
    return _message_text(output)


def command_text(command: Any) -> str:
    """A command as one string: argv lists are joined, and ``bash -lc <script>`` becomes the script."""
    if isinstance(command, str):
        return command
    if not isinstance(command, list):
        return ""
    argv = [str(a) for a in command]
    if len(argv) == 3 and argv[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh") and argv[1] in ("-lc", "-c"):
        return argv[2]
    return " ".join(argv)


class CodexRolloutParser(JsonlInput):
    """Incremental parser for one Codex rollout file (see the module docstring for the mapping).

    ``agent`` labels every event (``None`` for a session's own rollout).  Same queries and checkpoint
    contract as :class:`shared.transcript.claude.TranscriptParser` (:class:`AgentTranscript`).
    """

    #: The transcript format this adapter reads (see :mod:`shared.transcript.formats`).
    format: ClassVar[str] = "codex"
    #: Keep at most this many line digests in a checkpoint (the in-memory set is complete).
    checkpoint_max_digests: ClassVar[int] = 20_000

    def __init__(
        self, *, agent: str | None = None, offset: int = 0, max_line_bytes: int = MAX_LINE_BYTES
    ) -> None:
        super().__init__(offset=offset, max_line_bytes=max_line_bytes)
        self.agent = agent
        self.session_id: str | None = None
        self.cwd: str | None = None
        self.version: str | None = None
        self.model: str | None = None
        self.title: str | None = None
        #: Codex does not write a cost of its own.
        self.reported_cost_usd: float | None = None
        self.last_activity: str | None = None
        self.state_since: str | None = None
        self._seen: dict[bytes, None] = {}
        #: checkpoint version whose line digest this parser uses (an older checkpoint's digests stay valid)
        self._digest_version = _CHECKPOINT_VERSION
        self._line_digest = _LINE_DIGESTS[_CHECKPOINT_VERSION]
        self._pending: dict[str, _Pending] = {}
        #: what the rollout said about a call before its output came: (exit code, output, patched files)
        self._ends: dict[str, tuple[int | None, str | None, dict[str, str] | None]] = {}
        self._usage: dict[str, list[int]] = {}
        self._totals: list[int] = [0, 0, 0, 0]
        self._base = TurnState.IDLE
        self._state = TurnState.IDLE
        self._last_kind: str | None = None
        self._dispatch: dict[str, Callable[[str, dict[str, Any], list[Event]], None]] = {
            "response_item": self._on_response_item,
            "event_msg": self._on_event,
            "session_meta": self._on_session_meta,
            "turn_context": self._on_turn_context,
            "compacted": self._on_compacted,
        }

    # ---------------------------------------------------------------------------------------------- input

    def feed(self, data: bytes) -> list[Event]:
        """Consume the next bytes of the file; return the events of every line completed by them."""
        return super().feed(data)

    def finish(self) -> list[Event]:
        """Declare the stream complete (closed file, offline digest): parse an unterminated last line."""
        events: list[Event] = []
        self._finish_lines(events)
        self._emit_state_change(self.last_activity or "", events)
        return events

    # --------------------------------------------------------------------------------------------- queries

    @property
    def state(self) -> TurnState:
        return self._state

    def state_at(self, now: float, idle_after: float = 5.0) -> TurnState:
        """:attr:`state`; Codex writes ``task_complete`` at every turn's end, so a quiet turn whose last
        step was text is idle only after ``idle_after`` seconds (a crash before that line)."""
        state = self._state
        if self._base is TurnState.WORKING and state is TurnState.WORKING and self._could_be_idle():
            last = parse_timestamp(self.last_activity)
            if last is not None and now - last >= idle_after:
                return TurnState.IDLE
        return state

    @property
    def own_agent(self) -> str | None:
        return self.agent

    def pending_calls(self) -> list[tuple[str, str, dict[str, Any], str, str | None]]:
        return [(cid, p.name, p.input, p.timestamp, p.agent) for cid, p in self._pending.items()]

    @property
    def pending_tools(self) -> dict[str, str]:
        return {cid: p.name for cid, p in self._pending.items()}

    @property
    def usage_by_model(self) -> dict[str, TokenUsage]:
        return {model: TokenUsage(*values) for model, values in self._usage.items()}

    @property
    def usage(self) -> TokenUsage:
        return sum(self.usage_by_model.values(), TokenUsage())

    # ---------------------------------------------------------------------------------------- line handling

    def _process_line(self, line: bytes | memoryview, events: list[Event]) -> None:
        self._process_lines([line], events)

    def _process_lines(self, lines: list[memoryview] | list[bytes | memoryview], events: list[Event]) -> None:
        # One loop over the lines of a feed with what it uses in locals: the per-line steps are most of the
        # time of a rollout whose lines are ~1 KB (bench_digest_codex).
        stats = self.stats
        seen = self._seen
        line_digest = self._line_digest
        typed_handlers = self._typed
        dispatch = self._dispatch
        head_match = _HEAD_RE().match
        decoders = _TYPED
        working = TurnState.WORKING
        count = records = 0
        try:
            for view in lines:
                count += 1
                line = bytes(view)  # orjson decodes bytes several times faster than a memoryview
                typed: Any = None
                group: Any = None
                head = head_match(line, 0, _HEAD_BYTES)
                if head is not None:
                    group = head.lastgroup
                    decoder = decoders.get(group) if group is not None else None
                    if decoder is None:
                        # bulky lines that carry nothing for a digest (Codex's instructions and context,
                        # world state, per-response usage records, the items that repeat the agent's
                        # words): counted, not decoded
                        continue
                    try:
                        typed = decoder.decode(line)
                    except (msgspec.DecodeError, RecursionError):  # another shape: decoded whole below
                        typed = None
                record: Any = None
                if typed is None:
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:  # also nesting beyond orjson's limit
                        if line.strip():
                            stats.corrupt_lines += 1
                        else:
                            stats.blank_lines += 1
                        continue
                    if type(record) is not dict:
                        stats.corrupt_lines += 1
                        continue
                digest = line_digest(line)
                if digest in seen:
                    stats.duplicate_records += 1
                    continue
                seen[digest] = None
                records += 1
                timestamp = typed.timestamp if record is None else record.get("timestamp")
                if type(timestamp) is not str:
                    timestamp = ""
                elif timestamp:
                    self.last_activity = timestamp
                if record is None:
                    typed_handlers[group](self, timestamp, typed, events)
                else:
                    line_type = record.get("type")
                    payload = record.get("payload")
                    handler = dispatch.get(line_type) if type(line_type) is str else None
                    if handler is None or type(payload) is not dict:
                        if line_type not in KNOWN_LINE_TYPES:
                            stats.unknown_records += 1
                            events.append(OtherRecordEvent(
                                timestamp, line_type if isinstance(line_type, str) else None, None, record))
                        continue
                    handler(timestamp, payload, events)
                base = self._base
                # the state can change only if it differs from the base or a pending call / the end of the
                # file may turn a working base into waiting_input / idle (see _derive_state)
                if base is not self._state or (base is working and (self._pending or self._eof)):
                    self._emit_state_change(timestamp, events)
        finally:
            stats.lines += count
            stats.records += records

    # The typed lines (see _TYPED): the same steps as their generic handlers below.

    def _typed_meta(self, timestamp: str, line: _Line[_MetaPayload], events: list[Event]) -> None:
        payload = line.payload
        self._meta(payload.id, payload.cwd, payload.cli_version)

    def _typed_tokens(self, timestamp: str, line: _Line[_TokenCountPayload], events: list[Event]) -> None:
        info = line.payload.info
        total = info.total_token_usage if info is not None else None
        if total is None:
            return
        self._fold_usage(
            [total.input_tokens, total.cached_input_tokens, total.output_tokens, total.cache_write_input_tokens],
            info.last_token_usage if info is not None else None,
        )

    def _typed_command(self, timestamp: str, line: _Line[_CommandPayload], events: list[Event]) -> None:
        item = line.payload.item
        code = item.exit_code
        self._ends[_str(item.id)] = (code if isinstance(code, int) else None, _str(item.aggregated_output), None)

    def _typed_call(self, timestamp: str, line: _Line[_CallPayload], events: list[Event]) -> None:
        payload = line.payload
        self._call(timestamp, _str(payload.call_id), _str(payload.name) or "?", self._arguments(payload.arguments),
                   events)

    def _typed_output(self, timestamp: str, line: _Line[_OutputPayload], events: list[Event]) -> None:
        payload = line.payload
        self._result(timestamp, _str(payload.call_id), _output_text(payload.output), events)

    def _typed_context(self, timestamp: str, line: _Line[_ContextPayload], events: list[Event]) -> None:
        self._turn_context(line.payload.model, line.payload.cwd)

    def _typed_message(self, timestamp: str, line: _Line[_MessagePayload], events: list[Event]) -> None:
        payload = line.payload
        self._message(timestamp, payload.role, payload.content, payload.id, events)

    def _typed_started(self, timestamp: str, line: _Line[_TurnPayload], events: list[Event]) -> None:
        self._turn_started()

    def _typed_complete(self, timestamp: str, line: _Line[_TurnPayload], events: list[Event]) -> None:
        payload = line.payload
        self._turn_complete(timestamp, payload.type, payload.duration_ms, events)

    def _typed_user(self, timestamp: str, line: _Line[_UserPayload], events: list[Event]) -> None:
        self._prompt(timestamp, _message_text(line.payload.item.content), events)

    #: Head group (as in :data:`_TYPED`) -> its handler.
    _typed: ClassVar[dict[str, Callable[[CodexRolloutParser, str, Any, list[Event]], None]]] = {
        "meta": _typed_meta,
        "tokens": _typed_tokens,
        "command": _typed_command,
        "call": _typed_call,
        "output": _typed_output,
        "context": _typed_context,
        "message": _typed_message,
        "started": _typed_started,
        "complete": _typed_complete,
        "user": _typed_user,
    }

    # ------------------------------------------------------------------------------------------ records

    def _on_session_meta(self, timestamp: str, payload: dict[str, Any], events: list[Event]) -> None:
        self._meta(payload.get("id"), payload.get("cwd"), payload.get("cli_version"))

    def _meta(self, session_id: Any, cwd: Any, cli_version: Any) -> None:
        if self.session_id is None and isinstance(session_id, str):
            self.session_id = session_id
        self.cwd = _str(cwd) or self.cwd
        self.version = _str(cli_version) or self.version

    def _on_turn_context(self, timestamp: str, payload: dict[str, Any], events: list[Event]) -> None:
        self._turn_context(payload.get("model"), payload.get("cwd"))

    def _turn_context(self, model: Any, cwd: Any) -> None:
        self.model = _str(model) or self.model
        self.cwd = _str(cwd) or self.cwd

    def _on_compacted(self, timestamp: str, payload: dict[str, Any], events: list[Event]) -> None:
        events.append(CompactionEvent(timestamp, self.agent, "boundary"))

    def _on_response_item(self, timestamp: str, payload: dict[str, Any], events: list[Event]) -> None:
        item_type = payload.get("type")
        agent = self.agent
        if item_type == "message":
            self._message(timestamp, payload.get("role"), payload.get("content"), payload.get("id"), events)
        elif item_type == "reasoning":
            events.append(ThinkingEvent(timestamp, agent))
            self._last_kind = "thinking"
        elif item_type in ("function_call", "custom_tool_call"):
            name = _str(payload.get("name")) or "?"
            if item_type == "function_call":
                tool_input = self._arguments(payload.get("arguments"))
            else:
                tool_input = {"input": _str(payload.get("input"))}
            self._call(timestamp, _str(payload.get("call_id")), name, tool_input, events)
        elif item_type == "local_shell_call":
            action = _dict(payload.get("action"))
            call_id = _str(payload.get("call_id")) or _str(payload.get("id"))
            self._call(timestamp, call_id, "local_shell", {"command": action.get("command")}, events)
        elif item_type in ("function_call_output", "custom_tool_call_output"):
            self._result(timestamp, _str(payload.get("call_id")), _output_text(payload.get("output")), events)
        elif item_type == "web_search_call":
            action = _dict(payload.get("action"))
            call_id = _str(payload.get("id")) or f"web_search@{timestamp}"
            self._call(timestamp, call_id, "web_search", {"query": _str(action.get("query"))}, events)
            self._finish_call(timestamp, call_id, TOOL_OK, None, events)

    def _on_event(self, timestamp: str, payload: dict[str, Any], events: list[Event]) -> None:
        kind = payload.get("type")
        agent = self.agent
        # the most frequent first: one token_count per model response, item_completed per item
        if kind == "token_count":
            info = payload.get("info")
            if type(info) is dict:
                self._on_token_count(info)
        elif kind == "item_completed":
            item = payload.get("item")
            self._on_item_completed(timestamp, item if type(item) is dict else {}, events)
        elif kind in ("task_started", "turn_started"):
            self._turn_started()
        elif kind in ("task_complete", "turn_complete"):
            self._turn_complete(timestamp, kind, payload.get("duration_ms"), events)
        elif kind == "turn_aborted":
            during_tool = bool(self._pending)
            events.append(InterruptEvent(timestamp, agent, during_tool))
            self._abort_pending(timestamp, events, FailureKind.INTERRUPTED)
            self._base = TurnState.INTERRUPTED
            self._last_kind = "interrupt"
        elif kind == "user_message":
            self._prompt(timestamp, _str(payload.get("message")), events)
        elif kind == "exec_command_end":
            code = payload.get("exit_code")
            output = _str(payload.get("aggregated_output")) or _str(payload.get("stderr"))
            self._ends[_str(payload.get("call_id"))] = (code if isinstance(code, int) else None, output, None)
        elif kind == "patch_apply_end":
            files = self._patched_files(payload.get("changes"))
            success = payload.get("success")
            output = _str(payload.get("stderr")) or _str(payload.get("stdout"))
            self._ends[_str(payload.get("call_id"))] = (0 if success is not False else 1, output, files)
        elif kind == "error":
            message = _str(payload.get("message"))
            events.append(ApiErrorEvent(timestamp, agent, True, first_line(message) or "error"))
            self._abort_pending(timestamp, events)
            self._base = TurnState.API_ERROR
            self._last_kind = "error"
        elif kind == "stream_error":
            events.append(ApiErrorEvent(timestamp, agent, False, first_line(_str(payload.get("message")))))
        elif kind == "context_compacted":
            events.append(CompactionEvent(timestamp, agent, "boundary"))
        elif kind == "thread_name_updated":
            self.title = _str(payload.get("thread_name")) or self.title

    def _message(self, timestamp: str, role: Any, content: Any, message_id: Any, events: list[Event]) -> None:
        if role == "assistant":
            text = _message_text(content)
            if text.strip():
                events.append(AssistantTextEvent(timestamp, self.agent, text, _str(message_id) or None, self.model))
                self._last_kind = "text"

    def _turn_started(self) -> None:
        self._base = TurnState.WORKING
        self._last_kind = "turn_start"

    def _turn_complete(self, timestamp: str, kind: Any, duration: Any, events: list[Event]) -> None:
        self._abort_pending(timestamp, events)
        self._base = TurnState.IDLE
        events.append(TurnEndEvent(timestamp, self.agent, kind if isinstance(kind, str) else "task_complete",
                                   float(duration) if isinstance(duration, (int, float)) else None))
        self._last_kind = "turn_end"

    def _on_item_completed(self, timestamp: str, item: dict[str, Any], events: list[Event]) -> None:
        item_type = item.get("type")
        if item_type == "UserMessage":
            self._prompt(timestamp, _message_text(item.get("content")), events)
        elif item_type == "CommandExecution":
            code = item.get("exit_code")
            self._ends[_str(item.get("id"))] = (code if isinstance(code, int) else None,
                                                _str(item.get("aggregated_output")), None)
        elif item_type == "FileChange":
            files = self._patched_files(item.get("changes"))
            status = item.get("status")
            output = _str(item.get("stderr")) or _str(item.get("stdout"))
            self._ends[_str(item.get("id"))] = (1 if status == "failed" else 0, output, files)

    def _on_token_count(self, info: dict[str, Any]) -> None:
        total = info.get("total_token_usage")
        if type(total) is not dict or not total:
            return
        try:
            now = [int(total.get(f) or 0) for f in _USAGE_FIELDS]
        except (TypeError, ValueError):  # not counts: no total
            return
        self._fold_usage(now, info.get("last_token_usage"))

    def _fold_usage(self, now: list[int], last: Any) -> None:
        """Add the growth of the running total ``now`` (``_USAGE_FIELDS``) to the current model; ``last``
        (the response's own usage: a dict or a :class:`_Usage`) when the total restarted."""
        previous = self._totals
        if now == previous:
            return
        fresh_input, cached, output, cache_write = now
        before_input, before_cached, before_output, before_write = previous
        fresh_input -= before_input
        cached -= before_cached
        output -= before_output
        cache_write -= before_write
        if fresh_input < 0 or cached < 0 or output < 0 or cache_write < 0:
            # the running total restarted (a new thread in the same file)
            fresh_input, cached, output, cache_write = _usage_counts(last)
        self._totals = now
        if not (fresh_input or cached or output or cache_write):
            return
        totals = self._usage.get(self.model or "unknown")
        if totals is None:
            totals = self._usage[self.model or "unknown"] = [0, 0, 0, 0, 0]
        totals[0] += max(fresh_input - cached - cache_write, 0)
        totals[1] += output
        totals[2] += cached
        totals[3] += cache_write

    # ---------------------------------------------------------------------------------------------- steps

    def _prompt(self, timestamp: str, text: str, events: list[Event]) -> None:
        if not text.strip():
            return
        events.append(PromptEvent(timestamp, self.agent, text, "user"))
        self._base = TurnState.WORKING
        self._last_kind = "prompt"

    def _arguments(self, arguments: Any) -> dict[str, Any]:
        if isinstance(arguments, dict):
            return arguments
        text = _str(arguments)
        if text.count("[") + text.count("{") > MAX_NESTING and nesting_exceeds(text.encode(), MAX_NESTING):
            return {"arguments": text[:4096]}
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"arguments": text[:4096]}
        return value if isinstance(value, dict) else {"arguments": value}

    def _call(self, timestamp: str, call_id: str, name: str, tool_input: dict[str, Any], events: list[Event]) -> None:
        if name in SHELL_TOOLS:
            command = command_text(tool_input.get("cmd", tool_input.get("command")))
            match = _HEREDOC_PATCH_RE().match(command) if "apply_patch" in command else None
            if match:  # Codex runs an apply_patch heredoc as a patch, not as a command
                name, tool_input = "apply_patch", {"input": match.group(2)}
        elif name == "apply_patch" and "input" not in tool_input and isinstance(tool_input.get("patch"), str):
            tool_input = {"input": tool_input["patch"]}
        self._pending[call_id] = _Pending(name, tool_input, timestamp, self.agent)
        events.append(ToolCallEvent(timestamp, self.agent, call_id, name, tool_input))
        self._last_kind = "tool_use"

    def _result(self, timestamp: str, call_id: str, text: str, events: list[Event]) -> None:
        pending = self._pending.get(call_id)
        code, end_output, files = self._ends.pop(call_id, (None, None, None))
        name = pending.name if pending is not None else None
        if text.startswith('{"output"'):  # older shell tools: {"output": ..., "metadata": {"exit_code": N}}
            try:
                older = orjson.loads(text)
            except orjson.JSONDecodeError:
                older = None
            if isinstance(older, dict):
                metadata = _dict(older.get("metadata"))
                if code is None and isinstance(metadata.get("exit_code"), int):
                    code = metadata["exit_code"]
                text = "\nOutput:\n" + _str(older.get("output"))
        if code and end_output and end_output.strip():
            # a failed command: the rollout's own copy of the output is whole; the model's may be cut
            outcome = classify_exec_output("\nOutput:\n" + end_output, code)
        elif name in SHELL_TOOLS or name == "apply_patch" or code is not None:
            outcome = classify_exec_output(text, code)
            if outcome.failed and outcome.exit_code is not None and end_output and end_output.strip():
                outcome = classify_exec_output("\nOutput:\n" + end_output, code)
        else:
            outcome = TOOL_OK
        details: dict[str, Any] | None = None
        if code is not None:
            details = {"files": files, "exit_code": code} if files else {"exit_code": code}
        elif files:
            details = {"files": files}
        self._finish_call(timestamp, call_id, outcome, details, events)

    def _finish_call(
        self, timestamp: str, call_id: str, outcome: ToolOutcome, details: dict[str, Any] | None,
        events: list[Event],
    ) -> None:
        pending = self._pending.pop(call_id, None)
        if pending is None:
            self.stats.orphan_results += 1
        events.append(ToolResultEvent(timestamp, self.agent, call_id, pending.name if pending else None,
                                      pending.input if pending else None, outcome, details))
        if pending is not None:
            if self._base is not TurnState.INTERRUPTED:
                self._base = TurnState.WORKING
            self._last_kind = "tool_result"

    @staticmethod
    def _patched_files(changes: Any) -> dict[str, str] | None:
        """``{path: add|update|delete|move}`` from a patch's ``changes`` (keyed by path)."""
        if not isinstance(changes, dict):
            return None
        files: dict[str, str] = {}
        for path, change in changes.items():
            change = _dict(change)
            kind = _str(change.get("type")) or next(iter(change), "update")
            if change.get("move_path"):
                kind = "move"
            files[str(path)] = kind
        return files or None

    def _abort_pending(
        self, timestamp: str, events: list[Event], kind: FailureKind = FailureKind.ABORTED
    ) -> None:
        for call_id in list(self._pending):
            pending = self._pending.pop(call_id)
            self._ends.pop(call_id, None)
            message = "no result" if kind is FailureKind.ABORTED else "interrupted"
            events.append(ToolResultEvent(timestamp, pending.agent, call_id, pending.name, pending.input,
                                          ToolOutcome(True, kind, message=message)))

    # --------------------------------------------------------------------------------------------- state

    def _could_be_idle(self) -> bool:
        return self._last_kind in ("text", "thinking") and not self._pending

    def _derive_state(self) -> TurnState:
        if self._base is TurnState.WORKING:
            for pending in self._pending.values():
                if pending.name in _WAITING_TOOLS:
                    return TurnState.WAITING_INPUT
            if self._eof and self._could_be_idle():
                return TurnState.IDLE
        return self._base

    def _emit_state_change(self, timestamp: str, events: list[Event]) -> None:
        new = self._derive_state()
        if new is not self._state:
            events.append(StateChangeEvent(timestamp, self._state, new))
            self._state = new
            self.state_since = timestamp or self.state_since

    # ----------------------------------------------------------------------------------------- checkpoint

    def checkpoint(self) -> dict[str, Any]:
        """JSON-serialisable state; :meth:`from_checkpoint` then feeding from ``offset`` resumes exactly."""
        seen = list(self._seen)[-self.checkpoint_max_digests :]
        return {
            "format": self.format,
            "version": self._digest_version,
            "offset": self.offset,
            "agent": self.agent,
            "seen": [d.hex() for d in seen],
            "pending": {cid: [p.name, p.input, p.timestamp, p.agent] for cid, p in self._pending.items()},
            "ends": {cid: [code, output, files] for cid, (code, output, files) in self._ends.items()},
            "usage": self._usage,
            "totals": self._totals,
            "base": self._base.value,
            "state": self._state.value,
            "state_since": self.state_since,
            "last_kind": self._last_kind,
            "session_id": self.session_id,
            "cwd": self.cwd,
            "cli_version": self.version,
            "model": self.model,
            "title": self.title,
            "last_activity": self.last_activity,
            "stats": self.stats.to_dict(),
        }

    @classmethod
    def from_checkpoint(
        cls, data: dict[str, Any], *, max_line_bytes: int = MAX_LINE_BYTES
    ) -> CodexRolloutParser:
        version = data.get("version")
        if data.get("format") != cls.format or type(version) is not int or version not in _LINE_DIGESTS:
            raise ValueError(f"not a codex rollout checkpoint of version {' or '.join(map(str, _LINE_DIGESTS))}")
        parser = cls(agent=data.get("agent"), offset=int(data["offset"]), max_line_bytes=max_line_bytes)
        parser._seen = dict.fromkeys(bytes.fromhex(d) for d in data.get("seen", ()))
        parser._digest_version = version
        parser._line_digest = _LINE_DIGESTS[version]
        parser._pending = {cid: _Pending(name, tool_input, ts, agent)
                           for cid, (name, tool_input, ts, agent) in data.get("pending", {}).items()}
        parser._ends = {cid: (code, output, files)
                        for cid, (code, output, files) in data.get("ends", {}).items()}
        parser._usage = {model: list(values) for model, values in data.get("usage", {}).items()}
        parser._totals = list(data.get("totals") or [0, 0, 0, 0])
        parser._base = TurnState(data.get("base", "idle"))
        parser._state = TurnState(data.get("state", "idle"))
        parser.state_since = data.get("state_since")
        parser._last_kind = data.get("last_kind")
        parser.session_id = data.get("session_id")
        parser.cwd = data.get("cwd")
        parser.version = data.get("cli_version")
        parser.model = data.get("model")
        parser.title = data.get("title")
        parser.last_activity = data.get("last_activity")
        parser.stats = ParserStats(**data.get("stats", {}))
        return parser
