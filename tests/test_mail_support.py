"""Helpers for the mail, policy, report and template tests: sessions inserted straight into the
store, and method calls made as a given session through the real dispatcher.

A test module gets the ``app`` fixture (an app holding :func:`family`) by importing
:func:`family_app`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maestrod import dispatch
from maestrod.app import App
from maestrod.store.db import utcnow
from shared.jsonrpc import Request
from tests.conftest import add_project, insert_session  # noqa: F401  (add_project: re-exported)

_ids = itertools.count(1)


def make_app(tmp: Path) -> App:
    import maestrod.handlers  # noqa: F401  (registers every handler)

    return App(tmp / "data", tmp / "d.sock")


def add_session(app: App, sid: str, project_id: str, *, name: str | None = None, role: str = "worker",
                parent: str | None = None, status: str = "working") -> str:
    return insert_session(app, sid, project_id, name=name, role=role, parent=parent, status=status)


def assign(app: App, sid: str, tid: str) -> None:
    with app.db.transaction() as c:
        c.execute("INSERT INTO session_tasks(session_id, task_id, status, updated_at) VALUES (?,?,?,?)",
                  (sid, tid, "assigned", utcnow()))


class CallError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error['code']}: {error['message']}")
        self.code = error["code"]
        self.message = error["message"]
        self.data = error.get("data")


async def call(app: App, actor: str | None, method: str, params: dict[str, Any] | None = None) -> Any:
    """Call ``method`` as session ``actor`` (None: the human) through the real dispatcher."""
    ctx = dispatch.Context(app, None, actor)
    resp = await dispatch.call(ctx, Request(method=method, params=params or {}, id=next(_ids)))
    assert resp is not None
    if "error" in resp:
        raise CallError(resp["error"])
    return resp["result"]


async def call_err(app: App, actor: str | None, method: str, params: dict[str, Any] | None = None) -> CallError:
    try:
        result = await call(app, actor, method, params)
    except CallError as exc:
        return exc
    raise AssertionError(f"{method} succeeded but should have failed: {result!r}")


def family(app: App) -> dict[str, str]:
    """A small organisation in project ``proj``::

        coord (coordinator)          solo (top-level worker)      other project:
        ├─ w1                                                      stranger
        ├─ w2
        │  └─ w2a
        ├─ lead (coordinator)
        │  └─ lw1
        └─ gone (exited)
    """
    pid = add_project(app)
    other = add_project(app, "other")
    add_session(app, "s-coord", pid, name="coord", role="coordinator")
    add_session(app, "s-w1", pid, name="worker-1", parent="s-coord")
    add_session(app, "s-w2", pid, name="worker-2", parent="s-coord")
    add_session(app, "s-w2a", pid, name="worker-2a", parent="s-w2")
    add_session(app, "s-lead", pid, name="lead", role="coordinator", parent="s-coord")
    add_session(app, "s-lw1", pid, name="lead-worker-1", parent="s-lead")
    add_session(app, "s-gone", pid, name="gone", parent="s-coord", status="exited")
    add_session(app, "s-solo", pid, name="solo")
    add_session(app, "s-stranger", other, name="stranger")
    return {"project": pid, "other": other}


@pytest.fixture(name="app")
def family_app(tmp_path: Path) -> Iterator[App]:
    """An app holding :func:`family` (fixture ``app``)."""
    a = make_app(tmp_path)
    family(a)
    yield a
    a.close()
