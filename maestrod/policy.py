"""Who may act on whom: the permission rules, over the family tree that the :class:`SessionStore` keeps.

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
delete    no    yes         no       no (exited sessions below it)
========  ====  ==========  =======  ========

The human (``actor`` None or ``"human"``) may do everything. Refusals raise
FORBIDDEN (-32003) with a message naming both sessions, their relation and the rule.
"""

from __future__ import annotations

from typing import Literal

from maestrod.sessions.store import SessionStore
from shared import errors
from shared.messages.spec import HUMAN

Relation = Literal["self", "descendant", "sibling", "ancestor", "unrelated"]
Action = Literal["mail", "prompt", "read", "stop", "kill", "spawn", "delete"]

ALLOWED: dict[str, frozenset[str]] = {
    "mail": frozenset({"self", "descendant", "sibling", "ancestor"}),
    "prompt": frozenset({"self", "descendant", "sibling"}),
    "read": frozenset({"self", "descendant", "sibling"}),
    "stop": frozenset({"self", "descendant"}),
    "kill": frozenset({"self", "descendant"}),
    "spawn": frozenset({"self", "descendant"}),
    # Only exited sessions are deleted, so never the acting one itself.
    "delete": frozenset({"descendant"}),
}

_VERBS = {"mail": "mail", "prompt": "prompt", "read": "read", "stop": "stop", "kill": "kill",
          "spawn": "spawn sessions under", "delete": "delete"}
_RULES = {
    "mail": "a session may mail itself, its descendants, its siblings and its coordinators",
    "prompt": "a session may prompt only itself, its descendants and its siblings",
    "read": "a session may read only itself, its descendants and its siblings",
    "stop": "a session may stop only itself and the sessions below it (its own subtree)",
    "kill": "a session may kill only itself and the sessions below it (its own subtree)",
    "spawn": "a session may place new sessions only under itself or its descendants",
    "delete": "a session may delete only the sessions below it (its own subtree)",
}


def is_human(actor: str | None) -> bool:
    return actor is None or actor == HUMAN


def describe(store: SessionStore, sid: str | None) -> str:
    """``session s-4f2a9c (worker-3)``, or ``the human``."""
    return "the human" if is_human(sid) else store.describe(sid)


def relation(store: SessionStore, actor: str, target: str) -> Relation:
    """How ``target`` is related to the acting session ``actor`` (both must exist)."""
    if actor == target:
        store.row(actor)
        return "self"
    a = store.row(actor)
    t = store.row(target)
    if a["parent_id"] == t["parent_id"] and (a["parent_id"] is not None or a["project_id"] == t["project_id"]):
        return "sibling"
    if actor in store.ancestors(target):
        return "descendant"
    if target in store.ancestors(actor):
        return "ancestor"
    return "unrelated"


def may_act(store: SessionStore, actor: str | None, target: str, action: Action) -> bool:
    """True if ``actor`` (a session id; None or "human" for the human) may ``action`` ``target``."""
    if action not in ALLOWED:
        raise ValueError(f"unknown action {action!r}")
    if is_human(actor):
        return True
    if target == HUMAN:
        return action == "mail"
    assert actor is not None
    return relation(store, actor, target) in ALLOWED[action]


def check_act(store: SessionStore, actor: str | None, target: str, action: Action) -> None:
    """Raise FORBIDDEN unless ``actor`` may ``action`` ``target``."""
    if may_act(store, actor, target, action):
        return
    assert actor is not None
    rel = "the human" if target == HUMAN else relation(store, actor, target)
    what = {"sibling": "its sibling", "ancestor": "one of its coordinators", "unrelated":
            "outside its family (not itself, a descendant, a sibling or a coordinator)"}.get(rel, rel)
    raise errors.RpcError(
        errors.FORBIDDEN,
        f"{describe(store, actor)} may not {_VERBS[action]} {describe(store, target)}: {_RULES[action]}; "
        f"{target} is {what}",
        {"actor": actor, "target": target, "action": action, "relation": rel})


def check_spawn(store: SessionStore, actor: str | None, parent: str | None = None) -> None:
    """Only coordinator sessions spawn (a human may spawn anything); an explicit ``parent``
    must be the spawner itself or one of its descendants."""
    if is_human(actor):
        return
    assert actor is not None
    row = store.row(actor)
    if row["role"] != "coordinator":
        raise errors.RpcError(
            errors.FORBIDDEN,
            f"{describe(store, actor)} is a {row['role']}: only coordinator sessions may spawn sessions "
            "(spawn it with --role coordinator, or ask your coordinator with `maestroctl mail send "
            "--to-coordinator`)", {"actor": actor, "role": row["role"]})
    if parent is not None and parent != actor:
        check_act(store, actor, parent, "spawn")
