"""MailStore: messages and per-recipient copies (with read receipts) in SQLite.

Two tables (migration 3): ``mail_messages`` holds each message once;
``mail_recipients`` holds one row per (recipient, message) with ``unread``,
``read_at`` and the priority rank copied from the message, so that

* the inbox ("unread first, then by priority, then newest first") walks the
  ``mail_inbox`` index of one mailbox and stops after ``limit`` rows,
* unread mail in the order to handle it ("by priority, then oldest first") walks
  ``mail_unread`` (migration 6) the same way, and
* "how much urgent unread mail has this session" is an index range count,

whatever the number of messages stored (bench/bench_mail.py: 100,000).
A mailbox is a session id or ``human``. Senders are shown by name: the names come from the session
store (``sender_names``), the owner of the session tables.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from maestrod.paging import Page
from maestrod.store.db import Database, utcnow
from shared import errors
from shared.messages.mail import PRIORITY_RANK

_COLUMNS = ("m.seq, m.id, m.thread_id, m.reply_to, m.sender, m.scope, m.type, m.subject, m.body, "
            "m.priority, m.task_id, m.created_at")

#: The largest priority rank (low).
_LOWEST = max(PRIORITY_RANK.values())

#: {session id: name} for those of the given ids that are sessions.
SenderNames = Callable[[Iterable[str]], dict[str, str]]


class MailStore:
    def __init__(self, db: Database, sender_names: SenderNames) -> None:
        self.db = db
        self.sender_names = sender_names

    def resolve(self, ident: str) -> str:
        """A message id from an id or a unique prefix (with or without ``m-``)."""
        return self.db.resolve("mail_messages", "message", ident, "m")

    # -- writes -----------------------------------------------------------------------------

    def insert(self, *, sender: str, recipients: list[str], type_: str, subject: str, body: str,
               priority: str, task_id: str | None = None, thread_id: str | None = None,
               reply_to: str | None = None, scope: str | None = None) -> dict[str, Any]:
        """Store one message and a copy for each recipient; returns it (as the sender sees it)."""
        recipients = list(dict.fromkeys(recipients))
        if not recipients:
            raise ValueError("a message needs at least one recipient")
        rank = PRIORITY_RANK[priority]
        with self.db.transaction() as c:
            mid = self.db.new_id("mail_messages", "m")
            now = utcnow()
            cur = c.execute(
                "INSERT INTO mail_messages(id, thread_id, reply_to, sender, scope, type, subject, body, "
                "priority, task_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (mid, thread_id or mid, reply_to, sender, scope, type_, subject, body, priority, task_id, now))
            seq = cur.lastrowid
            c.executemany("INSERT INTO mail_recipients(recipient, seq, prio) VALUES (?,?,?)",
                          [(r, seq, rank) for r in recipients])
            name = self.sender_names([sender]).get(sender, sender)
        return {"id": mid, "thread_id": thread_id or mid, "reply_to": reply_to, "from": sender,
                "from_name": name, "to": sorted(recipients), "scope": scope,
                "type": type_, "priority": priority, "subject": subject, "body": body, "task_id": task_id,
                "created_at": now, "read_at": None, "receipts": {r: None for r in sorted(recipients)}}

    def copy_unread(self, old: str, new: str) -> int:
        """``old``'s unread copies become ``new``'s too (a context hand-off); how many were added."""
        with self.db.transaction() as c:
            cur = c.execute("INSERT OR IGNORE INTO mail_recipients(recipient, seq, prio) "
                            "SELECT ?, seq, prio FROM mail_recipients WHERE recipient=? AND unread=1", (new, old))
            return int(cur.rowcount or 0)

    def mark_read(self, mailbox: str, message_ids: list[str]) -> dict[str, str]:
        """Mark ``mailbox``'s copies read; returns {message id: read time} for those that were unread."""
        changed: dict[str, str] = {}
        if not message_ids:
            return changed
        now = utcnow()
        with self.db.transaction() as c:
            for mid in message_ids:
                cur = c.execute(
                    "UPDATE mail_recipients SET unread=0, read_at=? WHERE recipient=? AND unread=1 "
                    "AND seq=(SELECT seq FROM mail_messages WHERE id=?)", (now, mailbox, mid))
                if cur.rowcount:
                    changed[mid] = now
        return changed

    # -- reads ------------------------------------------------------------------------------

    def _build(self, rows: list[sqlite3.Row], viewer: str | None) -> list[dict[str, Any]]:
        """Messages from joined rows, with every recipient's receipt (one query for the whole page)."""
        if not rows:
            return []
        receipts: dict[int, dict[str, str | None]] = {r["seq"]: {} for r in rows}
        seqs = list(receipts)
        for i in range(0, len(seqs), 500):
            chunk = seqs[i:i + 500]
            for rr in self.db.conn.execute(
                    f"SELECT seq, recipient, read_at FROM mail_recipients WHERE seq IN ({','.join('?' * len(chunk))})",
                    chunk):
                receipts[rr[0]][rr[1]] = rr[2]
        names = self.sender_names(r["sender"] for r in rows)
        out = []
        for r in rows:
            rec = dict(sorted(receipts[r["seq"]].items()))
            out.append({"id": r["id"], "thread_id": r["thread_id"], "reply_to": r["reply_to"],
                        "from": r["sender"], "from_name": names.get(r["sender"]) or r["sender"],
                        "to": list(rec),
                        "scope": r["scope"], "type": r["type"], "priority": r["priority"],
                        "subject": r["subject"], "body": r["body"], "task_id": r["task_id"],
                        "created_at": r["created_at"], "read_at": rec.get(viewer) if viewer else None,
                        "receipts": rec})
        return out

    def get(self, mid: str, viewer: str | None = None) -> dict[str, Any]:
        rows = self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM mail_messages m WHERE m.id=?",
            (mid,)).fetchall()
        if not rows:
            raise errors.not_found("message", mid)
        return self._build(rows, viewer)[0]

    def participants(self, mid: str) -> tuple[str, set[str]]:
        """(sender, recipients) of a message."""
        row = self.db.conn.execute("SELECT seq, sender FROM mail_messages WHERE id=?", (mid,)).fetchone()
        if row is None:
            raise errors.not_found("message", mid)
        rec = {r[0] for r in self.db.conn.execute("SELECT recipient FROM mail_recipients WHERE seq=?",
                                                  (row["seq"],))}
        return row["sender"], rec

    def thread_of(self, mid: str) -> str:
        row = self.db.conn.execute("SELECT thread_id FROM mail_messages WHERE id=?", (mid,)).fetchone()
        if row is None:
            raise errors.not_found("message", mid)
        return str(row[0])

    def inbox(self, mailbox: str, *, unread_only: bool = False, type_: str | None = None,
              thread_id: str | None = None, limit: int = 50, page: Page | None = None) -> list[dict[str, Any]]:
        """``mailbox``'s messages: unread first, then by priority (critical first), then newest first.

        With ``page``: the keyset page after ``page.after`` = (unread, prio, seq) of the last one shown."""
        where = ["r.recipient=?"]
        args: list[Any] = [mailbox]
        if unread_only:
            where.append("r.unread=1")
        if type_:
            where.append("m.type=?")
            args.append(type_)
        if thread_id:
            where.append("m.thread_id=?")
            args.append(thread_id)
        if page is not None:
            page.total = int(self.db.conn.execute(
                "SELECT COUNT(*) FROM mail_recipients r JOIN mail_messages m ON m.seq=r.seq "
                f"WHERE {' AND '.join(where)}", args).fetchone()[0])
            limit = page.limit + 1
            if page.after is not None:  # strictly after, in (unread DESC, prio, seq DESC) order
                where.append("(r.unread<? OR (r.unread=? AND (r.prio>? OR (r.prio=? AND r.seq<?))))")
                unread, prio, seq = page.after
                args += [unread, unread, prio, prio, seq]
        args.append(limit)
        rows = self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM mail_recipients r JOIN mail_messages m ON m.seq=r.seq "
            f"WHERE {' AND '.join(where)} "
            "ORDER BY r.unread DESC, r.prio, r.seq DESC LIMIT ?", args).fetchall()
        found = self._build(rows, mailbox)
        if page is None:
            return found
        seqs = {r["id"]: r["seq"] for r in rows}

        def key(m: dict[str, Any]) -> tuple[int, int, int]:
            row = self.db.conn.execute("SELECT unread, prio, seq FROM mail_recipients WHERE recipient=? AND seq=?",
                                       (mailbox, seqs[m["id"]])).fetchone()
            return int(row[0]), int(row[1]), int(row[2])

        return page.cut(found, key)

    def unread(self, mailbox: str, type_: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Every unread message of ``mailbox``: by priority, then oldest first (the order to handle them in)."""
        where, args = "r.recipient=? AND r.unread=1", [mailbox]
        if type_:
            where += " AND m.type=?"
            args.append(type_)
        rows = self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM mail_recipients r JOIN mail_messages m ON m.seq=r.seq "
            f"WHERE {where} ORDER BY r.prio, r.seq LIMIT ?",
            (*args, limit)).fetchall()
        return self._build(rows, mailbox)

    def unread_count(self, mailbox: str, max_rank: int = 3) -> int:
        """Unread messages of ``mailbox`` with priority rank <= ``max_rank`` (0 = critical only)."""
        return int(self.db.conn.execute(
            "SELECT COUNT(*) FROM mail_recipients WHERE recipient=? AND unread=1 AND prio<=?",
            (mailbox, max_rank)).fetchone()[0])

    def unread_max_seq(self, mailbox: str, max_rank: int = 3) -> int:
        """The newest unread message of rank <= ``max_rank`` (its store sequence; 0 if none).

        One ``mail_unread`` seek per rank: a single ``prio<=?`` query would either walk every unread row
        of those ranks or (SQLite's choice) the mailbox's whole history backwards, read mail included.
        """
        return max((self.db.conn.execute(
            "SELECT MAX(seq) FROM mail_recipients WHERE recipient=? AND unread=1 AND prio=?",
            (mailbox, rank)).fetchone()[0] or 0 for rank in range(min(max_rank, _LOWEST) + 1)), default=0)

    def unread_heads(self, mailbox: str, max_rank: int, limit: int = 3) -> list[dict[str, Any]]:
        """The first unread messages of rank <= ``max_rank`` (no bodies): for summaries."""
        rows = self.db.conn.execute(
            "SELECT m.id, m.type, m.subject, m.priority, m.sender "
            "FROM mail_recipients r JOIN mail_messages m ON m.seq=r.seq "
            "WHERE r.recipient=? AND r.unread=1 AND r.prio<=? ORDER BY r.prio, r.seq LIMIT ?",
            (mailbox, max_rank, limit)).fetchall()
        names = self.sender_names(r["sender"] for r in rows)
        return [{"id": r["id"], "type": r["type"], "subject": r["subject"], "priority": r["priority"],
                 "from": r["sender"], "from_name": names.get(r["sender"]) or r["sender"]} for r in rows]

    def thread_seqs(self, thread_id: str) -> dict[str, int]:
        """Each message of a thread: its store sequence (the thread's order), for keyset pages."""
        return {r[0]: r[1] for r in self.db.conn.execute(
            "SELECT id, seq FROM mail_messages WHERE thread_id=?", (thread_id,))}

    def thread(self, thread_id: str, viewer: str | None = None) -> list[dict[str, Any]]:
        """Every message of a thread, oldest first; with ``viewer``, only those it sent or received."""
        sql = f"SELECT {_COLUMNS} FROM mail_messages m WHERE m.thread_id=?"
        args: list[Any] = [thread_id]
        if viewer is not None:
            sql += (" AND (m.sender=? OR EXISTS (SELECT 1 FROM mail_recipients r "
                    "WHERE r.recipient=? AND r.seq=m.seq))")
            args += [viewer, viewer]
        rows = self.db.conn.execute(sql + " ORDER BY m.seq", args).fetchall()
        return self._build(rows, viewer)
