"""Regular expressions compiled on first use rather than on import.

The daemon imports every module at start-up, and start-up is the pause of a graceful restart (the socket does
not answer until the re-executed daemon has imported everything). A module-level ``re.compile`` of a pattern
used only when a transcript line or a command is read costs that pause its compile time for nothing (together
~6 ms for the transcript and digest modules); compiled here at first use, it costs it once, later, and never
when it is not needed. ``re`` itself stays imported at start-up, so nothing is read from disk later.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import AnyStr


def lazy_pattern(pattern: AnyStr, flags: int = 0) -> Callable[[], re.Pattern[AnyStr]]:
    """A function that returns ``re.compile(pattern, flags)``, compiling it at its first call only."""
    return functools.cache(functools.partial(re.compile, pattern, flags))
