"""Adopting a live session: a PTY master and a process that a previous daemon started.

Two ways a session reaches a new daemon alive:

* **a graceful restart** (``maestrod.handoff``): the daemon re-executes itself in place (same pid), so the
  agents are still its children; each session's in-memory state travels in the handoff state file
  (:func:`snapshot` writes it, :func:`restore` reads it), its scrollback through a memfd;
* **a crash under systemd**: the PTY masters come back from systemd's file descriptor store
  (``LISTEN_FDNAMES`` ``pty.<session>.<pid>.<start time>``); the processes are no longer our children, and
  nothing but the terminal survived (:func:`from_fd_store`).

Either way the process is watched with a pidfd (:class:`AdoptedChild`), reaped if it is our child. Nothing
is sent to the agent: no signal, no byte; what it wrote meanwhile waits in the PTY and is read next.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import attrs
import trio

from maestrod.service import PTY_FDNAME_PREFIX, proc_start_time
from maestrod.sessions.live import LiveSession
from maestrod.sessions.pty import PtyProcess
from maestrod.sessions.status import (AGENT_KINDS, Decision, Hibernated, HookSeen, PersonTyped, ProcessExited,
                                      ProcessStarted, Queued, ScreenSeen, TranscriptSeen)

log = logging.getLogger("maestrod.sessions")

_OBSERVATIONS: dict[str, type[Any]] = {c.__name__: c for c in (
    ProcessStarted, ProcessExited, HookSeen, TranscriptSeen, ScreenSeen, PersonTyped, Hibernated, Queued)}
#: The status machine's witnesses, as attributes of :class:`~maestrod.sessions.status.StatusMachine`.
_MACHINE_FIELDS = ("process", "hook", "turn_hook", "dialog_hook", "transcript", "screen", "person", "parked")


class AdoptedChild:
    """A process a previous daemon (this pid before an exec, or a crashed one) started: its exit is seen
    through a pidfd; it is reaped when it is our child (a re-exec keeps children), and its exit code is
    unknown (None) when it is not (after a crash it was reparented)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = False
        self._pidfd = os.pidfd_open(pid)  # raises ProcessLookupError when it is gone already

    async def wait(self) -> int | None:
        if not self._exited:
            await trio.lowlevel.wait_readable(self._pidfd)
            self._exited = True
            try:
                _pid, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.returncode = None  # not ours: its parent (init or a subreaper) reaps it
            os.close(self._pidfd)
        return self.returncode

    def close(self) -> None:
        if not self._exited:
            self._exited = True
            os.close(self._pidfd)


def fd_store_name(sid: str, pid: int) -> str | None:
    """The FDNAME a session's PTY master is stored under in systemd's fd store (None: the process is gone).
    The start time makes a reused pid a different name."""
    start = proc_start_time(pid)
    return None if start is None else f"{PTY_FDNAME_PREFIX}{sid}.{pid}.{start}"


def parse_fd_store_name(name: str) -> tuple[str, int, int] | None:
    """(session id, pid, start time) from an FDNAME written by :func:`fd_store_name`."""
    try:
        sid, pid, start = name[len(PTY_FDNAME_PREFIX):].rsplit(".", 2)
        return sid, int(pid), int(start)
    except ValueError:
        return None


# -- a graceful restart: the state of a live session, out and back in ------------------------------------

def _obs_out(obs: Any, now: float) -> dict[str, Any] | None:
    if obs is None:
        return None
    data = attrs.asdict(obs)
    data["age"] = now - data.pop("at")
    # Times travel as ages: the successor's trio clock has another origin.
    if data.get("written_at") is not None:
        data["written_age"] = now - data.pop("written_at")
    data["type"] = type(obs).__name__
    return data


def _obs_in(data: dict[str, Any] | None, now: float) -> Any:
    if data is None:
        return None
    data = dict(data)
    cls = _OBSERVATIONS[data.pop("type")]
    data["at"] = now - float(data.pop("age"))
    if "written_age" in data:
        data["written_at"] = now - float(data.pop("written_age"))
    return cls(**data)


def snapshot(s: LiveSession, now: float, scrollback_out: bytearray) -> dict[str, Any]:
    """What a successor needs to go on with ``s`` (JSON-able); its scrollback is appended to
    ``scrollback_out`` (the memfd's content) at the offset recorded. Call with the reader stopped: nothing
    may change between this and the exec."""
    sb = s.scrollback
    start, held = sb.read(sb.start, sb.total - sb.start)
    at = len(scrollback_out)
    scrollback_out += held
    term = s.terminal
    d = s.decision
    return {
        "id": s.id, "agent": s.kind.name, "pid": s.pty.pid, "fd": s.pty.master,
        "rows": term.rows, "cols": term.cols,
        "scrollback": {"capacity": sb.capacity, "start": start, "at": at, "length": len(held)},
        "screen": term.snapshot(),
        "machine": {f: _obs_out(getattr(s.machine, f), now) for f in _MACHINE_FIELDS},
        "decision": {**{k: v for k, v in attrs.asdict(d).items() if k != "recheck_at"},
                     "recheck_in": None if d.recheck_at is None else d.recheck_at - now},
        "attention_written": s.attention_written, "held": s.held,
        "awaiting_confirm_in": max(0.0, s.awaiting_confirm_until - now),
        "stop_requested": s.stop_requested, "stopping": s.stopping,
        "fd_store_name": s.fd_store_name,
    }


def restore(state: dict[str, Any], scrollback: memoryview, now: float) -> LiveSession:
    """The live session ``state`` (from :func:`snapshot`) describes, its PTY adopted. Raises OSError when
    its process is gone already (its exit is then the next daemon's to record, as a lost session)."""
    child = AdoptedChild(int(state["pid"]))
    kind = AGENT_KINDS[state["agent"]]
    rows, cols = int(state["rows"]), int(state["cols"])
    sbs = state["scrollback"]
    s = LiveSession(state["id"], kind, PtyProcess(child, int(state["fd"])), rows, cols, int(sbs["capacity"]))
    s.scrollback.resume(int(sbs["start"]), bytes(scrollback[sbs["at"]: sbs["at"] + sbs["length"]]))
    s.terminal.restore_snapshot(state["screen"])
    for f in _MACHINE_FIELDS:
        setattr(s.machine, f, _obs_in(state["machine"][f], now))
    d = dict(state["decision"])
    recheck_in = d.pop("recheck_in")
    s.decision = Decision(**d, recheck_at=None if recheck_in is None else now + recheck_in)
    s.attention_written = state["attention_written"]
    s.held = state["held"]
    s.awaiting_confirm_until = now + float(state["awaiting_confirm_in"])
    s.stop_requested = state["stop_requested"]
    s.fd_store_name = state["fd_store_name"]
    return s


# -- a crash under systemd: only the terminal survived ------------------------------------------------

#: What the status machine is told of an adopted Claude session whose witnesses were lost with the crash,
#: from the status the store last recorded: the next hook, transcript line or screen corrects it.
_SEED_HOOK = {"idle": "Stop", "working": "UserPromptSubmit"}


def from_fd_store(row: Any, fd: int, name: str, scrollback_bytes: int, now: float) -> LiveSession | None:
    """The session of store row ``row`` whose PTY master systemd kept (``fd``, stored as ``name``), if its
    process is the one that was stored (same pid and start time); None otherwise (the caller closes
    ``fd``)."""
    parsed = parse_fd_store_name(name)
    if parsed is None or parsed[0] != row["id"] or row["pid"] != parsed[1]:
        return None
    _sid, pid, start = parsed
    if proc_start_time(pid) != start:
        return None
    try:
        child = AdoptedChild(pid)
    except OSError:
        return None
    if proc_start_time(pid) != start:  # the pid was reused between the check and the pidfd
        child.close()
        return None
    kind = AGENT_KINDS.get(row["agent"])
    if kind is None:
        child.close()
        return None
    os.set_blocking(fd, False)
    s = LiveSession(row["id"], kind, PtyProcess(child, fd), int(row["rows"]), int(row["cols"]), scrollback_bytes)
    s.machine.observe(ProcessStarted(now))
    hook = _SEED_HOOK.get(row["status"])
    if hook is not None and kind.hooks:
        s.machine.observe(HookSeen(now, hook))
    s.decision = Decision(row["status"], "adopted after a daemon crash", "daemon")
    s.fd_store_name = name
    return s
