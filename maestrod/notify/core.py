"""Which session changes a person is told about: a pure decider (no clock, no I/O).

Events from the bus go in with the time they were seen (:meth:`NotifyDecider.observe`); out comes at most
one :class:`Notification` per event. The runner (:mod:`maestrod.notify.runner`) turns those into processes.

- ``waiting_input``: a ``session.status`` change to ``waiting_input`` (a dialog, a question).
- ``needs_attention``: a ``session.needs_attention`` event that sets a reason (clearing it says nothing).
- ``long_turn``: a stretch of ``working`` that ended ``idle`` after more than ``long_turn_seconds``.
- ``exited``: a ``session.status`` change to ``exited``.

Debounce is per session and leading-edge: the first change notifies at once (the 2 s promise), and the
session's next changes within ``debounce_seconds`` of that notification are counted and dropped. A dialog
is one such burst: its ``waiting_input`` status and its ``needs_attention`` reason arrive together and the
person hears once.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import attrs

from maestrod.notify.config import EVENTS

#: Sessions remembered for debounce before the stale ones (outside every window) are forgotten.
_PRUNE_AT = 1024


@attrs.frozen
class Notification:
    event: str
    session_id: str
    session_name: str
    #: The project's id when the event carried it (``session.status`` does); the runner names it.
    project_id: str | None
    reason: str


def _exit_reason(data: dict[str, Any]) -> str:
    parts = [str(data.get("exit_reason") or "exited")]
    if data.get("exit_code") is not None:
        parts.append(f"(code {data['exit_code']})")
    text = " ".join(parts)
    return f"{text}: {data['reason']}" if data.get("reason") else text


class NotifyDecider:
    def __init__(self, *, events: Collection[str] = EVENTS, long_turn_seconds: float = 120.0,
                 debounce_seconds: float = 10.0) -> None:
        self.events = frozenset(events)
        self.long_turn_seconds = long_turn_seconds
        self.debounce_seconds = debounce_seconds
        #: session -> when its current stretch of ``working`` began
        self._working_since: dict[str, float] = {}
        #: session -> when it was last notified
        self._notified_at: dict[str, float] = {}
        #: changes that would have notified but fell inside their session's window
        self.debounced = 0

    def observe(self, event: dict[str, Any], now: float) -> Notification | None:
        """The notification ``event`` (a bus event: topic, data) calls for at time ``now``, if any."""
        topic, data = event.get("topic"), event.get("data") or {}
        sid = data.get("session_id")
        if not isinstance(sid, str):
            return None
        if topic == "session.status":
            found = self._status(sid, data, now)
        elif topic == "session.needs_attention" and data.get("needs_attention") and data.get("reason"):
            found = ("needs_attention", str(data["reason"]))
        else:
            return None
        if found is None:
            return None
        kind, reason = found
        exited = topic == "session.status" and data.get("to") == "exited"
        try:
            if kind not in self.events:
                return None
            last = self._notified_at.get(sid)
            if last is not None and now - last < self.debounce_seconds:
                self.debounced += 1
                return None
            self._notified_at[sid] = now
            if len(self._notified_at) > _PRUNE_AT:
                self._prune(now)
            return Notification(kind, sid, str(data.get("name") or sid), data.get("project_id"), reason)
        finally:
            if exited:  # nothing follows an exit: forget the session
                self._notified_at.pop(sid, None)

    def _status(self, sid: str, data: dict[str, Any], now: float) -> tuple[str, str] | None:
        to = data.get("to")
        if to == "working":
            self._working_since.setdefault(sid, now)
            return None
        began = self._working_since.pop(sid, None)
        if to == "exited":
            return "exited", _exit_reason(data)
        if to == "waiting_input":
            return "waiting_input", str(data.get("reason") or "waiting for input")
        if to == "idle" and began is not None and now - began > self.long_turn_seconds:
            took = now - began
            return "long_turn", f"a turn of {took:.0f} s ended" + (f": {data['reason']}" if data.get("reason")
                                                                   else "")
        return None

    def _prune(self, now: float) -> None:
        for sid, at in list(self._notified_at.items()):
            if now - at >= self.debounce_seconds:
                del self._notified_at[sid]
