"""Decode one line of a Claude Code transcript (``~/.claude/projects/**.jsonl``) into typed records.

Why typed msgspec decoding: ~60 % of a transcript's bytes are tool outputs (``toolUseResult``, Read bodies,
``progress`` mirrors) that a digest never looks at.  A msgspec ``Struct`` that declares only the fields we use
skips everything else without allocating it, which makes decoding ~1.7x faster than ``orjson.loads`` into
dicts.  Large fields we need only sometimes (a tool result's ``content``, ``toolUseResult``) are kept as
``msgspec.Raw`` and decoded lazily.

Why tolerant: the format is undocumented and changes almost every release (see
``docs/transcripts.md``, 'Versions').  Unknown record types and unknown fields must pass through; a field
whose type changed must not make us drop the record; glued objects, invalid UTF-8 and lone surrogates must be
recovered where possible; and nothing here may raise on bad input.  Every slow path is counted by the caller
through :class:`LineStatus`.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import msgspec
import orjson

from shared.lazy_re import lazy_pattern
from shared.transcript.jsonl import MAX_LINE_BYTES

__all__ = [
    "MAX_LINE_BYTES",
    "RECORD_DECODER",
    "Block",
    "LineStatus",
    "Message",
    "Record",
    "Usage",
    "decode_line",
    "decode_raw",
    "raw_to_text",
]


_EMPTY_RAW = msgspec.Raw(b"")


class CacheCreation(msgspec.Struct, omit_defaults=True, gc=False):
    """Split of cache-creation tokens by TTL (priced differently: 1h writes cost 2x input, 5m 1.25x)."""

    ephemeral_5m_input_tokens: int | None = None
    ephemeral_1h_input_tokens: int | None = None


class Usage(msgspec.Struct, omit_defaults=True, gc=False):
    """The Messages API ``usage`` object as written on assistant lines; any field may be null or absent."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: CacheCreation | None = None


class Block(msgspec.Struct, omit_defaults=True, gc=False):
    """One content block of any kind (text, thinking, tool_use, tool_result, image, ...).

    A single permissive struct instead of a tagged union so that block types added by future versions decode
    instead of failing.  Bulky parts are not declared (thinking text, signatures, image data) or kept raw
    (``content`` of a ``tool_result``).
    """

    type: str = ""
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: msgspec.Raw = _EMPTY_RAW
    is_error: bool | None = None


class Message(msgspec.Struct, omit_defaults=True, gc=False):
    """The ``message`` of a user/assistant record; content is a string or a list of blocks."""

    id: str | None = None
    model: str | None = None
    content: str | list[Block] | None = None
    stop_reason: str | None = None
    usage: Usage | None = None


class CompactMetadata(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """``system/compact_boundary`` details: manual ``/compact`` or automatic, and the context size before."""

    trigger: str | None = None
    pre_tokens: int | None = None


class Attachment(msgspec.Struct, omit_defaults=True, gc=False):
    """``attachment`` records (2.1.x): only the type and a steering prompt (``queued_command``) matter."""

    type: str | None = None
    prompt: Any = None


class Record(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Union of the envelope fields of every record type we interpret; all optional.

    ``rename="camel"`` maps ``parent_uuid`` to ``parentUuid`` etc.; the few fields whose JSON name is not
    plain camel case carry an explicit name.  Fields not listed here are skipped by the decoder.
    """

    type: str | None = None
    uuid: str | None = None
    parent_uuid: str | None = None
    is_sidechain: bool | None = None
    timestamp: str | None = None
    session_id: str | None = None
    agent_id: str | None = None
    cwd: str | None = None
    version: str | None = None
    # user
    is_meta: bool | None = None
    is_compact_summary: bool | None = None
    tool_use_result: msgspec.Raw = _EMPTY_RAW
    # assistant
    message: Message | None = None
    request_id: str | None = None
    is_api_error_message: bool | None = None
    error: Any = None
    api_error_status: int | None = None
    # system
    subtype: str | None = None
    level: str | None = None
    content: Any = None
    compact_metadata: CompactMetadata | None = None
    retry_attempt: int | None = None
    max_retries: int | None = None
    duration_ms: float | None = None
    cause: Any = None
    # attachment
    attachment: Attachment | None = None
    # metadata records
    summary: Any = None
    ai_title: Any = None
    custom_title: Any = None
    total_cost_usd: float | None = msgspec.field(default=None, name="totalCostUSD")
    operation: str | None = None


class LineStatus(enum.Enum):
    """How a line was decoded; the parser counts the non-``OK`` outcomes."""

    OK = "ok"
    #: well-formed JSON whose fields had unexpected types; offending fields were dropped
    SALVAGED = "salvaged"
    #: several objects glued on one line (seen after crashes), each decoded
    GLUED = "glued"
    #: invalid UTF-8 or lone surrogates replaced by U+FFFD, then decoded
    REPAIRED = "repaired"
    #: nothing usable on the line
    CORRUPT = "corrupt"


RECORD_DECODER = msgspec.json.Decoder(Record)
_ANY_DECODER = msgspec.json.Decoder()
_JSON_DECODER = json.JSONDecoder()
_PATH_RE = lazy_pattern(r"`\$((?:\.[^.\[`]+|\[\d+\])*)`")
_PATH_PART_RE = lazy_pattern(r"\.([^.\[`]+)|\[(\d+)\]")
_SURROGATE_RE = lazy_pattern("[\ud800-\udfff]")


def decode_line(line: bytes) -> tuple[list[Record], LineStatus, list[dict[str, Any]]]:
    """Decode one newline-free line into records; never raises.

    Returns ``(records, status, raw_objects)``.  ``raw_objects`` is only filled on the slow paths (the dicts
    the records were salvaged from) so callers that pass unknown record types through can reuse them.
    """
    try:
        return [RECORD_DECODER.decode(line)], LineStatus.OK, []
    except msgspec.ValidationError:
        # Valid JSON, but some field has a type we did not expect (format drift).
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return _decode_slow(line)
        if not isinstance(obj, dict):
            return [], LineStatus.CORRUPT, []
        return [salvage(obj)], LineStatus.SALVAGED, [obj]
    except (msgspec.DecodeError, ValueError):
        # Malformed JSON, glued objects, invalid UTF-8, lone surrogates.
        return _decode_slow(line)


def _decode_slow(line: bytes) -> tuple[list[Record], LineStatus, list[dict[str, Any]]]:
    """Recover what we can: decode bytes leniently, then ``raw_decode`` objects one after another."""
    text = line.decode("utf-8", errors="replace")
    repaired = "\ufffd" in text
    objects: list[dict[str, Any]] = []
    pos = 0
    end = len(text)
    while pos < end:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            break
        try:
            obj, pos = _JSON_DECODER.raw_decode(text, pos)
        except ValueError:
            break  # the rest of the line is garbage (e.g. a record cut by an unclean shutdown)
        if isinstance(obj, dict):
            objects.append(obj)
    if not objects:
        return [], LineStatus.CORRUPT, []
    clean_objects: list[dict[str, Any]] = []
    for obj in objects:
        try:
            orjson.dumps(obj)
        except TypeError:
            # stdlib json turns "\ud83d" escapes into lone surrogates: replace them (as CC 2.1.132 does)
            obj = _strip_surrogates(obj)
            repaired = True
        clean_objects.append(obj)
    records = [salvage(obj) for obj in clean_objects]
    if repaired:
        status = LineStatus.REPAIRED
    elif len(objects) > 1:
        status = LineStatus.GLUED
    else:
        status = LineStatus.SALVAGED
    return records, status, clean_objects


def _strip_surrogates(value: Any) -> Any:
    """Return ``value`` with every lone surrogate replaced by U+FFFD (recursively)."""
    if isinstance(value, str):
        return _SURROGATE_RE().sub("\ufffd", value)
    if isinstance(value, dict):
        return {_strip_surrogates(k): _strip_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_surrogates(v) for v in value]
    return value


def salvage(obj: dict[str, Any], max_repairs: int = 16) -> Record:
    """Convert a decoded dict to a :class:`Record`, deleting fields whose type does not fit.

    msgspec reports the JSON path of the first offending value (``$.message.content[0].text``); we delete
    that value and retry.  This keeps every well-typed field of a record whose shape drifted instead of
    dropping the whole record (at worst only its ``type`` is left).
    """
    data = orjson.dumps(obj)
    for _ in range(max_repairs):
        try:
            return RECORD_DECODER.decode(data)
        except msgspec.ValidationError as exc:
            if not _delete_path(obj, str(exc)):
                break
            data = orjson.dumps(obj)
        except (msgspec.DecodeError, ValueError):
            break
    record_type = obj.get("type")
    return Record(type=record_type if isinstance(record_type, str) else None)


def _delete_path(obj: dict[str, Any], error: str) -> bool:
    """Delete the value a msgspec ValidationError points at; True if something was removed."""
    match = _PATH_RE().search(error)
    if match is None or not match.group(1):
        return False
    parts: list[str | int] = []
    for key, index in _PATH_PART_RE().findall(match.group(1)):
        parts.append(int(index) if index else key)
    parent: Any = obj
    for part in parts[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
    last = parts[-1]
    if isinstance(parent, dict) and isinstance(last, str) and last in parent:
        del parent[last]
        return True
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        del parent[last]
        return True
    return False


def decode_raw(raw: msgspec.Raw) -> Any:
    """Decode a lazily kept ``Raw`` field into builtins; ``None`` if absent or undecodable."""
    if not raw:
        return None
    try:
        return _ANY_DECODER.decode(raw)
    except (msgspec.DecodeError, ValueError):
        return None


def raw_to_text(raw: msgspec.Raw) -> str:
    """Text of a ``tool_result`` content: a string, or the concatenated ``text`` of a list of blocks."""
    value = decode_raw(raw)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts: list[str] = [
            b["text"] for b in value if isinstance(b, dict) and isinstance(b.get("text"), str)
        ]
        return "\n".join(parts)
    return ""
