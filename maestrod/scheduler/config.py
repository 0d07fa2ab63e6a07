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


@attrs.define
class HandoffConfig:
    """``[handoff]``: a run worker whose context reaches ``at`` of its model's window checkpoints and a fresh
    session takes its task over (docs/scheduler.md). ``windows``: model-name prefix -> window (tokens), over
    the built-in table; ``default_window`` for a model neither knows; ``seed_budget_tokens``: the successor's
    first prompt (note, task, digest) at most; ``checkpoint_timeout_seconds``: how long the worker may take
    to checkpoint before the successor starts anyway."""

    enabled: bool = True
    at: float = attrs.field(default=0.8, validator=[attrs.validators.gt(0), attrs.validators.le(1)])
    default_window: int = attrs.field(default=200_000, validator=attrs.validators.ge(1000))
    windows: dict[str, int] = attrs.Factory(dict)
    seed_budget_tokens: int = attrs.field(default=4000, validator=attrs.validators.ge(200))
    checkpoint_timeout_seconds: float = attrs.field(default=600.0, validator=attrs.validators.gt(0))
