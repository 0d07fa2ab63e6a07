"""``session.wait``: park until sessions are idle or exited, woken by their events, never by polling."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import trio
import trio.lowlevel

from maestrod.sessions.live import LiveSession
from maestrod.sessions.store import SessionStore

#: Events that may change what ``session.wait`` is waiting for.
WAIT_TOPICS = frozenset({"session.status", "session.prompt", "session.prompt_delivered",
                         "session.needs_attention"})


class SessionWaits:
    def __init__(self, store: SessionStore, live: Callable[[str], LiveSession | None]) -> None:
        self.store = store
        self._live = live
        #: ``session.wait`` calls parked on a session, woken by its events.
        self._waiters: dict[str, set[trio.Event]] = {}

    def on_event(self, event: dict[str, Any]) -> None:
        if event["topic"] in WAIT_TOPICS:
            self.wake(event["data"].get("session_id"))

    def wake(self, sid: str | None) -> None:
        for ev in self._waiters.get(sid or "", ()):
            ev.set()

    def count(self) -> int:
        return sum(len(v) for v in self._waiters.values())

    def reached(self, row: sqlite3.Row, until: str) -> tuple[bool, float | None]:
        """Whether the session of ``row`` is ``until`` now; when it might become so without an event, the
        time to look again.

        ``exited`` is final. ``idle`` means the agent will not go on by itself: status ``idle`` or
        ``waiting_input`` with no prompt queued and none delivered but unconfirmed (a just-spawned agent is
        briefly idle before its first prompt lands), or a dialog waiting for a person (``needs_attention``:
        nothing moves until someone answers it, so the waiter is told); an exited session is idle too.
        """
        sid, status = row["id"], row["status"]
        if status == "exited":
            return True, None
        if until == "exited" or status not in ("idle", "waiting_input", "hibernated"):
            return False, None
        if status == "waiting_input" and row["needs_attention"]:
            return True, None
        if self.store.queued_count(sid):
            return False, None
        live = self._live(sid)
        if live is not None and live.awaiting_confirm_until > trio.current_time():
            return False, live.awaiting_confirm_until
        return True, None

    def state(self, sids: Sequence[str], until: str, done: bool) -> dict[str, Any]:
        sessions: list[dict[str, Any]] = []
        reached: list[str] = []
        pending: list[str] = []
        for sid in sids:
            row = self.store.row(sid)
            ok = self.reached(row, until)[0]
            (reached if ok else pending).append(sid)
            sessions.append({"id": sid, "name": row["name"], "status": row["status"], "reached": ok,
                             "exit_reason": row["exit_reason"], "exit_code": row["exit_code"],
                             "needs_attention": row["needs_attention"]})
        return {"until": until, "done": done, "reached": reached, "pending": pending, "sessions": sessions}

    async def wait(self, sids: Sequence[str], until: str, timeout: float | None) -> dict[str, Any]:
        """Until every session in ``sids`` is ``until`` (see :meth:`reached`) or ``timeout`` passes."""
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        while True:
            wake = trio.Event()
            for sid in sids:  # registered before looking: no event can slip in between
                self._waiters.setdefault(sid, set()).add(wake)
            try:
                recheck = math.inf
                pending = False
                for sid in sids:
                    ok, again = self.reached(self.store.row(sid), until)
                    if not ok:
                        pending = True
                        if again is not None:
                            recheck = min(recheck, again)
                if not pending or trio.current_time() >= deadline:
                    await trio.lowlevel.checkpoint()
                    return self.state(sids, until, not pending)
                with trio.move_on_at(min(deadline, recheck)):
                    await wake.wait()
            finally:
                for sid in sids:
                    waiting = self._waiters.get(sid)
                    if waiting is not None:
                        waiting.discard(wake)
                        if not waiting:
                            del self._waiters[sid]
