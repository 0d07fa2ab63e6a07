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

from collections.abc import Sequence
from typing import Literal, Protocol

from maestrod.sessions.store import SessionStore
from maestrod.store.projects import ProjectStore
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


# -- projects ------------------------------------------------------------------------------------------
#
# An agent acts within its own project (the project of its session) unless ``[policy]`` grants more:
#
# * ``read``  -- project.get/list, task.get/list/ready/children/history, another session's mailbox;
# * ``write`` -- task.create/update/delete, project.update/delete, sessions spawned into the project (and
#   project.create, which is a write outside the agent's project: it needs ``write`` on ``"*"``);
# * ``mail``  -- mail to (and broadcasts reaching) sessions of the project.
#
# The human acts on every project. See docs/security.md for the ``[policy]`` section.

ProjectAction = Literal["read", "write", "mail"]
ANY_PROJECT = "*"


class ProjectPolicy(Protocol):
    """What the rules read of the ``[policy]`` configuration (maestrod.config.PolicyConfig)."""

    @property
    def cross_project(self) -> Sequence[str]: ...

    @property
    def grants(self) -> Sequence[ProjectGrant]: ...


class ProjectGrant(Protocol):
    @property
    def agents_of(self) -> str: ...

    @property
    def projects(self) -> Sequence[str]: ...

    @property
    def allow(self) -> Sequence[str]: ...


def may_in_project(config: ProjectPolicy, own: tuple[str, str], target: tuple[str, str] | None,
                   action: ProjectAction) -> bool:
    """True if an agent of project ``own`` (id, name) may ``action`` in project ``target`` (id, name; None:
    a project that does not exist yet, which only a grant on ``"*"`` covers)."""
    if target is not None and target[0] == own[0]:
        return True
    if action in config.cross_project:
        return True
    for grant in config.grants:
        if grant.agents_of not in own or action not in grant.allow:
            continue
        if ANY_PROJECT in grant.projects or (target is not None and any(p in target for p in grant.projects)):
            return True
    return False


class ProjectScope:
    """The project rule applied to requests: who is acting (a session or the human) and where."""

    def __init__(self, config: ProjectPolicy, store: SessionStore, projects: ProjectStore) -> None:
        self.config = config
        self.store = store
        self.projects = projects

    def project_of(self, actor: str) -> str:
        return str(self.store.row(actor)["project_id"])

    def _named(self, pid: str) -> tuple[str, str]:
        return pid, self.projects.get(pid).name

    def may(self, actor: str | None, project_id: str | None, action: ProjectAction) -> bool:
        if is_human(actor):
            return True
        assert actor is not None
        own = self._named(self.project_of(actor))
        return may_in_project(self.config, own, self._named(project_id) if project_id else None, action)

    def check(self, actor: str | None, project_id: str | None, action: ProjectAction, what: str) -> None:
        """Raise FORBIDDEN unless ``actor`` may ``action`` in ``project_id`` (None: a new project); ``what``
        names the object (``task t-12``) for the message."""
        if self.may(actor, project_id, action):
            return
        assert actor is not None
        own_id, own_name = self._named(self.project_of(actor))
        where = "a new project" if project_id is None else "project {} ({})".format(*self._named(project_id))
        raise errors.RpcError(
            errors.FORBIDDEN,
            f"{describe(self.store, actor)} of project {own_id} ({own_name}) may not {action} {what} in {where}: "
            f"an agent acts only within its own project unless the config grants more ([policy] "
            f"cross_project = [\"{action}\"], or a [[policy.grants]] entry for agents_of = \"{own_name}\")",
            {"actor": actor, "actor_project": own_id, "project": project_id, "action": action})

    def own_project(self, actor: str | None) -> str | None:
        """The project an agent's unscoped listings default to (None for the human: every project)."""
        return None if is_human(actor) else self.project_of(actor)  # type: ignore[arg-type]
