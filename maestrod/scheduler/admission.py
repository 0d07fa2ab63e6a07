"""Admission: may one more agent start now? A pure function of the room (live agents, memory, pressure)
and the limits; the governor (:mod:`maestrod.scheduler.governor`) gathers the facts and acts."""

from __future__ import annotations

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
