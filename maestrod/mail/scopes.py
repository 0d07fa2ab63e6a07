"""Broadcast scopes, resolved to live (not exited) sessions when the message is sent.

For a session sender:

* ``my-workers`` -- the sessions it spawned (its direct children);
* ``team`` -- the sessions spawned by its coordinator, except itself (for a
  top-level session: the other top-level sessions of its project);
* ``all`` -- every session it may mail (:mod:`maestrod.policy`): its coordinators,
  its siblings and everything below it.

For the human: ``all`` is every live session (of ``project``, if given),
``my-workers`` the top-level sessions (the ones a human spawned); ``team`` has
no meaning. The sender itself is never a recipient. An empty scope is an error.
"""

from __future__ import annotations

from maestrod import policy
from maestrod.store.db import Database
from shared import errors


def _live(db: Database, ids: list[str], project_id: str | None) -> list[str]:
    """``ids`` (once each, in order) that are live sessions (of ``project_id``, if given)."""
    ids = list(dict.fromkeys(ids))
    extra = " AND project_id=?" if project_id else ""
    live: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        live.update(r[0] for r in db.conn.execute(
            f"SELECT id FROM sessions WHERE id IN ({','.join('?' * len(chunk))}) AND status<>'exited'{extra}",
            [*chunk, project_id] if project_id else chunk))
    return [s for s in ids if s in live]


def resolve_scope(db: Database, sender: str | None, scope: str, project_id: str | None = None) -> list[str]:
    """The recipients of a broadcast from ``sender`` (a session id, or None/"human")."""
    if policy.is_human(sender):
        if scope == "team":
            raise errors.invalid_params(
                ["scope: team means the sender's fellow workers; the human has none (use all or my-workers)"])
        where = ["status<>'exited'"]
        args: list[str] = []
        if scope == "my-workers":
            where.append("parent_id IS NULL")
        if project_id:
            where.append("project_id=?")
            args.append(project_id)
        ids = [r[0] for r in db.conn.execute(
            f"SELECT id FROM sessions WHERE {' AND '.join(where)} ORDER BY created_at, rowid", args)]
        who = "the human"
    else:
        assert sender is not None
        if scope == "my-workers":
            ids = policy.children(db, sender)
        elif scope == "team":
            ids = policy.siblings(db, sender)
        else:  # all
            ids = policy.ancestors(db, sender) + policy.siblings(db, sender) + policy.descendants(db, sender)
        ids = _live(db, ids, project_id)
        who = policy.describe(db, sender)
    ids = [i for i in ids if i != sender]
    if not ids:
        meaning = {"my-workers": "no live sessions it spawned", "team": "no live fellow workers",
                   "all": "no live sessions it may reach"}[scope]
        raise errors.conflict(f"scope {scope} is empty: {who} has {meaning}"
                              + (f" in project {project_id}" if project_id else ""),
                              {"scope": scope, "sender": sender or policy.HUMAN})
    return ids
