"""Admission: may one more agent start now, which waiting start goes first, and which idle agent is
hibernated to make room? Pure functions of the facts (live agents, memory, pressure, the queue, the idle
sessions) and the limits; the governor (:mod:`maestrod.scheduler.governor`) gathers the facts and acts.

A *start* is a spawn or a wake (a hibernated session relaunched): both add one live agent, so both are
admitted, queued and served by the same rules."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import attrs

from maestrod.scheduler.config import MIB, GovernorConfig


@attrs.frozen
class Room:
    #: Sessions with a running process (starting ones included).
    live: int
    #: ``MemAvailable`` in bytes (None: not known on this system).
    available: int | None = None
    #: ``/proc/pressure/memory`` ``some avg10`` in % (None: no PSI here).
    pressure: float | None = None
    #: The mean resident size of the live agents' process trees (None: none measured yet).
    agent_mean: int | None = None


def refuse(room: Room, cfg: GovernorConfig) -> str | None:
    """Why one more agent may not start now, or None when it may.

    With no agent live, one always may: nothing maestro could free would make more room, and refusing
    would queue it forever."""
    if room.live == 0:
        return None
    if cfg.max_live_agents and room.live >= cfg.max_live_agents:
        return (f"{room.live} agents are live and [governor] max_live_agents is {cfg.max_live_agents}: "
                "it starts when one exits or is hibernated")
    if room.pressure is not None and cfg.max_pressure and room.pressure > cfg.max_pressure:
        return (f"memory pressure is {room.pressure:.1f}% (/proc/pressure/memory some avg10), above [governor] "
                f"max_pressure {cfg.max_pressure:g}")
    if room.available is not None and cfg.min_available_bytes:
        need = room.agent_mean if room.agent_mean is not None else cfg.agent_estimate_bytes
        if room.available - need < cfg.min_available_bytes:
            return (f"MemAvailable is {room.available // MIB} MiB; another agent (~{need // MIB} MiB) would leave "
                    f"less than [governor] min_available_bytes ({cfg.min_available_bytes // MIB} MiB)")
    return None


#: Task priority -> rank (served lowest first).
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def rank(role: str, priorities: Iterable[str]) -> int:
    """A waiting start's place: a coordinator first (-1), then by its tasks' highest priority (no task:
    medium)."""
    if role == "coordinator":
        return -1
    return min((PRIORITY_RANK.get(p, 2) for p in priorities), default=2)


@attrs.frozen
class Waiting:
    session_id: str
    rank: int
    #: First come, first served among equal ranks.
    seq: int


def serve_order(waiting: Iterable[Waiting]) -> list[str]:
    """The waiting starts (spawns and wakes alike) in the order they are served."""
    return [w.session_id for w in sorted(waiting, key=lambda w: (w.rank, w.seq))]


@attrs.frozen
class IdleAgent:
    session_id: str
    #: The agent kind (``claude``, ``codex``, ``command``).
    agent: str
    #: When it last became idle (a monotonic clock).
    idle_since: float


def to_hibernate(idle: Iterable[IdleAgent], now: float, cfg: GovernorConfig,
                 spare: Collection[str] = ()) -> str | None:
    """The idle Claude session to hibernate for room (idle longest, for at least ``hibernate_after_seconds``),
    or None. ``spare``: sessions that must not be chosen -- the one being woken, one whose prompt waits to be
    typed: hibernating them would undo the start that needed the room."""
    if not cfg.hibernate_idle:
        return None
    found = [(a.idle_since, a.session_id) for a in idle
             if a.agent == "claude" and a.session_id not in spare
             and now - a.idle_since >= cfg.hibernate_after_seconds]
    return min(found)[1] if found else None


def mem_available(meminfo: str) -> int | None:
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def pressure_some_avg10(psi: str) -> float | None:
    for line in psi.splitlines():
        if line.startswith("some "):
            for field in line.split()[1:]:
                key, _, value = field.partition("=")
                if key == "avg10":
                    return float(value)
    return None
