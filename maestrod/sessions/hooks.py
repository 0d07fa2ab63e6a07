"""What other modules plug into the Claude Code hooks, without touching the session code.

The daemon has one :class:`HookExtensions`, given at start-up to the services that plug into it. Three
kinds of plug-ins, each a plain function or a coroutine function (both work), each called with the
session id (a plug-in holds what else it needs itself):

* **context providers** -- ``fn(session_id, payload) -> str | None`` registered for
  ``UserPromptSubmit`` or ``PostToolUse``: the texts they return are joined and reach the model
  (UserPromptSubmit: printed as is, which Claude Code adds to the turn; PostToolUse: as
  ``hookSpecificOutput.additionalContext``). E.g. a coordinator's digest of its workers.
* **stop deciders** -- ``fn(session_id, payload) -> dict | None`` for the Stop hook: the
  first one that returns a decision such as ``{"decision": "block", "reason": "..."}`` wins;
  it is printed as JSON and the agent keeps working (its status stays ``working``).
* **listeners** -- ``fn(session_id, event, payload) -> None`` for one event or all (None),
  after the daemon has applied the hook (status, confirmations).

Every plug-in is bounded in time (the hook client gives up after ~2 s) and isolated: one that
raises is logged and skipped; the agent is never broken by it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("maestrod.sessions.hooks")

ContextProvider = Callable[[str, dict[str, Any]], Any]
StopDecider = Callable[[str, dict[str, Any]], Any]
HookListener = Callable[[str, str, dict[str, Any]], Any]

CONTEXT_EVENTS = ("UserPromptSubmit", "PostToolUse")


class HookExtensions:
    def __init__(self) -> None:
        self.context_providers: dict[str, list[ContextProvider]] = {e: [] for e in CONTEXT_EVENTS}
        self.stop_deciders: list[StopDecider] = []
        self.listeners: list[tuple[str | None, HookListener]] = []

    def add_context_provider(self, event: str, fn: ContextProvider) -> None:
        if event not in self.context_providers:
            raise ValueError(f"context providers exist for {', '.join(CONTEXT_EVENTS)}, not {event}")
        self.context_providers[event].append(fn)

    def add_stop_decider(self, fn: StopDecider) -> None:
        self.stop_deciders.append(fn)

    def add_listener(self, event: str | None, fn: HookListener) -> None:
        self.listeners.append((event, fn))

    # -- used by the session manager ------------------------------------------------------------

    async def context(self, session_id: str, event: str, payload: dict[str, Any]) -> str:
        texts = []
        for fn in self.context_providers.get(event, []):
            text = await _call(fn, session_id, payload)
            if text:
                texts.append(str(text).rstrip("\n"))
        return "\n\n".join(texts)

    async def stop_decision(self, session_id: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        for fn in self.stop_deciders:
            decision = await _call(fn, session_id, payload)
            if decision:
                return dict(decision)
        return None

    async def notify(self, session_id: str, event: str, payload: dict[str, Any]) -> None:
        for want, fn in self.listeners:
            if want is None or want == event:
                await _call(fn, session_id, event, payload)


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
        return result
    except Exception:
        log.exception("hook extension %r failed; ignored", getattr(fn, "__qualname__", fn))
        return None
