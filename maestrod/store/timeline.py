"""The audit timeline: who (``human`` or a session id) did what to which subject, when."""

from __future__ import annotations

from typing import Any

import orjson

from maestrod.paging import Page
from maestrod.store.db import Database, utcnow
from shared.timeline import TIMELINE_TYPES


class TimelineStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, actor: str, subject_kind: str, subject_id: str, type_: str,
               data: dict[str, Any] | None = None) -> int:
        # Refuse unknown types loudly: the old system silently dropped its own events.
        if type_ not in TIMELINE_TYPES:
            raise ValueError(f"unknown timeline type {type_!r}")
        with self.db.transaction() as c:
            cur = c.execute(
                "INSERT INTO timeline(at, actor, subject_kind, subject_id, type, data) VALUES (?,?,?,?,?,?)",
                (utcnow(), actor, subject_kind, subject_id, type_, orjson.dumps(data or {}).decode()))
            return int(cur.lastrowid or 0)

    def page_for_subject(self, subject_kind: str, subject_id: str, page: Page) -> list[dict[str, Any]]:
        """One keyset page of a subject's rows, newest first (the key is the row id); fills in ``page``."""
        where, args = "subject_kind=? AND subject_id=?", [subject_kind, subject_id]
        page.total = int(self.db.conn.execute(f"SELECT COUNT(*) FROM timeline WHERE {where}", args).fetchone()[0])
        if page.after is not None:
            where += " AND id<?"
            args.append(page.after[0])
        rows = self.db.conn.execute(f"SELECT id, at, actor, type, data FROM timeline WHERE {where} "
                                    "ORDER BY id DESC LIMIT ?", (*args, page.limit + 1)).fetchall()
        return page.cut([{"id": r["id"], "at": r["at"], "actor": r["actor"], "type": r["type"],
                          "data": orjson.loads(r["data"])} for r in rows], lambda e: (e["id"],))

    def for_subject(self, subject_kind: str, subject_id: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT id, at, actor, type, data FROM timeline WHERE subject_kind=? AND subject_id=? "
            "ORDER BY id DESC LIMIT ?", (subject_kind, subject_id, limit)).fetchall()
        return [{"id": r["id"], "at": r["at"], "actor": r["actor"], "type": r["type"],
                 "data": orjson.loads(r["data"])} for r in reversed(rows)]
