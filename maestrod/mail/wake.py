"""Waking an idle agent: the Stop-hook decision.

When Claude Code is about to end an agent's turn it runs the Stop hook; if the
hook answers ``{"decision": "block", "reason": ...}`` the agent keeps going and
reads ``reason`` as its next instruction. :func:`stop_hook_decision` answers
"block" while the session has unread mail of priority >= ``[mail]
wake_priority`` (default ``high``), so urgent mail is read instead of waiting
until somebody prompts the agent.

An agent must always be able to stop: at most ``[mail] wake_max_blocks``
(default 3) consecutive blocks. The count restarts when the agent's turn
starts afresh -- a Stop with ``stop_hook_active`` false (the turn was not a
continuation forced by this hook), :func:`note_turn_start` (wire it to
UserPromptSubmit), or the session reading any of its mail -- and whenever a
Stop finds no urgent mail.

The Stop hook only helps an agent that is working. For one that is already idle,
:mod:`maestrod.mail.nudge` delivers a short ``system`` prompt (:func:`nudge_text`).
Both remember, per session, the newest urgent message they have announced
(:meth:`StopHookState.announce`), so mail is announced once: a capped agent is
not prompted again about the mail it was told about three times.
"""

from __future__ import annotations

from typing import Any, Protocol

from maestrod.mail.config import MailConfig
from maestrod.mail.store import MailStore
from shared.messages.mail import PRIORITY_RANK

#: How a Stop-hook block for urgent mail begins.
MAIL_NOT_ERROR = "Not an error: urgent mail keeps you going (maestro)."
#: Messages named one by one in the reason; the rest are counted.
SUMMARY_ITEMS = 3
SUBJECT_CHARS = 60


class StopHookState:
    """Consecutive Stop-hook blocks per session (in memory: a daemon restart lets every agent stop)."""

    def __init__(self) -> None:
        self._blocks: dict[str, int] = {}
        self._announced: dict[str, int] = {}

    def blocks(self, session_id: str) -> int:
        return self._blocks.get(session_id, 0)

    def count_block(self, session_id: str) -> int:
        self._blocks[session_id] = self._blocks.get(session_id, 0) + 1
        return self._blocks[session_id]

    def reset(self, session_id: str) -> None:
        self._blocks.pop(session_id, None)

    def announced(self, session_id: str) -> int:
        """The store sequence of the newest urgent message the agent was told about (0: none)."""
        return self._announced.get(session_id, 0)

    def announce(self, session_id: str, seq: int) -> None:
        if seq > self._announced.get(session_id, 0):
            self._announced[session_id] = seq


def _subject(s: str) -> str:
    s = " ".join(s.split())
    return s if len(s) <= SUBJECT_CHARS else s[:SUBJECT_CHARS - 1] + "…"


def _listed(total: int, heads: list[dict[str, Any]]) -> str:
    items = [f"{h['type']} from {h['from_name']} '{_subject(h['subject'])}'"
             + (f" [{h['priority']}]" if h["priority"] == "critical" else "") for h in heads]
    more = total - len(heads)
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def summarise(total: int, heads: list[dict[str, Any]]) -> str:
    """``Not an error: urgent mail keeps you going (maestro). 2 unread: query from worker-3 ...; read ...``

    Claude Code shows a blocking Stop hook as "Stop hook reported a problem": the reason says first that it
    is mail, not a failure, for the person watching as much as for the agent."""
    return (f"{MAIL_NOT_ERROR} {total} unread: {_listed(total, heads)}; read them now with `maestroctl mail wait --timeout 0` "
            "(or list them with `maestroctl mail inbox --unread`), act on them, then continue")


def nudge_text(total: int, heads: list[dict[str, Any]]) -> str:
    """The prompt that tells an idle agent about urgent mail (one line)."""
    return (f"You have {total} unread message(s): {_listed(total, heads)}. Read them with "
            "`maestroctl mail wait --timeout 0` (or list them with `maestroctl mail inbox --unread`) "
            "and act on them.")


class MailState(Protocol):
    """What the wake-up reads and keeps: the mail service (:class:`maestrod.mail.service.Mail`) is one."""

    config: MailConfig
    store: MailStore
    wake: StopHookState


def stop_hook_decision(mail: MailState, session_id: str, stop_hook_active: bool) -> dict[str, str] | None:
    """Claude Code's Stop-hook answer for ``session_id``: a block decision, or None to let it stop.

    ``stop_hook_active`` is the field of the same name in the hook's input: true
    when this Stop ends a continuation that a previous block forced.
    """
    cfg, state = mail.config, mail.wake
    if not stop_hook_active:
        state.reset(session_id)
    if cfg.wake_max_blocks <= 0:
        return None
    max_rank = PRIORITY_RANK[cfg.wake_priority]
    total = mail.store.unread_count(session_id, max_rank)
    if total == 0:
        state.reset(session_id)
        return None
    # Told now, or told often enough (the cap): either way this mail is not announced again.
    state.announce(session_id, mail.store.unread_max_seq(session_id, max_rank))
    if state.blocks(session_id) >= cfg.wake_max_blocks:
        return None
    state.count_block(session_id)
    heads = mail.store.unread_heads(session_id, max_rank, SUMMARY_ITEMS)
    return {"decision": "block", "reason": summarise(total, heads)}


def note_turn_start(mail: MailState, session_id: str) -> None:
    """The agent's turn started again (UserPromptSubmit): the block count restarts."""
    mail.wake.reset(session_id)
