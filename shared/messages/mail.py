"""mail.*: the durable mailbox between sessions and the human.

A message goes from one sender (the session bound to the caller's token, or
``human``) to one or more recipients, or to everyone in a broadcast scope.
Results are plain objects (``from`` is not a Python name)::

    {"id": "m-4f2a9c", "thread_id": "m-4f2a9c", "reply_to": null,
     "from": "s-1a2b3c", "from_name": "worker-3", "to": ["s-9f8e7d"], "scope": null,
     "type": "query", "priority": "high", "subject": "...", "body": "...",
     "task_id": "t-...", "created_at": "...",
     "read_at": null,                       # the caller's own copy, when it is a recipient
     "receipts": {"s-9f8e7d": null}}        # every recipient's read time
"""

from typing import Literal

import attrs

from shared.messages.paging import cursor_field, limit_field
from shared.messages.spec import HUMAN, MethodSpec, between, doc  # noqa: F401  (HUMAN re-exported)

MailType = Literal["assignment", "status_update", "query", "response", "directive", "notification", "blocked"]
MailPriority = Literal["critical", "high", "normal", "low"]
Scope = Literal["all", "my-workers", "team"]
MAIL_TYPES: tuple[str, ...] = MailType.__args__  # type: ignore[attr-defined]
MAIL_PRIORITIES: tuple[str, ...] = MailPriority.__args__  # type: ignore[attr-defined]
SCOPES: tuple[str, ...] = Scope.__args__  # type: ignore[attr-defined]
#: Sort rank of each priority: lower is more urgent.
PRIORITY_RANK: dict[str, int] = {p: i for i, p in enumerate(MAIL_PRIORITIES)}


@attrs.define
class MailSend:
    subject: str = attrs.field(metadata=doc("one line"))
    body: str = attrs.field(metadata=doc("the text (at most 64 KiB of UTF-8)"))
    to: list[str] = attrs.field(factory=list, metadata=doc('session ids, unique prefixes or names, or "human"'))
    to_coordinator: bool = attrs.field(
        default=False, metadata=doc("also to the sender's parent session (the human for a top-level session)"))
    type: MailType = "notification"
    priority: MailPriority = "normal"
    task: str | None = attrs.field(default=None, metadata=doc("the task this is about (id or prefix)"))


@attrs.define
class MailBroadcast:
    scope: Scope = attrs.field(metadata=doc(
        "all: every live session the sender may reach; my-workers: the sender's live children; "
        "team: live sessions with the sender's parent"))
    subject: str = attrs.field()
    body: str = attrs.field()
    type: MailType = "directive"
    priority: MailPriority = "normal"
    task: str | None = None
    project: str | None = attrs.field(default=None,
                                         metadata=doc("for a human's `all`: only this project's sessions"))


@attrs.define
class MailInbox:
    unread: bool = attrs.field(default=False, metadata=doc("only unread messages"))
    type: MailType | None = None
    thread: str | None = attrs.field(default=None, metadata=doc("only this thread (thread or message id)"))
    mailbox: str | None = attrs.field(
        default=None, metadata=doc('whose inbox (default: the caller\'s; "human" or a session the caller may read)'))
    limit: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(between(1, 1000)),
        metadata=doc("page size (1..1000): one page {total, next_cursor, items}; without limit and cursor: "
                     "the first 50 messages"))
    cursor: str | None = cursor_field()


@attrs.define
class MailRef:
    id: str = attrs.field(metadata=doc("message id or unique prefix"))


@attrs.define
class MailThread:
    id: str = attrs.field(metadata=doc("any message of the thread (id or unique prefix)"))
    limit: int | None = limit_field()
    cursor: str | None = cursor_field()


@attrs.define
class MailReply:
    id: str = attrs.field(metadata=doc("the message answered (id or unique prefix)"))
    body: str = attrs.field()
    type: MailType = "response"
    priority: MailPriority = "normal"


@attrs.define
class MailWait:
    timeout: float | None = attrs.field(
        default=None, metadata=doc("seconds to wait for mail; null waits until some arrives; 0 never blocks"))
    type: MailType | None = attrs.field(default=None, metadata=doc("only messages of this type"))
    peek: bool = attrs.field(default=False, metadata=doc("return the messages without marking them read"))


METHODS = [
    MethodSpec("mail.send", MailSend, "Send a message to sessions (or the human); the sender is the caller."),
    MethodSpec("mail.broadcast", MailBroadcast, "Send a message to every live session in a scope."),
    MethodSpec("mail.inbox", MailInbox, "Messages received: unread first, then by priority, then newest first."),
    MethodSpec("mail.read", MailRef, "One message; marks the caller's copy read."),
    MethodSpec("mail.reply", MailReply, "Answer a message in its thread (to its sender, or, for your own "
                                        "message, to its recipients)."),
    MethodSpec("mail.thread", MailThread, "Every message of a thread (give any message id in it), oldest first."),
    MethodSpec("mail.wait", MailWait,
               "Every unread message at once (marked read), or block until one arrives or the timeout "
               "passes ([]).", concurrent=True),
]


@attrs.define
class MailUnreadCounts:
    mailboxes: list[str] = attrs.field(
        validator=attrs.validators.deep_iterable(attrs.validators.instance_of(str)),
        metadata=doc('session ids (exact) or "human": whose unread messages to count (1..1000)'))

    @mailboxes.validator
    def _count(self, _a: object, v: list[str]) -> None:
        if not 1 <= len(v) <= 1000:
            raise ValueError(f"mailboxes: give between 1 and 1000, got {len(v)}")


METHODS += [
    MethodSpec("mail.unread_counts", MailUnreadCounts,
               "Unread messages per mailbox (the dashboard's counts): {counts: {mailbox: n}}; an agent "
               "counts only mailboxes it may read."),
]
