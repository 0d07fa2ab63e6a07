"""Claude Code transcript parsing (sans-I/O): decode JSONL records and turn them into events and state.

Entry points: :class:`TranscriptParser` (incremental, checkpointable) and, for digests, ``shared.digest``.
The package exports what :mod:`shared.transcript.parser` lists in its ``__all__``, plus ``MAX_LINE_BYTES``.
"""

from shared.transcript import parser
from shared.transcript.parser import *  # noqa: F403  (its __all__ is this package's API)
from shared.transcript.records import MAX_LINE_BYTES

__all__ = ["MAX_LINE_BYTES"]
__all__ += parser.__all__
