"""Who may act on whom: pure functions over the ``sessions`` table.

The family of a session is read from ``parent_id`` (set at spawn, never
changed). Relative to an acting session, every other session is one of:

* ``self``;
* ``descendant`` -- spawned by it, directly or through its workers (its subtree);
* ``sibling`` -- spawned by the same coordinator; top-level sessions (spawned by
  a human, no parent) are siblings of the other top-level sessions of their project;
* ``ancestor`` -- its coordinator, that one's coordinator, ...;
* ``unrelated`` -- everything else (another tree, a cousin, another project).

What each relation allows (:data:`ALLOWED`):

========  ====  ==========  =======  ========
action    self  descendant  sibling  ancestor
========  ====  ==========  =======  ========
mail      yes   yes         yes      yes (workers report upwards: ``--to-coordinator``)
prompt    yes   yes         yes      no
read      yes   yes         yes      no (digest, log, inbox, details)
stop      yes   yes         no       no (stopping/killing is limited to the own subtree)
kill      yes   yes         no       no
spawn     yes   yes         no       no (the parent of a new session; only coordinators spawn)
========  ====  ==========  =======  ========

The human (``actor`` None or ``"human"``) may do everything. Refusals raise
FORBIDDEN (-32003) with a message naming both sessions, their relation and the rule.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

from maestrod.store.db import Database
from shared import errors
from shared.messages.mail import HUMAN

#: Session ids look like ``s-4f2a9c``; a unique prefix with or without ``s-`` is accepted.
SESSION_ID_PREFIX = "s"

Relation = Literal["self", "descendant", "sibling", "ancestor", "unrelated"]
Action = Literal["mail", "prompt", "read", "stop", "kill", "spawn"]

ALLOWED: dict[str, frozenset[str]] = {
    "mail": frozenset({"self", "descendant", "sibling", "ancestor"}),
    "prompt": frozenset({"self", "descendant", "sibling"}),
    "read": frozenset({"self", "descendant", "sibling"}),
    "stop": frozenset({"self", "descendant"}),
    "kill": frozenset({"self", "descendant"}),
    "spawn": frozenset({"self", "descendant"}),
}

_VERBS = {"mail": "mail", "prompt": "prompt", "read": "read", "stop": "stop", "kill": "kill",
          "spawn": "spawn sessions under"}
_RULES = {
    "mail": "a session may mail itself, its descendants, its siblings and its coordinators",
    "prompt": "a session may prompt only itself, its descendants and its siblings",
    "read": "a session may read only itself, its descendants and its siblings",
    "stop": "a session may stop only itself and the sessions below it (its own subtree)",
    "kill": "a session may kill only itself and the sessions below it (its own subtree)",
    "spawn": "a session may place new sessions only under itself or its descendants",
}
_MAX_DEPTH = 10_000  # a guard: parent links cannot form cycles, but a corrupt file must not hang us


def is_human(actor: str | None) -> bool:
    return actor is None or actor == HUMAN


def session_row(db: Database, sid: str) -> sqlite3.Row:
    row = db.conn.execute("SELECT * FROM sessions WHERE id=?", (sid,)).fetchone()
    if row is None:
        raise errors.not_found("session", sid)
    return row  # type: ignore[no-any-return]


def resolve_session(db: Database, ident: str) -> str:
    """A session id from an id, a unique name (live sessions win over exited ones), or a unique id prefix."""
    if not ident:
        raise errors.invalid_params(["session: must not be empty"])
    row = db.conn.execute("SELECT id FROM sessions WHERE id=?", (ident,)).fetchone()
    if row:
        return str(row[0])
    named = db.conn.execute("SELECT id, status FROM sessions WHERE name=? ORDER BY created_at, rowid",
                            (ident,)).fetchall()
    if len(named) == 1:
        return str(named[0]["id"])
    if named:
        live = [r["id"] for r in named if r["status"] != "exited"]
        if len(live) == 1:
            return str(live[0])
        raise errors.conflict(f"ambiguous session name {ident!r}: matches {', '.join(r['id'] for r in named)}; "
                              "use an id", {"candidates": [r["id"] for r in named]})
    return db.resolve("sessions", "session", ident, SESSION_ID_PREFIX)


def describe(db: Database, sid: str | None) -> str:
    """``session s-4f2a9c (worker-3)``, or ``the human``."""
    if is_human(sid):
        return "the human"
    row = db.conn.execute("SELECT name FROM sessions WHERE id=?", (sid,)).fetchone()
    return f"session {sid} ({row['name']})" if row else f"session {sid}"


def parent_of(db: Database, sid: str) -> str | None:
    row = session_row(db, sid)
    return row["parent_id"]  # type: ignore[no-any-return]


def ancestors(db: Database, sid: str) -> list[str]:
    """The coordinator chain of ``sid``, nearest first."""
    return [r[0] for r in db.conn.execute(
        "WITH RECURSIVE a(id, depth) AS ("
        " SELECT parent_id, 1 FROM sessions WHERE id=? AND parent_id IS NOT NULL"
        " UNION ALL SELECT s.parent_id, a.depth+1 FROM sessions s JOIN a ON s.id=a.id"
        " WHERE s.parent_id IS NOT NULL AND a.depth < ?)"
        " SELECT id FROM a ORDER BY depth", (sid, _MAX_DEPTH))]


def descendants(db: Database, sid: str, *, live_only: bool = False) -> list[str]:
    """Every session below ``sid`` (its workers, their workers, ...), shallowest first."""
    sql = ("WITH RECURSIVE d(id, depth) AS ("
           " SELECT id, 1 FROM sessions WHERE parent_id=?"
           " UNION ALL SELECT s.id, d.depth+1 FROM sessions s JOIN d ON s.parent_id=d.id WHERE d.depth < ?)"
           " SELECT d.id FROM d JOIN sessions s ON s.id=d.id")
    if live_only:
        sql += " WHERE s.status<>'exited'"
    sql += " ORDER BY d.depth, s.created_at, s.rowid"
    return [r[0] for r in db.conn.execute(sql, (sid, _MAX_DEPTH))]


def children(db: Database, parent: str | None, *, project_id: str | None = None,
             live_only: bool = False) -> list[str]:
    """Sessions whose parent is ``parent``; ``None`` means the top-level ones (of ``project_id``, if given)."""
    where = ["parent_id=?"] if parent is not None else ["parent_id IS NULL"]
    args: list[str] = [parent] if parent is not None else []
    if parent is None and project_id is not None:
        where.append("project_id=?")
        args.append(project_id)
    if live_only:
        where.append("status<>'exited'")
    return [r[0] for r in db.conn.execute(
        f"SELECT id FROM sessions WHERE {' AND '.join(where)} ORDER BY created_at, rowid", args)]


def siblings(db: Database, sid: str, *, live_only: bool = False) -> list[str]:
    """Sessions with the same coordinator as ``sid`` (not ``sid`` itself)."""
    row = session_row(db, sid)
    return [s for s in children(db, row["parent_id"], project_id=row["project_id"], live_only=live_only)
            if s != sid]


def relation(db: Database, actor: str, target: str) -> Relation:
    """How ``target`` is related to the acting session ``actor`` (both must exist)."""
    if actor == target:
        session_row(db, actor)
        return "self"
    a = session_row(db, actor)
    t = session_row(db, target)
    if a["parent_id"] == t["parent_id"] and (a["parent_id"] is not None or a["project_id"] == t["project_id"]):
        return "sibling"
    if actor in ancestors(db, target):
        return "descendant"
    if target in ancestors(db, actor):
        return "ancestor"
    return "unrelated"


def may_act(db: Database, actor: str | None, target: str, action: Action) -> bool:
    """True if ``actor`` (a session id; None or "human" for the human) may ``action`` ``target``."""
    if action not in ALLOWED:
        raise ValueError(f"unknown action {action!r}")
    if is_human(actor):
        return True
    if target == HUMAN:
        return action == "mail"
    assert actor is not None
    return relation(db, actor, target) in ALLOWED[action]


def check_act(db: Database, actor: str | None, target: str, action: Action) -> None:
    """Raise FORBIDDEN unless ``actor`` may ``action`` ``target``."""
    if may_act(db, actor, target, action):
        return
    assert actor is not None
    rel = "the human" if target == HUMAN else relation(db, actor, target)
    what = {"sibling": "its sibling", "ancestor": "one of its coordinators", "unrelated":
            "outside its family (not itself, a descendant, a sibling or a coordinator)"}.get(rel, rel)
    raise errors.RpcError(
        errors.FORBIDDEN,
        f"{describe(db, actor)} may not {_VERBS[action]} {describe(db, target)}: {_RULES[action]}; "
        f"{target} is {what}",
        {"actor": actor, "target": target, "action": action, "relation": rel})


def check_spawn(db: Database, actor: str | None, parent: str | None = None) -> None:
    """Only coordinator sessions spawn (a human may spawn anything); an explicit ``parent``
    must be the spawner itself or one of its descendants."""
    if is_human(actor):
        return
    assert actor is not None
    row = session_row(db, actor)
    if row["role"] != "coordinator":
        raise errors.RpcError(
            errors.FORBIDDEN,
            f"{describe(db, actor)} is a {row['role']}: only coordinator sessions may spawn sessions "
            "(spawn it with --role coordinator, or ask your coordinator with `maestroctl mail send "
            "--to-coordinator`)", {"actor": actor, "role": row["role"]})
    if parent is not None and parent != actor:
        check_act(db, actor, parent, "spawn")
