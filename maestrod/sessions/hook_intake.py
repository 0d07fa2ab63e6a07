"""The hooks witness: a Claude Code hook's report turned into an observation, a confirmation, and an answer.

``maestroctl hook EVENT`` forwards each hook's JSON (authenticated by the session's token). Every report is a
timeline row; SessionStart says where the transcript is; UserPromptSubmit confirms a delivered prompt; the
turn events become :class:`~maestrod.sessions.status.HookSeen` observations for the status machine; the
plug-ins (:class:`~maestrod.sessions.hooks.HookExtensions`) add context for the model, decide whether a Stop
is blocked, and listen. Each plug-in call is bounded in time: the hook client gives up at ~2 s.

Claude Code runs the hooks whose answer maestro never uses in the background (``async``: PreToolUse,
PostToolUseFailure, Notification, SessionEnd; :data:`~maestrod.sessions.claude.ASYNC_EVENTS`), so a report
may arrive after a later one. ``maestroctl hook`` sends when its process started (``started_monotonic``, the
system-wide monotonic clock), and the observation is dated then (:func:`started_at`); the status machine
orders the turn's hooks by that date, not by arrival.

A report comes from the agent's side, so the transcript path a SessionStart names is taken only if
:func:`~maestrod.sessions.transcript_path.check_reported` accepts it (a ``<uuid>.jsonl`` regular file, or not
there yet, in the session's own Claude project directory); a refused one is logged and its row says why.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from maestrod.sessions import codex
from maestrod.sessions.hooks import HookExtensions
from maestrod.sessions.status import HookSeen
from maestrod.sessions.store import SessionStore
from maestrod.private_files import open_regular, why_not_openable
from maestrod.sessions.transcript_path import Refused, check_reported, physical

log = logging.getLogger("maestrod.sessions")

#: Hook extensions (context, stop decision, listeners) get this long each.
EXTENSION_TIMEOUT = 1.5
#: Payload fields kept in the timeline row (short scalars only).
_SUMMARY_FIELDS = ("source", "tool_name", "notification_type", "reason", "message")
#: How far a hook's start time may date its observation back. ``maestroctl hook`` gives up 3 s after it
#: starts, so an older start time is a bogus value (or another clock), not a slow hook: it moves the
#: observation back by this much at most, and a start time in the future moves it not at all.
MAX_BACKDATE = 3.0


def started_at(now: float, monotonic_now: float, started_monotonic: float | None) -> float:
    """When a hook's process started, on trio's clock (``now``): ``now`` less the hook's age on the
    monotonic clock (``monotonic_now - started_monotonic``), clamped to ``[now - MAX_BACKDATE, now]``.
    No start time (an older ``maestroctl``): ``now``."""
    if started_monotonic is None:
        return now
    return now - min(max(monotonic_now - started_monotonic, 0.0), MAX_BACKDATE)


def _permission_message(payload: dict[str, Any]) -> str:
    tool = _str(payload.get("tool_name")) or "a tool"
    tool_input = payload.get("tool_input")
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    what = f"{tool}: {command}" if isinstance(command, str) else tool
    return f"permission to run {what}"[:500]


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class HookIntake:
    def __init__(self, store: SessionStore, extensions: HookExtensions,
                 witness: Callable[[str, HookSeen], None], confirm: Callable[[str, str], None],
                 data_dir: Path | None = None) -> None:
        self.store = store
        #: Where the sessions' private directories are (a Codex session's CODEX_HOME is in its own).
        self.data_dir = data_dir
        self.extensions = extensions
        self._witness = witness
        self._confirm = confirm

    async def report(self, sid: str, event: str, payload: dict[str, Any],
                     started_monotonic: float | None = None) -> dict[str, Any]:
        """Apply one hook report; answer ``{"stdout": ...}``, what the hook prints. ``started_monotonic``:
        when the hook's process started (``time.monotonic()``), which dates the observation."""
        arrived = trio.current_time()
        now = started_at(arrived, time.monotonic(), started_monotonic)
        summary: dict[str, Any] = {"event": event}
        if now < arrived:
            summary["age_ms"] = round((arrived - now) * 1000, 1)  # from the hook's start to its report here
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
        elif event == "PermissionRequest":
            # Codex asks a person to approve a tool call: the dialog Claude Code reports as a Notification.
            obs = HookSeen(now, "Notification", "permission_prompt", _permission_message(payload))
        elif event == "Stop":
            blocked = False
            with trio.move_on_after(EXTENSION_TIMEOUT):
                decision = await self.extensions.stop_decision(sid, payload)
                if decision:
                    stdout = json.dumps(decision)
                    blocked = decision.get("decision") == "block"
            # Dated when decided, not when started: a blocked Stop keeps the turn going from its answer on
            # (a transcript "turn over" read meanwhile is older). Stop is synchronous, so nothing of the
            # agent's starts between the two (an async report from before it still dates earlier).
            obs = HookSeen(trio.current_time(), event, blocked=blocked)
        elif event == "Notification":
            kind = _str(payload.get("notification_type"))
            obs = HookSeen(now, event, kind, str(payload.get("message") or kind or "")[:500] or None)
        if obs is not None:
            self._witness(sid, obs)
        if event in ("UserPromptSubmit", "PostToolUse"):
            with trio.move_on_after(EXTENSION_TIMEOUT):
                text = await self.extensions.context(sid, event, payload)
                if text and event == "UserPromptSubmit" and not self._is_codex(sid):
                    stdout = text  # Claude Code adds a UserPromptSubmit hook's plain output to the turn
                elif text:
                    stdout = json.dumps({"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}})
        with trio.move_on_after(EXTENSION_TIMEOUT):
            await self.extensions.notify(sid, event, payload)
        return {"stdout": stdout}

    def _is_codex(self, sid: str) -> bool:
        """Codex takes a hook's context only as JSON (``hookSpecificOutput.additionalContext``); plain text
        from a UserPromptSubmit hook is dropped (seen with 0.171.0)."""
        row = self.store.find(sid)
        return row is not None and row["agent"] == "codex"

    def _check_transcript(self, sid: str, reported: str) -> str | Refused:
        row = self.store.find(sid)
        expected = row["transcript_path"] if row is not None else None
        if row is not None and row["agent"] == "codex":
            return self._check_rollout(sid, expected, reported)
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

    def _check_rollout(self, sid: str, current: str | None, reported: str) -> str | Refused:
        """A Codex session's rollout: a ``rollout-*.jsonl`` of its own CODEX_HOME's ``sessions/YYYY/MM/DD``.
        The first accepted one (or another one: ``/new`` starts a new rollout) is announced as
        ``session.transcript``, which the transcript service follows."""
        home = self.data_dir / "sessions" / sid / codex.HOME_DIR if self.data_dir is not None else None
        path = codex.check_rollout(str(home), reported) if home is not None else None
        if path is None:
            why = f"not a rollout-*.jsonl in the session's CODEX_HOME {home}/sessions/YYYY/MM/DD"
            log.warning("session %s: SessionStart reported the rollout %r; refused: %s", sid, reported[:500], why)
            return Refused(why)
        try:
            fd = open_regular(path)
        except (FileNotFoundError, NotADirectoryError):
            fd = None  # written with the first item
        except OSError as exc:
            return Refused(why_not_openable(exc))
        if fd is not None:
            os.close(fd)
        if path != current:
            self.store.record(sid, sid, "session.transcript", {"transcript_path": path, "source": "hook"})
        return path
