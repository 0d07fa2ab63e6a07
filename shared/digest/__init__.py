"""Digests of agents' transcripts for a coordinator (pure: no I/O, no clock).

Layout: :mod:`~shared.digest.entries` (the entry model), :mod:`~shared.digest.summaries` (one line per
step), :mod:`~shared.digest.escalation` (needs-attention rules), :mod:`~shared.digest.session` (the
incremental digest of one session and its window) and :mod:`~shared.digest.render` (text output).  The
digest reads only the common event model of :mod:`shared.transcript.events`, so it is the same for every
agent kind.  This package re-exports the public names so callers import from ``shared.digest``.
"""

from shared.digest.entries import MODES, DigestEntry
from shared.digest.escalation import Attention, Escalator
from shared.digest.render import entry_line, render_text
from shared.digest.session import DigestConfig, DigestUpdate, DigestWindow, SessionDigest, digest_bytes
from shared.digest.summaries import MAX_SUMMARY, first_sentence, short_path, summarize_tool_call
from shared.transcript.claude import agent_label_for_path

__all__ = [
    "MAX_SUMMARY",
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
    "first_sentence",
    "render_text",
    "short_path",
    "summarize_tool_call",
]
