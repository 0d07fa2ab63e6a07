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
from maestrod.sessions.store import SessionStore
from shared import errors
from shared.messages.spec import HUMAN


def resolve_scope(store: SessionStore, sender: str | None, scope: str,
                  project_id: str | None = None) -> list[str]:
    """The recipients of a broadcast from ``sender`` (a session id, or None/"human")."""
    if policy.is_human(sender):
        if scope == "team":
            raise errors.invalid_params(
                ["scope: team means the sender's fellow workers; the human has none (use all or my-workers)"])
        if scope == "my-workers":
            ids = store.children(None, project_id=project_id, live_only=True)
        else:
            ids = store.live_ids(project_id)
        who = "the human"
    else:
        assert sender is not None
        if scope == "my-workers":
            ids = store.children(sender)
        elif scope == "team":
            ids = store.siblings(sender)
        else:  # all
            ids = store.ancestors(sender) + store.siblings(sender) + store.descendants(sender)
        ids = store.live_among(ids, project_id)
        who = policy.describe(store, sender)
    ids = [i for i in ids if i != sender]
    if not ids:
        meaning = {"my-workers": "no live sessions it spawned", "team": "no live fellow workers",
                   "all": "no live sessions it may reach"}[scope]
        raise errors.conflict(f"scope {scope} is empty: {who} has {meaning}"
                              + (f" in project {project_id}" if project_id else ""),
                              {"scope": scope, "sender": sender or HUMAN})
    return ids
