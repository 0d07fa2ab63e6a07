"""Every mailbox query walks an index in its own order (migration 6): SQLite never sorts a mailbox.

The queries are the real ones: MailStore runs against a real SQLite file (maestrod.store.db.Database) and
each statement it sends is captured (expanded, with its values) and put through ``EXPLAIN QUERY PLAN``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from maestrod.mail.store import MailStore
from maestrod.store.db import Database
from shared.messages.mail import PRIORITY_RANK

PRIORITIES = list(PRIORITY_RANK)
TYPES = ["assignment", "status_update", "query", "response", "directive", "notification", "blocked"]


@pytest.fixture(params=[False, True], ids=["no-stats", "analyzed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailStore]:
    """Two mailboxes with mixed priorities, most of ``a``'s mail read; with and without ANALYZE statistics
    (the bench runs ANALYZE, a fresh daemon has none)."""
    db = Database(tmp_path / "m.db")
    s = MailStore(db, lambda ids: {})
    rng = random.Random(6)
    read: list[str] = []
    with db.transaction():
        for k in range(2000):
            to = "a" if k % 4 else "b"
            m = s.insert(sender="x", recipients=[to], type_=rng.choice(TYPES), subject=f"m{k}", body="b",
                         priority=rng.choice(PRIORITIES))
            if to == "a" and rng.random() < 0.9:
                read.append(m["id"])
    s.mark_read("a", read)
    if request.param:
        db.conn.execute("ANALYZE")
    yield s
    db.close()


def plans(store: MailStore, call: Callable[[], Any]) -> dict[str, list[str]]:
    """{statement on mail_recipients that ``call`` ran: its query plan lines}."""
    conn = store.db.conn
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    return {sql: [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
            for sql in statements if sql.lstrip().upper().startswith("SELECT") and "mail_recipients" in sql}


def assert_walks(store: MailStore, index: str, call: Callable[[], Any]) -> None:
    """Every query ``call`` makes for a mailbox walks ``index`` (covering: no table lookups) and sorts nothing."""
    found = plans(store, call)
    mailbox_queries = {sql: plan for sql, plan in found.items() if "recipient=" in sql.replace(" ", "")}
    assert mailbox_queries, found
    for sql, plan in mailbox_queries.items():
        assert any(f"USING COVERING INDEX {index} (recipient=?" in step for step in plan), (sql, plan)
        assert not any("TEMP B-TREE" in step for step in plan), (sql, plan)
    for sql, plan in found.items():  # the receipts of a page too (by seq: a scan when the page is most of the table)
        assert not any("TEMP B-TREE" in step for step in plan), (sql, plan)


@pytest.mark.parametrize("mailbox", ["a", "b"])
@pytest.mark.parametrize("max_rank", [0, 1, 3])
def test_unread_queries_walk_mail_unread(store: MailStore, mailbox: str, max_rank: int) -> None:
    assert_walks(store, "mail_unread", lambda: store.unread(mailbox))
    assert_walks(store, "mail_unread", lambda: store.unread(mailbox, "query", limit=5))
    assert_walks(store, "mail_unread", lambda: store.unread_heads(mailbox, max_rank, 3))
    assert_walks(store, "mail_unread", lambda: store.unread_count(mailbox, max_rank))
    assert_walks(store, "mail_unread", lambda: store.unread_max_seq(mailbox, max_rank))


@pytest.mark.parametrize("mailbox", ["a", "b"])
def test_inbox_walks_mail_inbox(store: MailStore, mailbox: str) -> None:
    assert_walks(store, "mail_inbox", lambda: store.inbox(mailbox))
    assert_walks(store, "mail_inbox", lambda: store.inbox(mailbox, unread_only=True))
    assert_walks(store, "mail_inbox", lambda: store.inbox(mailbox, type_="query", limit=5))


def test_the_unread_queries_still_answer_the_same(store: MailStore) -> None:
    """The orders and figures the indexes serve, checked against the rows themselves."""
    conn = store.db.conn
    for mailbox in ("a", "b"):
        rows = conn.execute("SELECT seq, prio FROM mail_recipients WHERE recipient=? AND unread=1",
                            (mailbox,)).fetchall()
        ordered = sorted((r["prio"], r["seq"]) for r in rows)
        assert [m["subject"] for m in store.unread(mailbox)] == [
            conn.execute("SELECT subject FROM mail_messages WHERE seq=?", (seq,)).fetchone()[0]
            for _prio, seq in ordered]
        for max_rank in range(-1, 5):
            urgent = [seq for prio, seq in ordered if prio <= max_rank]
            assert store.unread_count(mailbox, max_rank) == len(urgent)
            assert store.unread_max_seq(mailbox, max_rank) == max(urgent, default=0)
            heads = store.unread_heads(mailbox, max_rank, 3)
            assert [h["subject"] for h in heads] == [
                conn.execute("SELECT subject FROM mail_messages WHERE seq=?", (seq,)).fetchone()[0]
                for seq in urgent[:3]]
    assert store.unread_max_seq("nobody") == 0
