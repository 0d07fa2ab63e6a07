"""Which adapter reads a transcript: the registry of formats and recognition from a file's first records.

One entry per transcript format (``claude``: Claude Code, ``codex``: Codex CLI rollouts).  Recognition
looks at the first complete, decodable lines only (a few KB), so ``maestroctl digest FILE`` needs no flag
and a daemon can pick the adapter before tailing.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from shared.transcript.claude import TranscriptParser
from shared.transcript.codex import CodexRolloutParser
from shared.transcript.events import AgentTranscript

__all__ = ["DEFAULT_FORMAT", "FORMATS", "detect_format", "new_parser", "parser_from_checkpoint"]

#: Adapter class per format name (the ``format`` of its checkpoints).
FORMATS: dict[str, Any] = {"claude": TranscriptParser, "codex": CodexRolloutParser}
DEFAULT_FORMAT = "claude"
#: Lines looked at by :func:`detect_format` before it gives up and answers the default.
DETECT_LINES = 8


def format_of_record(record: Any) -> str | None:
    """The format a decoded line belongs to, or ``None`` if it says nothing (blank, corrupt, not an object)."""
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("payload"), dict) and "type" in record and "uuid" not in record:
        return "codex"  # {timestamp, type, payload}: a Codex rollout line
    if "type" in record:
        return "claude"
    return None


#: How Codex starts every line (Claude Code's never do): enough to tell without finding the end of the first
#: line or decoding it (~20 KB of instructions).
_CODEX_HEAD_RE = re.compile(rb'\{"timestamp":"[^"\\\n]*",(?:"ordinal":\d+,)?"type":"[a-z_]+","payload":\{')


def detect_format(data: bytes) -> str:
    """Recognise a transcript from its first records; :data:`DEFAULT_FORMAT` when nothing tells."""
    start = 0
    for _ in range(DETECT_LINES):
        if _CODEX_HEAD_RE.match(data, start):
            return "codex"
        end = data.find(b"\n", start)
        line = data[start:] if end < 0 else data[start:end]
        if line.strip():
            try:
                found = format_of_record(orjson.loads(line))
            except orjson.JSONDecodeError:
                found = None
            if found is not None:
                return found
        if end < 0:
            break
        start = end + 1
    return DEFAULT_FORMAT


def new_parser(format: str = DEFAULT_FORMAT, *, agent: str | None = None, offset: int = 0) -> AgentTranscript:
    """A fresh adapter for ``format`` (``ValueError`` naming the known formats if unknown)."""
    try:
        cls = FORMATS[format]
    except KeyError:
        raise ValueError(f"unknown transcript format {format!r} (known: {', '.join(FORMATS)})") from None
    parser: AgentTranscript = cls(agent=agent, offset=offset)
    return parser


def parser_from_checkpoint(data: dict[str, Any]) -> AgentTranscript:
    """Rebuild the adapter a checkpoint was taken from (checkpoints without ``format`` are Claude Code's)."""
    format = data.get("format") or DEFAULT_FORMAT
    if format not in FORMATS:
        raise ValueError(f"unknown transcript format {format!r} in checkpoint")
    parser: AgentTranscript = FORMATS[format].from_checkpoint(data)
    return parser
