"""The SQLite connection: pragmas, migrations, transactions, ids and times."""

from __future__ import annotations

import contextlib
import datetime as _dt
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from maestrod.store.migrations import MIGRATIONS
from shared import errors


def utcnow() -> str:
    """ISO-8601 UTC with milliseconds: sortable as text, readable in the sqlite3 shell."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


#: Generated ids are a letter, a dash and up to 12 hex digits (``new_id``); this leaves room to spare.
MAX_ID_CHARS = 64


class Database:
    """One writer connection, used directly on the event-loop thread.

    A committed insert in WAL mode with ``synchronous=NORMAL`` takes ~10 µs,
    far less than a thread hop (~60-140 µs), so there is no thread pool here.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self._depth = 0
        self._after_commit: list[Callable[[], None]] = []
        self.migrate()

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema version {current}, newer than this maestrod ({len(MIGRATIONS)})")
        for version in range(current + 1, len(MIGRATIONS) + 1):
            # executescript commits implicitly, so the DDL and the version bump go in one script.
            self.conn.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[version - 1]}\nPRAGMA user_version={version};\nCOMMIT;")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Every mutation runs inside exactly one of these; nesting joins the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._after_commit.clear()
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0
        callbacks, self._after_commit = self._after_commit, []
        for cb in callbacks:
            cb()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current transaction commits (now, if none is open).

        Events are pushed to subscribers this way: nobody hears of a change
        that was rolled back.
        """
        if self._depth:
            self._after_commit.append(callback)
        else:
            callback()

    def close(self) -> None:
        self.conn.close()

    def new_id(self, table: str, prefix: str, column: str = "id") -> str:
        """A short, typeable id such as ``t-4f2a9c``; grows if the short space gets crowded."""
        for length in (6, 6, 6, 8, 8, 10, 12):
            candidate = f"{prefix}-{secrets.token_hex(length // 2)}"
            if not self.conn.execute(f"SELECT 1 FROM {table} WHERE {column}=?", (candidate,)).fetchone():
                return candidate
        raise RuntimeError(f"could not allocate an id in {table}")

    def resolve(self, table: str, kind: str, ident: str, prefix: str, *,
                name_column: str | None = None) -> str:
        """Full id from an id, a unique id prefix (with or without ``x-``), or a name."""
        if not ident:
            raise errors.invalid_params([f"{kind}: must not be empty"])
        row = self.conn.execute(f"SELECT id FROM {table} WHERE id=?", (ident,)).fetchone()
        if row:
            return str(row[0])
        if name_column:
            row = self.conn.execute(f"SELECT id FROM {table} WHERE {name_column}=?", (ident,)).fetchone()
            if row:
                return str(row[0])
        if len(ident) > MAX_ID_CHARS:
            # Longer than any id, so no prefix of one; and SQLite refuses LIKE patterns over 50,000 bytes.
            raise errors.not_found(kind, ident[:MAX_ID_CHARS] + "...")
        pat = ident if ident.startswith(prefix + "-") else f"{prefix}-{ident}"
        escaped = pat.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.conn.execute(
            f"SELECT id FROM {table} WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 6",
            (escaped + "%",)).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if not rows:
            raise errors.not_found(kind, ident)
        raise errors.conflict(f"ambiguous {kind} prefix {ident!r}: matches {', '.join(r[0] for r in rows)}"
                              + (" and more" if len(rows) > 5 else ""),
                              {"candidates": [r[0] for r in rows]})
