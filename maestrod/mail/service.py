"""The mail service of one daemon: store, waiters, Stop-hook state, and the send/read paths
that every writer (``mail.*``, ``task.report``, spawn directives) goes through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from maestrod.events import EventBus
from maestrod.mail.config import MailConfig
from maestrod.mail.store import MailStore
from maestrod.mail.wait import MailWaiters
from maestrod.mail.wake import StopHookState, note_turn_start, stop_hook_decision
from maestrod.recorder import Recorder
from maestrod.sessions.hooks import HookExtensions
from maestrod.sessions.store import SessionStore
from maestrod.store.db import Database
from shared import errors


class Mail:
    """Built once at start-up (``maestrod/app.py``), from what it uses: the database (its own tables and
    transactions), the recorder (timeline rows and events), the bus (it follows ``mail.*`` events), the
    session store (senders' names) and the ``[mail]`` config section."""

    def __init__(self, db: Database, recorder: Recorder, bus: EventBus, session_store: SessionStore,
                 config: MailConfig) -> None:
        self.db = db
        self.recorder = recorder
        self.config = config
        self.store = MailStore(db, session_store.names)
        #: A session's successor (a context hand-off, maestrod/scheduler/handoff.py): mail to it goes there.
        self.forward_to: Callable[[str], str | None] = lambda session_id: None
        self.waiters = MailWaiters()
        self.wake = StopHookState()
        bus.add_listener(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        topic = event["topic"]
        if topic == "mail.received":
            self.waiters.on_event(event)
        elif topic == "mail.read":
            # Reading mail is the agent acting on it: the Stop hook's block count restarts.
            self.wake.reset(event["data"].get("reader", ""))

    def check_content(self, subject: str, body: str) -> None:
        size = len(body.encode("utf-8", "surrogatepass"))
        if size > self.config.max_body_bytes:
            raise errors.RpcError(
                errors.TOO_LARGE,
                f"message body too large: {size} bytes, the limit is {self.config.max_body_bytes} bytes "
                f"({self.config.max_body_bytes // 1024} KiB); put large content in a file and send its path",
                {"size": size, "limit": self.config.max_body_bytes, "fields": ["body"]})
        if not subject.strip():
            raise errors.invalid_params(["subject: must not be empty"])
        if len(subject) > self.config.max_subject_chars:
            problem = f"subject: at most {self.config.max_subject_chars} characters, got {len(subject)}"
            raise errors.RpcError(errors.TOO_LARGE, "Too large: " + problem,
                                  {"errors": [problem], "fields": ["subject"]})

    def send(self, actor: str, recipients: list[str], *, type_: str, subject: str, body: str,
             priority: str = "normal", task_id: str | None = None, thread_id: str | None = None,
             reply_to: str | None = None, scope: str | None = None) -> dict[str, Any]:
        """Store and announce one message from ``actor`` (a session id or ``human``).

        Recipients must already be resolved and allowed; one transaction writes the
        message, its copies, the ``mail.sent`` timeline row and the ``mail.received``
        event, which wakes the recipients' waiters once committed.
        """
        self.check_content(subject, body)
        recipients = [self._forwarded(r) for r in recipients]
        with self.db.transaction():
            msg = self.store.insert(sender=actor, recipients=recipients, type_=type_, subject=subject,
                                    body=body, priority=priority, task_id=task_id, thread_id=thread_id,
                                    reply_to=reply_to, scope=scope)
            head = {"message_id": msg["id"], "thread_id": msg["thread_id"], "reply_to": reply_to,
                    "from": actor, "to": msg["to"], "scope": scope, "type": type_, "priority": priority,
                    "subject": subject, "task_id": task_id}
            self.recorder.record(actor, "mail", msg["id"], "mail.sent", head, topic="mail.received",
                                 event={"actor": actor, **head})
        return msg

    def _forwarded(self, recipient: str) -> str:
        """The session that now holds ``recipient``'s work (successors of successors followed, at most 16)."""
        for _ in range(16):
            nxt = self.forward_to(recipient)
            if nxt is None:
                break
            recipient = nxt
        return recipient

    def copy_unread(self, old: str, new: str) -> int:
        """A hand-off: ``old``'s unread mail is put in ``new``'s mailbox too (unread); how many."""
        with self.db.transaction():
            return self.store.copy_unread(old, new)

    def send_directive(self, sender: str, session_id: str, subject: str, message: str,
                       task_id: str | None = None) -> dict[str, Any]:
        """A spawner's ``--subject/--message``: the first mail of the new session (a thread of its own),
        shown to the agent as ``<coordinator_directive>`` too. No policy check: the spawner just
        created the session."""
        return self.send(sender, [session_id], type_="directive", subject=subject, body=message,
                         task_id=task_id)

    def mark_read(self, reader: str, message_ids: list[str]) -> dict[str, str]:
        """Mark ``reader``'s copies read (receipts, ``mail.read`` events); {id: read time} of the changed."""
        with self.db.transaction():
            changed = self.store.mark_read(reader, message_ids)
            for mid, at in changed.items():
                self.recorder.record(
                    reader, "mail", mid, "mail.read", {"reader": reader, "read_at": at},
                    event={"actor": reader, "message_id": mid, "reader": reader, "read_at": at})
        return changed

    # -- the wake-up's plug-ins for the session hooks (see install_hooks) ---------------------------

    def stop_decider(self, session_id: str, payload: dict[str, Any]) -> dict[str, str] | None:
        """A Stop-hook decider (:func:`maestrod.mail.wake.stop_hook_decision`)."""
        return stop_hook_decision(self, session_id, bool(payload.get("stop_hook_active")))

    def on_user_prompt(self, session_id: str, event: str, payload: dict[str, Any]) -> None:
        """A UserPromptSubmit listener: the agent's turn started again."""
        note_turn_start(self, session_id)


def install_hooks(hook_extensions: HookExtensions, mail: Mail) -> None:
    """Plug the wake-up into the session hooks (the Stop decider and the turn-start reset of ``mail``);
    a second call changes nothing."""
    if mail.stop_decider not in hook_extensions.stop_deciders:
        hook_extensions.add_stop_decider(mail.stop_decider)
    if ("UserPromptSubmit", mail.on_user_prompt) not in hook_extensions.listeners:
        hook_extensions.add_listener("UserPromptSubmit", mail.on_user_prompt)
