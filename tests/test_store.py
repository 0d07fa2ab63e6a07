"""The SQLite store: pragmas, migrations from an empty file, transactions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from maestrod.store.db import Database
from maestrod.store.migrations import MIGRATIONS


def test_migrates_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    path.write_bytes(b"")
    db = Database(path)
    assert db.schema_version == len(MIGRATIONS)
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"projects", "tasks", "task_deps", "timeline", "events", "sessions"} <= tables
    db.close()
    # Re-opening runs nothing and keeps the data.
    db2 = Database(path)
    assert db2.schema_version == len(MIGRATIONS)


def test_forward_migration_from_every_older_version(tmp_path: Path) -> None:
    for start in range(1, len(MIGRATIONS)):
        path = tmp_path / f"v{start}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        for v in range(1, start + 1):
            conn.executescript(f"BEGIN;{MIGRATIONS[v - 1]};PRAGMA user_version={v};COMMIT;")
        conn.execute("INSERT INTO projects VALUES ('p-1','n','/','', 'x', 'x')")
        conn.close()
        db = Database(path)
        assert db.schema_version == len(MIGRATIONS)
        assert db.conn.execute("SELECT name FROM projects").fetchone()[0] == "n"
        db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        Database(path)


def test_transaction_rolls_back_and_skips_after_commit(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    fired: list[str] = []
    with pytest.raises(ValueError):
        with db.transaction() as c:
            c.execute("INSERT INTO projects VALUES ('p-1','n','/','', 'x', 'x')")
            db.after_commit(lambda: fired.append("no"))
            raise ValueError
    assert db.conn.execute("SELECT COUNT(*) FROM projects").fetchone()[0] == 0 and fired == []
    with db.transaction() as c:
        with db.transaction():  # nested joins the outer transaction
            c.execute("INSERT INTO projects VALUES ('p-1','n','/','', 'x', 'x')")
            db.after_commit(lambda: fired.append("yes"))
        assert fired == []
    assert fired == ["yes"]


def test_ids_are_short_and_unique(tmp_path: Path) -> None:
    db = Database(tmp_path / "i.db")
    ids = set()
    with db.transaction() as c:
        for i in range(2000):
            pid = db.new_id("projects", "p")
            assert len(pid) >= 8 and pid.startswith("p-")
            c.execute("INSERT INTO projects VALUES (?,?,?,?,?,?)", (pid, f"n{i}", "/", "", "x", "x"))
            ids.add(pid)
    assert len(ids) == 2000
