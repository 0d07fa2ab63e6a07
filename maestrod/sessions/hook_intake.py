"""The hooks witness: a Claude Code hook's report turned into an observation, a confirmation, and an answer.

``maestroctl hook EVENT`` forwards each hook's JSON (authenticated by the session's token). Every report is a
timeline row; SessionStart says where the transcript is; UserPromptSubmit confirms a delivered prompt; the
turn events become :class:`~maestrod.sessions.status.HookSeen` observations for the status machine; the
plug-ins (:class:`~maestrod.sessions.hooks.HookExtensions`) add context for the model, decide whether a Stop
is blocked, and listen. Each plug-in call is bounded in time: the hook client gives up at ~2 s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import trio

from maestrod.sessions.hooks import HookExtensions
from maestrod.sessions.status import HookSeen
from maestrod.sessions.store import SessionStore

#: Hook extensions (context, stop decision, listeners) get this long each.
EXTENSION_TIMEOUT = 1.5
#: Payload fields kept in the timeline row (short scalars only).
_SUMMARY_FIELDS = ("source", "tool_name", "notification_type", "reason", "message")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class HookIntake:
    def __init__(self, store: SessionStore, extensions: HookExtensions,
                 witness: Callable[[str, HookSeen], None], confirm: Callable[[str, str], None]) -> None:
        self.store = store
        self.extensions = extensions
        self._witness = witness
        self._confirm = confirm

    async def report(self, sid: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply one hook report; answer ``{"stdout": ...}``, what the hook prints."""
        summary: dict[str, Any] = {"event": event}
        for key in _SUMMARY_FIELDS:
            value = payload.get(key)
            if isinstance(value, (str, int, float, bool)):
                summary[key] = value[:200] if isinstance(value, str) else value
        self.store.record(sid, sid, "session.hook", summary)
        stdout = ""
        now = trio.current_time()
        obs: HookSeen | None = None
        if event == "SessionStart":
            # The hook knows best where the transcript is (e.g. after a resume).
            self.store.set_transcript(sid, _str(payload.get("session_id")), _str(payload.get("transcript_path")))
            obs = HookSeen(now, event, _str(payload.get("source")))
        elif event == "UserPromptSubmit":
            prompt = payload.get("prompt")
            if isinstance(prompt, str):
                self._confirm(sid, prompt)
            obs = HookSeen(now, event)
        elif event in ("PreToolUse", "PostToolUse", "PostToolUseFailure"):
            obs = HookSeen(now, event, _str(payload.get("tool_name")))
        elif event == "Stop":
            blocked = False
            with trio.move_on_after(EXTENSION_TIMEOUT):
                decision = await self.extensions.stop_decision(sid, payload)
                if decision:
                    stdout = json.dumps(decision)
                    blocked = decision.get("decision") == "block"
            obs = HookSeen(trio.current_time(), event, blocked=blocked)
        elif event == "Notification":
            kind = _str(payload.get("notification_type"))
            obs = HookSeen(now, event, kind, str(payload.get("message") or kind or "")[:500] or None)
        if obs is not None:
            self._witness(sid, obs)
        if event in ("UserPromptSubmit", "PostToolUse"):
            with trio.move_on_after(EXTENSION_TIMEOUT):
                text = await self.extensions.context(sid, event, payload)
                if text and event == "UserPromptSubmit":
                    stdout = text
                elif text:
                    stdout = json.dumps({"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}})
        with trio.move_on_after(EXTENSION_TIMEOUT):
            await self.extensions.notify(sid, event, payload)
        return {"stdout": stdout}
