"""The governor: admits a start -- a spawn, or the wake of a hibernated session -- while there is room, queues
it (status ``queued``, with why) when it would cross a limit, serves the queue in priority order as room frees,
and makes room by hibernating idle Claude sessions, oldest idle first (never the one being woken).

Room is decided by :func:`maestrod.scheduler.admission.refuse` from what is measured now: the sessions with a
running process (hibernated and queued ones hold none), ``MemAvailable``, ``/proc/pressure/memory`` and the
mean size of the live agents' process trees. The queue is re-served whenever a session's status changes (an
exit or a hibernation frees room) and every ``recheck_seconds`` while it is not empty (memory frees by itself).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from maestrod.scheduler.admission import (IdleAgent, Room, Waiting, mem_available, pressure_some_avg10, rank,
                                          refuse, serve_order, to_hibernate)
from maestrod.scheduler.config import GovernorConfig
from maestrod.scheduler.resources import ProcessTrees
from maestrod.sessions.live import LiveSession
from maestrod.sessions.store import SessionStore
from maestrod.store.tasks import TaskStore
from shared import errors

log = logging.getLogger("maestrod.governor")

SYSTEM = "system"


@attrs.define
class Pending:
    session_id: str
    #: Served lowest first: a coordinator, then by its tasks' highest priority; then first come.
    rank: int
    seq: int
    why: str
    launch: Callable[[], Awaitable[Any]]
    #: A hibernated session waiting to be woken (else a spawn that never started).
    wake: bool = False


class Governor:
    def __init__(self, cfg: GovernorConfig, store: SessionStore, tasks: TaskStore,
                 sessions: Mapping[str, LiveSession], hibernate: Callable[[str], Awaitable[Any]],
                 trees: ProcessTrees, *, meminfo: Path = Path("/proc/meminfo"),
                 psi: Path = Path("/proc/pressure/memory")) -> None:
        self.cfg = cfg
        self.store = store
        self.tasks = tasks
        self.sessions = sessions
        self._hibernate = hibernate
        self.trees = trees
        self.meminfo = meminfo
        self.psi = psi
        self.queue: dict[str, Pending] = {}
        self._seq = itertools.count()
        #: Admitted, process not started yet: they count as live.
        self._reserved: set[str] = set()
        #: When each session last became idle (trio clock), for "oldest idle first".
        self._idle_since: dict[str, float] = {}
        self._hibernating: set[str] = set()
        #: Sessions woken through admission that have not worked a turn since: not hibernated for room
        #: (that would undo the wake the room was made for).
        self._woken: set[str] = set()
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        #: Live agents at most, since start (bench_taskrun reports it).
        self.peak_live = 0

    # -- facts --------------------------------------------------------------------------------------

    def live_ids(self) -> set[str]:
        running = {sid for sid, s in self.sessions.items() if not s.is_exited}
        self._reserved -= running | {sid for sid in self._reserved if sid not in self.queue
                                     and (row := self.store.find(sid)) is not None and row["status"] == "exited"}
        return running | self._reserved

    def room(self) -> Room:
        live = self.live_ids()
        available = pressure = None
        try:
            available = mem_available(self.meminfo.read_text())
        except OSError:
            pass
        try:
            pressure = pressure_some_avg10(self.psi.read_text())
        except OSError:
            pass
        sizes = [u.rss_bytes for sid in live if (s := self.sessions.get(sid)) is not None
                 and (u := self.trees.usage(s.pty.pid)) is not None]
        return Room(len(live), available, pressure, sum(sizes) // len(sizes) if sizes else None)

    def _rank(self, role: str, task_ids: Sequence[str]) -> int:
        priorities = []
        for t in task_ids:
            try:
                priorities.append(self.tasks.find(t).priority)
            except errors.RpcError:
                continue
        return rank(role, priorities)

    # -- what the session manager asks --------------------------------------------------------------

    def hold(self, sid: str, *, wake: bool = False) -> str | None:
        """Why a start (a spawn, or the wake of a hibernated session) must wait (then :meth:`enqueue` it), or
        None: it starts now (and counts as live)."""
        why = (f"{len(self.queue)} start(s) wait for room before it (served in priority order)" if self.queue
               else refuse(self.room(), self.cfg))
        if why is None:
            self.reserve(sid)
            if wake:
                self._woken.add(sid)
        return why

    def reserve(self, sid: str) -> None:
        """``sid`` is starting without waiting (admitted, or resumed at daemon start: it was live before):
        it counts as live from now on."""
        self._reserved.add(sid)
        self.peak_live = max(self.peak_live, len(self.live_ids()))

    def enqueue(self, sid: str, role: str, task_ids: Sequence[str], why: str,
                launch: Callable[[], Awaitable[Any]], *, wake: bool = False) -> None:
        self.queue[sid] = Pending(sid, self._rank(role, task_ids), next(self._seq), why, launch, wake)
        self.store.record(SYSTEM, sid, "session.queued",
                          {"reason": why, "queued": len(self.queue), **({"wake": True} if wake else {})})
        self._changed.set()

    def why(self, sid: str) -> str | None:
        pending = self.queue.get(sid)
        return None if pending is None else pending.why

    def cancel(self, sid: str, actor: str) -> bool:
        """A queued start stopped before it started: it ends ``exited`` (stopped). False: not queued."""
        pending = self.queue.pop(sid, None)
        if pending is None:
            return False
        why = ("stopped while its wake waited for room" if pending.wake
               else "stopped while it waited for room (it never started)")
        self.store.write_status(sid, "queued", "exited", actor,
                                {"exit_reason": "stopped", "exit_code": None, "source": "daemon", "reason": why})
        return True

    # -- the service --------------------------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        if event["topic"] != "session.status":
            return
        data = event["data"]
        sid = data.get("session_id")
        if data.get("to") == "idle":
            self._idle_since[sid] = trio.current_time()
        else:
            self._idle_since.pop(sid, None)
        if data.get("to") in ("exited", "hibernated"):
            self._hibernating.discard(sid)
        if data.get("to") in ("exited", "hibernated", "working"):
            self._woken.discard(sid)
        self._changed.set()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                with trio.move_on_after(self.cfg.recheck_seconds if self.queue else float("inf")):
                    await self._changed.wait()
                self._changed = trio.Event()
                try:
                    self.serve()
                except Exception:  # one bad queued spawn must not stop admission (or the daemon)
                    log.exception("the admission queue could not be served")

    def serve(self) -> None:
        """Start the queued spawns and wakes there is room for, best first; make room when there is none."""
        while self.queue:
            head = self.queue[serve_order(Waiting(q.session_id, q.rank, q.seq) for q in self.queue.values())[0]]
            why = refuse(self.room(), self.cfg)
            if why is not None:
                head.why = why
                self._make_room()
                return
            del self.queue[head.session_id]
            self.reserve(head.session_id)
            if head.wake:
                self._woken.add(head.session_id)
            self.store.write_status(head.session_id, "queued", "spawning", SYSTEM,
                                    {"source": "daemon", "reason": "admitted: there is room now"})
            self.store.record(SYSTEM, head.session_id, "session.admitted",
                              {"waited_for": head.why, **({"wake": True} if head.wake else {})})
            assert self._nursery is not None
            self._nursery.start_soon(self._launch, head)

    async def _launch(self, pending: Pending) -> None:
        try:
            await pending.launch()
        except errors.RpcError as exc:  # the session is exited (failed) with the reason
            log.warning("queued session %s could not start: %s", pending.session_id, exc.message)
        finally:
            self._changed.set()

    def _make_room(self) -> None:
        """Hibernate the idle Claude session that has been idle longest (one at a time)."""
        if not self.cfg.hibernate_idle or self._hibernating:
            return
        idle = [IdleAgent(sid, s.kind.name, since) for sid, s in self.sessions.items()
                if not s.is_exited and s.status == "idle" and (since := self._idle_since.get(sid)) is not None]
        # Never the session being woken, nor one whose prompt waits to be typed (it is about to work).
        spare = self._woken | set(self.queue) | {a.session_id for a in idle
                                                   if self.store.queued_count(a.session_id)}
        sid = to_hibernate(idle, trio.current_time(), self.cfg, spare)
        if sid is None:
            return
        self._hibernating.add(sid)
        log.info("hibernating idle session %s to make room for %d queued spawn(s)", sid, len(self.queue))
        assert self._nursery is not None
        self._nursery.start_soon(self._hibernate_one, sid)

    async def _hibernate_one(self, sid: str) -> None:
        try:
            await self._hibernate(sid)
        except errors.RpcError as exc:
            log.info("session %s not hibernated for room: %s", sid, exc.message)
        finally:
            self._hibernating.discard(sid)
            self._changed.set()
