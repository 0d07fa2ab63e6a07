"""Rendering a digest window as text: ``14:32:05 Read: src/api.py`` per entry, with a header line.

What ``maestroctl digest`` and ``session log`` print and what the coordinator context embeds.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from shared.digest.entries import DigestEntry
from shared.digest.session import DigestWindow
from shared.digest.summaries import format_tokens
from shared.transcript.events import parse_timestamp

__all__ = ["entry_line", "render_text"]



def _clock(timestamp: str, tz: tzinfo | None) -> str:
    if tz is UTC and len(timestamp) >= 19 and timestamp.endswith("Z"):
        return timestamp[11:19]
    epoch = parse_timestamp(timestamp)
    if epoch is None:
        return "--:--:--"
    return datetime.fromtimestamp(epoch, tz).strftime("%H:%M:%S")


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
            f"tok in {format_tokens(usage.input_tokens)} out {format_tokens(usage.output_tokens)}"
            f" cache {format_tokens(usage.cache_read_tokens)}r/{format_tokens(usage.cache_creation_tokens)}w"
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

