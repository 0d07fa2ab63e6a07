"""The hooks witness: a Claude Code hook's report turned into an observation, a confirmation, and an answer.

``maestroctl hook EVENT`` forwards each hook's JSON (authenticated by the session's token). Every report is a
timeline row; SessionStart says where the transcript is; UserPromptSubmit confirms a delivered prompt; the
turn events become :class:`~maestrod.sessions.status.HookSeen` observations for the status machine; the
plug-ins (:class:`~maestrod.sessions.hooks.HookExtensions`) add context for the model, decide whether a Stop
is blocked, and listen. Each plug-in call is bounded in time: the hook client gives up at ~2 s.

A report comes from the agent's side, so the transcript path a SessionStart names is taken only if
:func:`~maestrod.sessions.transcript_path.check_reported` accepts it (a ``<uuid>.jsonl`` regular file, or not
there yet, in the session's own Claude project directory); a refused one is logged and its row says why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import trio

from maestrod.sessions.hooks import HookExtensions
from maestrod.sessions.status import HookSeen
from maestrod.sessions.store import SessionStore
from maestrod.sessions.transcript_path import Refused, check_reported, physical

log = logging.getLogger("maestrod.sessions")

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
        accepted_path: str | None = None
        if event == "SessionStart" and isinstance(payload.get("transcript_path"), str):
            verdict = self._check_transcript(sid, payload["transcript_path"])
            if isinstance(verdict, Refused):
                summary["refused_transcript_path"] = payload["transcript_path"][:500]
                summary["refused_reason"] = verdict.reason
            else:
                accepted_path = verdict
        self.store.record(sid, sid, "session.hook", summary)
        stdout = ""
        now = trio.current_time()
        obs: HookSeen | None = None
        if event == "SessionStart":
            # The hook knows best where the transcript is (/clear, /branch, a fork), within the session's own
            # project directory; a refused path changes nothing (nor the Claude session id).
            if accepted_path is not None:
                self.store.set_transcript(sid, _str(payload.get("session_id")), accepted_path)
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

    def _check_transcript(self, sid: str, reported: str) -> str | Refused:
        row = self.store.find(sid)
        expected = row["transcript_path"] if row is not None else None
        if row is None or not expected:
            verdict: str | Refused = Refused("the session has no transcript of its own (it was not started as "
                                             "Claude Code)")
        else:
            verdict = check_reported(expected, reported)
            real = physical(expected, row["cwd"]) if isinstance(verdict, Refused) and row["cwd"] else expected
            if real != expected and not isinstance(again := check_reported(real, reported), Refused):
                verdict = again  # the cwd is reached through a symbolic link: Claude Code's directory
        if isinstance(verdict, Refused):
            log.warning("session %s: SessionStart reported the transcript %r; refused: %s", sid, reported[:500],
                        verdict.reason)
        return verdict
