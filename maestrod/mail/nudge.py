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
from typing import TYPE_CHECKING, Any

import trio

from maestrod.mail.wake import SUMMARY_ITEMS, nudge_text
from shared import errors
from shared.messages.mail import HUMAN, PRIORITY_RANK

if TYPE_CHECKING:
    from maestrod.app import App

log = logging.getLogger("maestrod.mail.nudge")

#: Arrivals within this many seconds make one prompt.
DEBOUNCE = 0.1


class IdleNudger:
    """``app.mail_nudger``: a bus listener plus a service task (``app.services``)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._due: set[str] = set()
        self._wake = trio.Event()
        #: session -> the id of the nudge prompt sent last (to skip a duplicate while it is queued).
        self._sent: dict[str, int] = {}
        self._nursery: trio.Nursery | None = None
        app.bus.add_listener(self._on_event)
        app.services.append(self.run)

    def _on_event(self, event: dict[str, Any]) -> None:
        topic, data = event["topic"], event["data"]
        if topic == "mail.received":
            cfg = self.app.mail.config
            if not cfg.prompt_idle or PRIORITY_RANK.get(data.get("priority"), 9) > PRIORITY_RANK[cfg.wake_priority]:
                return
            for r in data.get("to", ()):
                if r != HUMAN:
                    self._due.add(r)
        elif topic == "session.status" and data.get("to") in ("idle", "waiting_input"):
            if self.app.mail.config.prompt_idle:
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
        app = self.app
        mail = app.mail
        cfg = mail.config
        if not cfg.prompt_idle:
            return None
        live = app.sessions.sessions.get(sid)
        if live is None or live.agent != "claude" or live.is_exited:
            return None
        if not live.at_prompt:
            return None  # working: the Stop hook tells it; a dialog: nothing can be typed now
        rank = PRIORITY_RANK[cfg.wake_priority]
        newest = mail.store.unread_max_seq(sid, rank)
        if not newest or newest <= mail.wake.announced(sid):
            return None
        last = self._sent.get(sid)
        if last is not None:
            row = app.db.conn.execute("SELECT state FROM session_prompts WHERE id=?", (last,)).fetchone()
            if row is not None and row["state"] == "queued":
                return None  # the previous nudge is still waiting to be typed
        total = mail.store.unread_count(sid, rank)
        heads = mail.store.unread_heads(sid, rank, SUMMARY_ITEMS)
        mail.wake.announce(sid, newest)
        try:
            result = await app.sessions.prompt(sid, nudge_text(total, heads), "send", False, "system")
        except errors.RpcError as exc:
            log.info("session %s: mail nudge not sent: %s", sid, exc.message)
            return None
        self._sent[sid] = result["prompt_id"]
        return result
