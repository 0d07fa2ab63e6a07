"""The screen witness of one session: when to bring its screen model up to date, and what the screen shows.

Rendering every frame a program draws is what made the daemon expensive (a full-screen TUI repaints 20
times a second, and nobody looks). So the model is fed only when something needs a fresh screen:

* a screen rule's **trigger** went by in the raw output (:meth:`Terminal.set_triggers`): one of its
  screens may be up -- classify, and keep classifying on new output for :data:`ARM_WINDOW` in case the
  screen was still being drawn;
* a **dialog, notice or block is on screen**: classify on new output, to see it go;
* the screen turned **stale** (output was dropped for the model) or fresh again (a full clear): say so;
* someone **asks** (:meth:`ScreenWatch.fresh`: before typing, ``session.screen``, attach repaints);
* the queue of output for the model grows past :data:`FEED_AT` (fed, not classified, so that a steady
  stream never overflows the queue and leaves the screen stale).

Background work never runs more than ``max_rate_hz`` times a second per session; a classification waits
until the output has been quiet for :data:`SETTLE` (at most :data:`SETTLE_MAX`), so a screen drawn in a
few writes is classified once, whole. Bringing a large backlog fully up to date (more than one of the
emulator's ~1-5 ms slices) runs in a worker thread, so the event loop is not held for it (the terminal's
locks make that safe); smaller feeds, and the background feeding, run on the loop a slice at a time (a
thread hop costs more than a slice, and under the GIL a thread would hold the loop off just as long).

A stale screen is classified ``stale`` -- never as an empty prompt. Without rules (plain commands),
nothing is classified unless asked, and then it is ``other`` (or ``stale``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Literal, Protocol

import attrs
import trio

from maestrod.sessions.terminal import Terminal

log = logging.getLogger("maestrod.sessions.screen")

ScreenKind = Literal["dialog", "notice", "blocked", "prompt", "busy", "other", "stale"]
#: The kinds a rule can report, and the ones that stay watched until they go.
MATCH_KINDS: dict[str, ScreenKind] = {"dialog": "dialog", "notice": "notice", "blocked": "blocked",
                                      "prompt": "prompt", "busy": "busy"}
WATCHED_KINDS = frozenset({"dialog", "notice", "blocked"})

#: After a trigger, new output is classified for this long (the screen may still be drawing).
ARM_WINDOW = 1.0
#: A classification waits for the output to be quiet this long...
SETTLE = 0.01
#: ... but no longer than this.
SETTLE_MAX = 0.05
#: Output queued for the model beyond this is fed in the background (not classified).
FEED_AT = 32 * 1024
#: A background feed takes at most this many of the emulator's slices (~1-5 ms each); what a session
#: writes beyond that (a flood) overflows the queue and is dropped for the model.
BACKGROUND_SLICES = 2


class ScreenMatchLike(Protocol):
    """What :meth:`ScreenRules.match` returns (``maestrod.sessions.screens.ScreenMatch``)."""

    @property
    def kind(self) -> str: ...  # dialog | notice | blocked | prompt

    @property
    def rule(self) -> str: ...

    @property
    def reason(self) -> str | None: ...


class ScreenRulesLike(Protocol):
    """What the watch needs of ``maestrod.sessions.screens.ScreenRules``."""

    def match(self, lines: list[str]) -> ScreenMatchLike | None: ...

    def trigger_pattern(self) -> re.Pattern[bytes] | None: ...


@attrs.frozen
class ScreenObservation:
    kind: ScreenKind
    rule: str | None
    reason: str | None
    #: trio.current_time() when classified.
    at: float

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """What a change is judged on (not ``at``)."""
        return self.kind, self.rule, self.reason


class ScreenWatch:
    def __init__(self, terminal: Terminal, rules: ScreenRulesLike | None,
                 on_change: Callable[[ScreenObservation], None], *, max_rate_hz: float = 4.0) -> None:
        if max_rate_hz <= 0:
            raise ValueError("max_rate_hz must be > 0")
        self.terminal = terminal
        self._rules = rules
        self._on_change = on_change
        self._min_interval = 1.0 / max_rate_hz
        self._latest: ScreenObservation | None = None
        self._published: tuple[str, str | None, str | None] | None = None
        self._wake = trio.Event()
        self._outputs = 0  # reads since the watch started (settling compares it)
        self._output_since = False  # output arrived since the last classification began
        self._armed_until = -math.inf
        self._requested = False
        self._last_run = -math.inf
        self._feed_lock = trio.Lock()  # one feeder of the model at a time (a worker thread or the loop)
        terminal.set_triggers(rules.trigger_pattern() if rules is not None else None)

    @property
    def latest(self) -> ScreenObservation | None:
        """The last classification (by :meth:`run` or :meth:`fresh`), None before the first."""
        return self._latest

    # -- called by the session's reader and by requests ------------------------------------------------

    def output_arrived(self) -> None:
        """The reader passed a read to ``terminal.process()``. O(1): notes it, and wakes :meth:`run`
        only when there is something to do."""
        self._outputs += 1
        self._output_since = True
        if not self._wake.is_set() and self._wanted():
            self._wake.set()

    def request(self) -> None:
        """Classify soon (at the watch's rate), without waiting for it; :meth:`fresh` waits."""
        self._requested = True
        self._wake.set()

    def _wanted(self) -> bool:
        t = self.terminal
        if self._rules is not None:
            if t.trigger_seen or self._watching():
                return True
            latest = self._latest
            if latest is not None and (latest.kind == "stale") != t.stale:
                return True
        return t.pending_bytes >= FEED_AT and not t.stale

    def _watching(self) -> bool:
        """New output may change what the rules say: a watched screen is up, or a trigger went by lately."""
        latest = self._latest
        if latest is not None and latest.kind in WATCHED_KINDS:
            return True
        return trio.current_time() < self._armed_until

    # -- the per-session loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Classify and feed in the background, as the module docstring says, until cancelled."""
        while True:
            await self._wake.wait()
            # The rate limit: output arriving meanwhile is looked at once, after the wait.
            await trio.sleep_until(self._last_run + self._min_interval)
            self._wake = trio.Event()
            self._last_run = trio.current_time()
            if self._classification_due():
                await self._settle()
                await self._classify(best_effort=False)
            elif self.terminal.pending_bytes >= FEED_AT and not self.terminal.stale:
                # Keep the queue short; nothing to classify. A stale screen needs no feeding: the
                # next full clear drops the queue anyway.
                await self._bring_up_to_date(self.terminal.slice_bytes * BACKGROUND_SLICES)

    def _classification_due(self) -> bool:
        if self._requested:
            return True
        if self._rules is None:
            return False
        t = self.terminal
        if t.take_trigger():
            self._armed_until = trio.current_time() + ARM_WINDOW
            return True
        if self._output_since and self._watching():
            return True
        latest = self._latest
        return latest is not None and (latest.kind == "stale") != t.stale

    async def _settle(self) -> None:
        """Wait until the output has been quiet for SETTLE, at most SETTLE_MAX."""
        deadline = trio.current_time() + SETTLE_MAX
        while True:
            seen = self._outputs
            await trio.sleep(min(SETTLE, max(0.0, deadline - trio.current_time())))
            if self._outputs == seen or trio.current_time() >= deadline:
                return

    # -- classifying ---------------------------------------------------------------------------------------

    async def fresh(self) -> ScreenObservation:
        """Bring the model fully up to date now, classify it and return what it shows."""
        return await self._classify(best_effort=True)

    async def _classify(self, *, best_effort: bool) -> ScreenObservation:
        """Feed and classify. Unless ``best_effort`` (someone will read the screen), a stale screen is
        not fed: it is classified stale whatever it shows, and the next full clear drops the queue."""
        self._requested = False
        self._output_since = False
        if best_effort or not self.terminal.stale:
            await self._bring_up_to_date(None)
        obs = self._observe()
        self._latest = obs
        if obs.key != self._published:
            self._published = obs.key
            try:
                self._on_change(obs)
            except Exception:  # the status side's bug must not end the session's tasks
                log.exception("screen watch: on_change failed for %s", obs)
        return obs

    def _observe(self) -> ScreenObservation:
        now = trio.current_time()
        t = self.terminal
        if t.stale:
            return ScreenObservation("stale", None, None, now)
        if self._rules is None:
            return ScreenObservation("other", None, None, now)
        try:
            found = self._rules.match(t.lines())
        except Exception:  # a broken rule must not end the session's tasks
            log.exception("screen watch: the screen rules failed")
            found = None
        if found is None:
            return ScreenObservation("other", None, None, now)
        kind = MATCH_KINDS.get(found.kind)
        if kind is None:
            log.warning("screen watch: rule %s reports unknown kind %r", found.rule, found.kind)
            return ScreenObservation("other", found.rule, found.reason, now)
        return ScreenObservation(kind, found.rule, found.reason, now)

    async def _bring_up_to_date(self, limit: int | None) -> None:
        """Feed what is queued for the model (at most ``limit`` bytes; None: all of it now)."""
        async with self._feed_lock:
            t = self.terminal
            if not t.pending_bytes:
                return
            if limit is not None:
                await self._feed_bytes(min(limit, t.pending_bytes))
            elif t.pending_bytes <= t.slice_bytes:
                t.sync_now(full=True)  # a few ms at most: cheaper than a thread hop
            else:
                await trio.to_thread.run_sync(t.sync_now, True)

    async def _feed_bytes(self, n: int) -> None:
        """Feed ``n`` queued bytes on the loop, a slice (~1-5 ms) at a time, letting other tasks run between."""
        t = self.terminal
        while n > 0:
            fed = t.feed_some(min(t.slice_bytes, n))
            if not fed:
                return
            n -= fed
            await trio.lowlevel.checkpoint()
