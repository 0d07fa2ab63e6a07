"""Prompts into a session: checked, rate-limited, queued, typed only through the input gate, confirmed.

Every prompt (``--prompt``, ``session prompt``, the mail nudger, a coordinator) is first a row in
``session_prompts`` (``queued``). It is typed when the status machine's input gate opens -- the agent sits at
its verified empty input prompt, no dialog is open, no person typed in the last seconds -- and the previous
prompt was confirmed. ``--now`` skips only the wait for the running turn to end, never the dialog gate.
While it waits, the row says why (``held``). Typed means ``delivered``; the agent's UserPromptSubmit hook or
the prompt's ``user`` record in the transcript makes it ``confirmed``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from maestrod.config import SessionsConfig
from maestrod.sessions import terminal_io
from maestrod.sessions.live import LiveSession
from maestrod.sessions.status import Gate
from maestrod.sessions.store import SessionStore
from shared import errors

log = logging.getLogger("maestrod.sessions")

SYSTEM = "system"
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"
#: A delivered prompt holds back the next queued one until the agent confirms it (or this passes).
CONFIRM_TIMEOUT = 15.0
#: While a prompt waits for the screen to show the empty input prompt, the screen is looked at this often.
GATE_POLL = 0.25
RATE_WINDOW = 60.0
CONFIRM_WAIT = "waiting for the agent to confirm the previous prompt"


def prompt_source(actor: str) -> str:
    """``human``, ``agent:<session id>`` or ``system``: who a prompt came from."""
    if actor in ("human", SYSTEM):
        return actor
    return actor if actor.startswith("agent:") else f"agent:{actor}"


def normalise(text: str) -> str:
    return " ".join(text.replace("\r\n", "\n").split())


#: Asks the session's witnesses for a fresh verdict and returns the input gate
#: (session, skip the wait for the turn, the prompt comes from a person).
GateCheck = Callable[[LiveSession, bool, bool], Awaitable[Gate]]
#: A prompt that finds its agent idle but the empty prompt not drawn yet (the Stop hook runs before the TUI
#: repaints) waits this long for it before it is answered as queued.
SETTLE_FOR_PROMPT = 1.0


class PromptDesk:
    def __init__(self, store: SessionStore, config: SessionsConfig, gate: GateCheck,
                 on_queue_change: Callable[[str], None]) -> None:
        self.store = store
        self.config = config
        self._gate = gate
        self._on_queue_change = on_queue_change
        self._rates: dict[tuple[str, str], deque[float]] = {}

    # -- checks ----------------------------------------------------------------------------------------

    def check_text(self, text: str) -> None:
        cap = self.config.prompt_max_chars
        if len(text) > cap:
            raise errors.RpcError(errors.TOO_LARGE, f"prompt is {len(text)} characters; the limit is {cap}",
                                  {"limit": cap, "length": len(text)})
        if not text.strip():
            raise errors.invalid_params(["message: must not be empty"])

    def check_rate(self, source: str, sid: str) -> None:
        limit = self.config.prompt_rate_per_minute
        now = trio.current_time()
        times = self._rates.setdefault((source, sid), deque())
        while times and now - times[0] >= RATE_WINDOW:
            times.popleft()
        if len(times) >= limit:
            retry = max(1, int(RATE_WINDOW - (now - times[0]) + 0.999))
            raise errors.RpcError(
                errors.RATE_LIMITED,
                f"too many prompts from {source} to {sid}: at most {limit} per minute; retry in {retry} s",
                {"retry_after": retry, "limit": limit, "window_s": 60})
        times.append(now)

    def rate_windows(self, now: float) -> list[list[Any]]:
        """The rate-limit windows as ``[source, session, [age, ...]]`` (a graceful restart carries them)."""
        return [[src, sid, [now - t for t in times]] for (src, sid), times in self._rates.items()
                if times and now - times[-1] < RATE_WINDOW]

    def restore_rate_windows(self, windows: list[list[Any]], now: float) -> None:
        for src, sid, ages in windows:
            self._rates[(str(src), str(sid))] = deque(now - float(a) for a in ages)

    # -- the RPC ---------------------------------------------------------------------------------------

    async def prompt(self, s: LiveSession, text: str, mode: str, now: bool, actor: str) -> dict[str, Any]:
        source = prompt_source(actor)
        self.check_text(text)
        self.check_rate(source, s.id)
        with self.store.db.transaction() as c:
            pid = self.store.queue_prompt(c, s.id, text, mode, source, actor, now)
        async with s.prompt_lock:
            if self.store.prompt_state(pid) != "queued":  # the delivery loop took it meanwhile
                return {"session_id": s.id, "prompt_id": pid, "state": "delivered", "source": source}
            ahead = self.store.queued_ahead(s.id, pid)
            person = source == "human"
            gate = await self._gate(s, now, person)
            with trio.move_on_after(SETTLE_FOR_PROMPT):
                while not gate.open and gate.blocker in ("no_prompt", "screen") and s.status == "idle":
                    await trio.sleep(GATE_POLL / 5)
                    gate = await self._gate(s, now, person)
            if (now or not ahead) and gate.open and not self._confirming(s):
                await self.deliver(s, pid, text, mode)
                return {"session_id": s.id, "prompt_id": pid, "state": "delivered", "source": source}
            if not gate.open:
                why = gate.reason
            elif self._confirming(s):  # --now jumps the queue, but never a prompt the agent has not confirmed
                why = CONFIRM_WAIT
            else:
                why = "prompts ahead of it are waiting"
            self._hold(s, why, force=True)  # the new row has no reason yet, even if the others have this one
        s.kick()
        return {"session_id": s.id, "prompt_id": pid, "state": "queued", "source": source, "ahead": ahead,
                "status": s.status, "held": s.held}

    def queue_for_start(self, sid: str, text: str, mode: str, now: bool, actor: str, why: str) -> dict[str, Any]:
        """A prompt for a session whose start (a spawn, or a wake) waits for room: queued, and typed by the
        delivery loop once the agent is up."""
        source = prompt_source(actor)
        self.check_text(text)
        self.check_rate(source, sid)
        with self.store.db.transaction() as c:
            pid = self.store.queue_prompt(c, sid, text, mode, source, actor, now)
        self.store.set_prompt_held(sid, why)
        self._on_queue_change(sid)
        return {"session_id": sid, "prompt_id": pid, "state": "queued", "source": source,
                "ahead": self.store.queued_ahead(sid, pid), "status": "queued", "held": why}

    def _confirming(self, s: LiveSession) -> bool:
        return trio.current_time() < s.awaiting_confirm_until

    def _hold(self, s: LiveSession, why: str | None, *, force: bool = False) -> None:
        if force or why != s.held:
            s.held = why
            self.store.set_prompt_held(s.id, why)

    # -- typing ----------------------------------------------------------------------------------------

    async def deliver(self, s: LiveSession, pid: int, text: str, mode: str) -> None:
        """Paste ``text`` (bracketed when the program enabled it), then Enter unless ``mode`` is paste."""
        body = text.replace("\r\n", "\n").replace("\r", "\n").encode().replace(PASTE_END, b"")
        paste = PASTE_START + body + PASTE_END if s.terminal.bracketed_paste else body
        # An agent with hooks confirms a submitted prompt (UserPromptSubmit); until then the next one waits.
        confirmable = s.kind.hooks and mode == "send"
        s.awaiting_confirm_until = trio.current_time() + CONFIRM_TIMEOUT if confirmable else 0.0
        self.store.mark_delivered(pid)  # taken off the queue first: delivered exactly once
        s.held = None
        self._on_queue_change(s.id)
        try:
            await terminal_io.write(s, *((paste, b"\r") if mode == "send" else (paste,)))
        except errors.RpcError:
            s.awaiting_confirm_until = 0.0
            self.store.mark_failed(pid)
            self._on_queue_change(s.id)
            raise

    async def delivery_loop(self, s: LiveSession) -> None:
        """Type the queue's head whenever the gate opens; look again on every change of the session."""
        while not s.is_exited:
            changed = s.changed
            delay = await self._try_next(s)
            if delay is None:
                continue
            with trio.move_on_after(delay):
                await changed.wait()

    async def _try_next(self, s: LiveSession) -> float | None:
        """Type the queue's head if it may be typed now (None: look again at once); else how long to wait
        at most before looking again (inf: until the session changes)."""
        async with s.prompt_lock:
            row = self.store.next_queued(s.id)
            if row is None:
                return math.inf
            wait = s.awaiting_confirm_until - trio.current_time()
            if wait > 0:
                self._hold(s, CONFIRM_WAIT)
                return wait
            gate = await self._gate(s, False, row["sender"] == "human")
            if gate.open:
                try:
                    await self.deliver(s, row["id"], row["text"], row["mode"])
                except errors.RpcError as exc:  # marked failed; the next one may fare better
                    log.warning("session %s: queued prompt %s not delivered: %s", s.id, row["id"], exc.message)
                return None
            self._hold(s, gate.reason)
        # The screen may show the prompt without anyone telling us: look again soon, while one waits.
        delay = GATE_POLL
        if gate.recheck_at is not None:
            delay = min(delay, max(0.0, gate.recheck_at - trio.current_time()))
        return delay

    # -- confirmation --------------------------------------------------------------------------------------

    def confirm(self, s: LiveSession, prompt: str, witness: str) -> bool:
        """Mark the delivered prompt that ``prompt`` (what the agent says it got) matches as confirmed."""
        rows = self.store.unconfirmed(s.id)
        want = normalise(prompt)
        match = next((r for r in rows if normalise(r["text"]) == want), None)
        if match is None:
            match = next((r for r in rows if want and (normalise(r["text"]) in want or want in normalise(r["text"]))),
                         None)
        if match is None:
            return False
        self.store.confirm(s.id, match["id"], match["sender"], witness)
        s.awaiting_confirm_until = 0.0
        s.kick()
        return True
