"""mail.*: send, broadcast, inbox, read, reply, thread, wait.

The sender and the mailbox are always the caller: the session bound to the
connection's token, or ``human``. Nobody sends as, or reads as, another session.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from maestrod import policy
from maestrod import paging
from maestrod.dispatch import Context, handler
from maestrod.mail.scopes import resolve_scope
from maestrod.mail.wait import wait_for_mail
from shared import errors
from shared.messages.mail import (PRIORITY_RANK, MailBroadcast, MailInbox, MailRef, MailReply, MailSend,
                                  MailThread, MailWait)
from shared.messages.mail import MailUnreadCounts  # the dashboard's counts, at the end
from shared.messages.spec import HUMAN


def resolve_recipient(ctx: Context, ident: str) -> str:
    """``human``, or a session id from an id, unique prefix or name."""
    if ident == HUMAN:
        return HUMAN
    return ctx.app.session_store.resolve(ident)


def coordinator_of(ctx: Context) -> str:
    """The caller's coordinator: its parent session, or the human for a top-level session."""
    if ctx.is_human:
        raise errors.invalid_params(["to_coordinator: the human has no coordinator"])
    assert ctx.session_id is not None
    return ctx.app.session_store.row(ctx.session_id)["parent_id"] or HUMAN


def check_recipients(ctx: Context, recipients: list[str]) -> None:
    store = ctx.app.session_store
    for r in recipients:
        if r == HUMAN:
            continue
        row = store.row(r)
        if row["status"] == "exited":
            raise errors.conflict(f"{policy.describe(store, r)} has exited and cannot read mail",
                                  {"recipient": r, "status": "exited"})
        policy.check_act(store, ctx.session_id, r, "mail")
        ctx.app.project_scope.check(ctx.session_id, row["project_id"], "mail", f"mail {policy.describe(store, r)}")


def _task_id(ctx: Context, ident: str | None) -> str | None:
    return ctx.app.tasks.resolve(ident) if ident else None


def _visible(ctx: Context, mid: str) -> tuple[str, set[str]]:
    sender, recipients = ctx.app.mail.store.participants(mid)
    if not ctx.is_human and ctx.actor != sender and ctx.actor not in recipients:
        raise errors.forbidden(
            f"message {mid} was neither sent to nor by {policy.describe(ctx.app.session_store, ctx.actor)}")
    return sender, recipients


@handler("mail.send")
async def send(ctx: Context, p: MailSend) -> dict[str, Any]:
    mail = ctx.app.mail
    mail.check_content(p.subject, p.body)
    recipients: list[str] = []
    unknown: list[str] = []
    for ident in p.to:
        try:
            recipients.append(resolve_recipient(ctx, ident))
        except errors.RpcError as exc:
            if exc.code != errors.NOT_FOUND:
                raise
            unknown.append(ident)
    if unknown:
        raise errors.RpcError(errors.NOT_FOUND,
                              f"unknown recipient(s): {', '.join(unknown)} (give session ids, unique id "
                              "prefixes or names, or human)", {"kind": "recipient", "unknown": unknown})
    if p.to_coordinator:
        recipients.append(coordinator_of(ctx))
    recipients = list(dict.fromkeys(recipients))
    if not recipients:
        raise errors.invalid_params(["to: give at least one recipient (to, or to_coordinator)"])
    check_recipients(ctx, recipients)
    return mail.send(ctx.actor, recipients, type_=p.type, subject=p.subject, body=p.body,
                     priority=p.priority, task_id=_task_id(ctx, p.task))


@handler("mail.broadcast")
async def broadcast(ctx: Context, p: MailBroadcast) -> dict[str, Any]:
    mail = ctx.app.mail
    mail.check_content(p.subject, p.body)
    project = ctx.app.projects.resolve(p.project) if p.project else None
    if project is not None:
        ctx.app.project_scope.check(ctx.session_id, project, "mail", "broadcast")
    recipients = resolve_scope(ctx.app.session_store, ctx.session_id, p.scope, project)
    if not ctx.is_human:
        store = ctx.app.session_store
        for r in recipients:
            ctx.app.project_scope.check(ctx.session_id, store.row(r)["project_id"], "mail",
                                        f"broadcast to {policy.describe(store, r)}")
    return mail.send(ctx.actor, recipients, type_=p.type, subject=p.subject, body=p.body,
                     priority=p.priority, task_id=_task_id(ctx, p.task), scope=p.scope)


@handler("mail.inbox")
async def inbox(ctx: Context, p: MailInbox) -> list[dict[str, Any]] | dict[str, Any]:
    mail = ctx.app.mail
    mailbox = ctx.actor
    if p.mailbox is not None:
        mailbox = resolve_recipient(ctx, p.mailbox)
        if mailbox != ctx.actor and not ctx.is_human:
            if mailbox == HUMAN:
                raise errors.forbidden("only the human reads the human's mailbox")
            policy.check_act(ctx.app.session_store, ctx.session_id, mailbox, "read")
            ctx.app.project_scope.check(ctx.session_id, ctx.app.session_store.row(mailbox)["project_id"], "read",
                                        f"read the mailbox of {policy.describe(ctx.app.session_store, mailbox)}")
    thread = mail.store.thread_of(mail.store.resolve(p.thread)) if p.thread else None
    if paging.paged(p.limit, p.cursor):
        page = paging.Page("mail.inbox", p.cursor, p.limit, (int, int, int))
        return page.answer(mail.store.inbox(mailbox, unread_only=p.unread, type_=p.type, thread_id=thread,
                                            page=page))
    return mail.store.inbox(mailbox, unread_only=p.unread, type_=p.type, thread_id=thread)


@handler("mail.read")
async def read(ctx: Context, p: MailRef) -> dict[str, Any]:
    mail = ctx.app.mail
    mid = mail.store.resolve(p.id)
    _sender, recipients = _visible(ctx, mid)
    if ctx.actor in recipients:
        mail.mark_read(ctx.actor, [mid])
    return mail.store.get(mid, ctx.actor)


@handler("mail.reply")
async def reply(ctx: Context, p: MailReply) -> dict[str, Any]:
    mail = ctx.app.mail
    mail.check_content("reply", p.body)
    mid = mail.store.resolve(p.id)
    sender, recipients = _visible(ctx, mid)
    original = mail.store.get(mid, ctx.actor)
    if sender == ctx.actor:
        # A follow-up to one's own message goes to its recipients.
        targets = [r for r in sorted(recipients) if r != ctx.actor] or [ctx.actor]
    else:
        targets = [sender]
    check_recipients(ctx, targets)
    subject = original["subject"]
    if not subject.lower().startswith("re:"):
        subject = "Re: " + subject
    subject = subject[:mail.config.max_subject_chars]
    with ctx.app.db.transaction():
        if ctx.actor in recipients:
            mail.mark_read(ctx.actor, [mid])  # answering a message means it was read
        return mail.send(ctx.actor, targets, type_=p.type, subject=subject, body=p.body, priority=p.priority,
                         task_id=original["task_id"], thread_id=original["thread_id"], reply_to=mid)


@handler("mail.thread")
async def thread(ctx: Context, p: MailThread) -> list[dict[str, Any]] | dict[str, Any]:
    mail = ctx.app.mail
    mid = mail.store.resolve(p.id)
    thread_id = mail.store.thread_of(mid)
    messages = mail.store.thread(thread_id, None if ctx.is_human else ctx.actor)
    if not messages:
        who = policy.describe(ctx.app.session_store, ctx.actor)
        raise errors.forbidden(f"no message of thread {thread_id} was sent to or by {who}")
    if paging.paged(p.limit, p.cursor):  # oldest first, as the whole thread
        seq = mail.store.thread_seqs(thread_id)
        return paging.slice_page("mail.thread", messages, lambda m: (seq[m["id"]],), p.cursor, p.limit, (int,))
    return messages


@handler("mail.wait")
async def wait(ctx: Context, p: MailWait) -> list[dict[str, Any]]:
    if p.timeout is not None and (not math.isfinite(p.timeout) or p.timeout < 0):
        raise errors.invalid_params([f"timeout: must be a number of seconds >= 0, got {p.timeout}"])
    mail = ctx.app.mail
    mailbox = ctx.actor
    conn = ctx.conn
    found: list[dict[str, Any]] = []  # stays empty if the client goes away: the wait stops at once
    with conn.cancel_when_gone() if conn is not None else contextlib.nullcontext():
        found = await wait_for_mail(mail.store, mail.waiters, mailbox, p.timeout, p.type)
    # Never consume mail for a client that is gone: it would be marked read and lost.
    if found and not p.peek and not (conn is not None and conn.peer_gone()):
        changed = mail.mark_read(mailbox, [m["id"] for m in found])
        for m in found:
            at = changed.get(m["id"])
            if at is not None:
                m["read_at"] = at
                m["receipts"][mailbox] = at
    return found


#: Every priority counts (unread_count's max_rank).
_LOWEST_RANK = max(PRIORITY_RANK.values())


@handler("mail.unread_counts")
async def unread_counts(ctx: Context, p: MailUnreadCounts) -> dict[str, Any]:
    store = ctx.app.mail.store
    counts: dict[str, int] = {}
    for mailbox in dict.fromkeys(p.mailboxes):
        if not ctx.is_human and mailbox != ctx.actor:
            if mailbox == HUMAN:
                raise errors.forbidden("only the human reads the human's mailbox")
            policy.check_act(ctx.app.session_store, ctx.session_id, mailbox, "read")
        counts[mailbox] = store.unread_count(mailbox, _LOWEST_RANK)  # one index seek per mailbox
    return {"counts": counts}
