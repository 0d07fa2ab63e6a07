"""``[governor]`` and ``[handoff]`` of config.toml (``maestrod.config.Config``): admission limits, hibernation
for room, and the context hand-off threshold."""

from __future__ import annotations

import attrs

GIB = 1024 ** 3
MIB = 1024 ** 2


@attrs.define
class GovernorConfig:
    """``[governor]``: a spawn that would cross a limit waits (status ``queued``, with why) instead of failing.

    ``max_live_agents``: sessions with a running process at most (0: no limit); ``min_available_bytes``:
    keep this much MemAvailable (``/proc/meminfo``) after the new agent's expected size
    (``agent_estimate_bytes`` until live agents give a measured mean); ``max_pressure``: no new agent while
    ``/proc/pressure/memory`` ``some avg10`` (the share of the last 10 s some task stalled on memory, %)
    is above it (0: ignored). ``hibernate_idle``: make room by hibernating idle Claude sessions, oldest
    idle first, once idle for ``hibernate_after_seconds``. ``recheck_seconds``: how often memory is looked
    at again while spawns wait for it."""

    max_live_agents: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    min_available_bytes: int = attrs.field(default=2 * GIB, validator=attrs.validators.ge(0))
    agent_estimate_bytes: int = attrs.field(default=400 * MIB, validator=attrs.validators.ge(0))
    max_pressure: float = attrs.field(default=25.0, validator=attrs.validators.ge(0))
    hibernate_idle: bool = True
    hibernate_after_seconds: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    recheck_seconds: float = attrs.field(default=2.0, validator=attrs.validators.gt(0))
