"""The digest's entry model: one short line per step of an agent, and the entry kinds.

Independent of any transcript format: entries are made by :mod:`shared.digest.session` from the common
events and rendered by :mod:`shared.digest.render`.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "API_ERROR",
    "API_RETRY",
    "COMPACTION",
    "INTERRUPT",
    "MODES",
    "PROMPT",
    "TASK",
    "TEXT",
    "TOOL",
    "DigestEntry",
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


