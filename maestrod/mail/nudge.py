"""Telling an idle agent about urgent mail: a short ``system`` prompt.

The Stop hook (:mod:`maestrod.mail.wake`) keeps a *working* agent from going idle
while urgent mail waits. An agent that is already idle runs no hook until
somebody prompts it, so mail arriving then would wait unseen. This service
closes that gap: when mail of priority >= ``[mail] wake_priority`` arrives for a
Claude session that is idle (or at Claude's idle prompt), it sends the session
a prompt through the normal ``session.prompt`` path (source ``system``; queued
if the agent started working meanwhile; confirmed by UserPromptSubmit)::

    You have 2 unread message(s): query from worker-3 'schema question', ... Read them with
    `maestroctl mail wait --timeout 0` (or list them with `maestroctl mail inbox --unread`) and act on them.

One prompt per burst: arrivals are gathered for :data:`DEBOUNCE` seconds, a
nudge still queued is not repeated, and mail the agent was already told about
(by a nudge or a Stop-hook block, see ``StopHookState.announce``) is not
announced again. The same check runs when a session becomes idle, which catches
mail that arrived while its Stop hook was deciding. ``[mail] prompt_idle =
false`` turns it off. Plain programs (``-- ARGV`` sessions) are never prompted:
the text would be typed into a shell.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import trio

from maestrod.events import EventBus
from maestrod.mail.service import Mail
from maestrod.mail.wake import SUMMARY_ITEMS, nudge_text
from maestrod.sessions.store import SessionStore
from shared import errors
from shared.messages.mail import PRIORITY_RANK
from shared.messages.spec import HUMAN

log = logging.getLogger("maestrod.mail.nudge")

#: Arrivals within this many seconds make one prompt.
DEBOUNCE = 0.1


class SessionPrompts(Protocol):
    """What the nudger needs of the session service: whether a session can take a nudge now, and the
    ``session.prompt`` path."""

    def accepts_nudge(self, sid: str) -> bool:
        """A live agent session with hooks (Claude), not exited, sitting at its prompt: working agents are
        told by the Stop hook, and nothing can be typed into a dialog."""
        ...

    async def prompt(self, sid: str, text: str, mode: str, now: bool, actor: str) -> dict[str, Any]: ...


class IdleNudger:
    """``app.mail_nudger``: a bus listener plus a service task (:meth:`run`, in ``app.services``).

    It reads ``mail`` (config, store, what was announced), the prompt queue's state through the session
    store, and prompts through ``sessions``."""

    def __init__(self, mail: Mail, bus: EventBus, session_store: SessionStore,
                 sessions: SessionPrompts) -> None:
        self.mail = mail
        self.session_store = session_store
        self.sessions = sessions
        self._due: set[str] = set()
        self._wake = trio.Event()
        #: session -> the id of the nudge prompt sent last (to skip a duplicate while it is queued).
        self._sent: dict[str, int] = {}
        self._nursery: trio.Nursery | None = None
        bus.add_listener(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        topic, data = event["topic"], event["data"]
        if topic == "mail.received":
            cfg = self.mail.config
            if not cfg.prompt_idle or PRIORITY_RANK.get(data.get("priority"), 9) > PRIORITY_RANK[cfg.wake_priority]:
                return
            for r in data.get("to", ()):
                if r != HUMAN:
                    self._due.add(r)
        elif topic == "session.status" and data.get("to") in ("idle", "waiting_input"):
            if self.mail.config.prompt_idle:
                self._due.add(data["session_id"])
        else:
            return
        if self._due:
            self._wake.set()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                while True:
                    await self._wake.wait()
                    await trio.sleep(DEBOUNCE)  # a burst of mail makes one prompt
                    self._wake = trio.Event()
                    due, self._due = self._due, set()
                    for sid in sorted(due):
                        nursery.start_soon(self._nudge_logged, sid)
            finally:
                self._nursery = None

    async def _nudge_logged(self, sid: str) -> None:
        try:
            await self.nudge(sid)
        except Exception:  # a nudge must never take the daemon down
            log.exception("session %s: mail nudge failed", sid)

    async def nudge(self, sid: str) -> dict[str, Any] | None:
        """Prompt ``sid`` about its unannounced urgent mail if it is an idle Claude session; the
        ``session.prompt`` answer, or None when there was nothing to do."""
        mail = self.mail
        cfg = mail.config
        if not cfg.prompt_idle:
            return None
        if not self.sessions.accepts_nudge(sid):
            # not a live Claude session; working: the Stop hook tells it; a dialog: nothing can be typed now
            return None
        rank = PRIORITY_RANK[cfg.wake_priority]
        newest = mail.store.unread_max_seq(sid, rank)
        if not newest or newest <= mail.wake.announced(sid):
            return None
        last = self._sent.get(sid)
        if last is not None:
            if self.session_store.prompt_state(last) == "queued":
                return None  # the previous nudge is still waiting to be typed
        total = mail.store.unread_count(sid, rank)
        heads = mail.store.unread_heads(sid, rank, SUMMARY_ITEMS)
        mail.wake.announce(sid, newest)
        try:
            result = await self.sessions.prompt(sid, nudge_text(total, heads), "send", False, "system")
        except errors.RpcError as exc:
            log.info("session %s: mail nudge not sent: %s", sid, exc.message)
            return None
        self._sent[sid] = result["prompt_id"]
        return result
