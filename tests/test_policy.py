"""Who may act on whom: relations in the session tree and what each allows."""

from __future__ import annotations

import pytest

from maestrod import policy
from maestrod.app import App
from shared import errors
from tests.test_mail_support import (
    add_session,
    family_app,  # noqa: F401  (the `app` fixture)
)


@pytest.mark.parametrize(("actor", "target", "rel"), [
    ("s-w1", "s-w1", "self"),
    ("s-coord", "s-w1", "descendant"),
    ("s-coord", "s-w2a", "descendant"),       # a grandchild
    ("s-coord", "s-gone", "descendant"),      # exited sessions keep their place
    ("s-w1", "s-w2", "sibling"),
    ("s-w1", "s-lead", "sibling"),
    ("s-coord", "s-solo", "sibling"),         # top-level sessions of one project
    ("s-w1", "s-coord", "ancestor"),
    ("s-w2a", "s-coord", "ancestor"),
    ("s-w1", "s-w2a", "unrelated"),           # a nephew: not below it
    ("s-w2a", "s-lw1", "unrelated"),          # a cousin
    ("s-coord", "s-stranger", "unrelated"),   # top-level, but another project
    ("s-w1", "s-solo", "unrelated"),
])
def test_relation(app: App, actor: str, target: str, rel: str) -> None:
    assert policy.relation(app.session_store, actor, target) == rel


def test_tree_queries(app: App) -> None:
    store = app.session_store
    assert store.ancestors("s-w2a") == ["s-w2", "s-coord"]
    assert store.ancestors("s-coord") == []
    assert store.descendants("s-coord") == ["s-w1", "s-w2", "s-lead", "s-gone", "s-w2a", "s-lw1"]
    assert "s-gone" not in store.descendants("s-coord", live_only=True)
    assert store.siblings("s-w1") == ["s-w2", "s-lead", "s-gone"]
    assert store.siblings("s-w1", live_only=True) == ["s-w2", "s-lead"]
    assert store.siblings("s-solo") == ["s-coord"]
    assert store.children("s-w2") == ["s-w2a"]
    assert store.row("s-w2a")["parent_id"] == "s-w2" and store.row("s-coord")["parent_id"] is None


MATRIX = {
    #            self   desc   sib    anc    unrelated
    "mail":    (True, True, True, True, False),
    "prompt":  (True, True, True, False, False),
    "read":    (True, True, True, False, False),
    "stop":    (True, True, False, False, False),
    "kill":    (True, True, False, False, False),
    "spawn":   (True, True, False, False, False),
}
CASES = {"self": ("s-w2", "s-w2"), "desc": ("s-w2", "s-w2a"), "sib": ("s-w2", "s-w1"),
         "anc": ("s-w2", "s-coord"), "unrelated": ("s-w2", "s-lw1")}


@pytest.mark.parametrize("action", sorted(MATRIX))
def test_what_each_relation_allows(app: App, action: str) -> None:
    store = app.session_store
    for (label, (actor, target)), allowed in zip(CASES.items(), MATRIX[action]):
        assert policy.may_act(store, actor, target, action) is allowed, (action, label)  # type: ignore[arg-type]
        assert policy.may_act(store, None, target, action) is True  # type: ignore[arg-type]
        assert policy.may_act(store, "human", target, action) is True  # type: ignore[arg-type]


def test_agents_may_only_mail_the_human(app: App) -> None:
    assert policy.may_act(app.session_store, "s-w1", "human", "mail")
    assert not policy.may_act(app.session_store, "s-w1", "human", "prompt")


def test_stopping_outside_the_subtree_is_refused_with_a_clear_message(app: App) -> None:
    with pytest.raises(errors.RpcError) as exc:
        policy.check_act(app.session_store, "s-w1", "s-w2", "stop")
    e = exc.value
    assert e.code == errors.FORBIDDEN
    assert e.message.startswith("session s-w1 (worker-1) may not stop session s-w2 (worker-2)")
    assert "own subtree" in e.message and "s-w2 is its sibling" in e.message
    assert e.data == {"actor": "s-w1", "target": "s-w2", "action": "stop", "relation": "sibling"}
    with pytest.raises(errors.RpcError) as exc:
        policy.check_act(app.session_store, "s-w2a", "s-coord", "kill")
    assert "one of its coordinators" in exc.value.message
    with pytest.raises(errors.RpcError) as exc:
        policy.check_act(app.session_store, "s-coord", "s-stranger", "prompt")
    assert "outside its family" in exc.value.message
    policy.check_act(app.session_store, "s-coord", "s-w2a", "kill")  # its own subtree
    policy.check_act(app.session_store, None, "s-stranger", "kill")  # the human


def test_unknown_sessions(app: App) -> None:
    with pytest.raises(errors.RpcError) as exc:
        policy.check_act(app.session_store, "s-w1", "s-nope", "mail")
    assert exc.value.code == errors.NOT_FOUND
    with pytest.raises(ValueError):
        policy.may_act(app.session_store, "s-w1", "s-w1", "explode")  # type: ignore[arg-type]


def test_only_coordinators_spawn(app: App) -> None:
    policy.check_spawn(app.session_store, None)
    policy.check_spawn(app.session_store, "s-coord")
    policy.check_spawn(app.session_store, "s-coord", parent="s-lead")  # under one of its own
    with pytest.raises(errors.RpcError) as exc:
        policy.check_spawn(app.session_store, "s-w1")
    assert exc.value.code == errors.FORBIDDEN
    assert "only coordinator sessions may spawn sessions" in exc.value.message and "worker-1" in exc.value.message
    with pytest.raises(errors.RpcError) as exc:
        policy.check_spawn(app.session_store, "s-lead", parent="s-w1")  # a sibling's place
    assert exc.value.code == errors.FORBIDDEN


def test_resolve_session(app: App) -> None:
    store = app.session_store
    assert store.resolve("s-w2a") == "s-w2a"
    assert store.resolve("worker-2a") == "s-w2a"   # by name
    assert store.resolve("stra") == "s-stranger"   # by prefix, without "s-"
    assert store.resolve("s-so") == "s-solo"
    with pytest.raises(errors.RpcError) as exc:
        store.resolve("s-w")                      # s-w1, s-w2, s-w2a
    assert exc.value.code == errors.CONFLICT
    with pytest.raises(errors.RpcError) as exc:
        store.resolve("nobody")
    assert exc.value.code == errors.NOT_FOUND
    # a name reused after the first session exited means the live one
    add_session(app, "s-gone2", app.projects.resolve("proj"), name="gone", parent="s-coord")
    assert store.resolve("gone") == "s-gone2"
