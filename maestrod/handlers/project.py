"""project.*"""

from __future__ import annotations

import os
from typing import Any

from maestrod import paging
from maestrod.dispatch import Context, handler
from shared import errors
from shared.convert import unstructure
from shared.messages.project import Project, ProjectCreate, ProjectDelete, ProjectList, ProjectRef, ProjectUpdate


def _check_dir(d: str) -> str:
    if not os.path.isabs(d):
        raise errors.invalid_params([f"dir: must be an absolute path, got {d!r}"])
    if not os.path.isdir(d):
        raise errors.invalid_params([f"dir: no such directory: {d}"])
    return os.path.normpath(d)


@handler("project.create")
async def create(ctx: Context, p: ProjectCreate) -> Project:
    d = _check_dir(p.dir)
    app = ctx.app
    app.project_scope.check(ctx.session_id, None, "write", f"create project {p.name!r}")
    with app.db.transaction():
        proj = app.projects.create(p.name, d, p.description)
        app.record(ctx.actor, "project", proj.id, "project.created", {"name": proj.name, "dir": proj.dir},
                   event={"actor": ctx.actor, "project": unstructure(proj)})
    return proj


@handler("project.list")
async def list_(ctx: Context, p: ProjectList) -> list[Project] | dict[str, Any]:
    scope = ctx.app.project_scope
    # An agent sees the projects it may read (its own, and those `[policy]` grants).
    found = [proj for proj in ctx.app.projects.list() if scope.may(ctx.session_id, proj.id, "read")]
    if paging.paged(p.limit, p.cursor):  # names are unique: the name is the key
        return paging.slice_page("project.list", found, lambda q: (q.name,), p.cursor, p.limit, (str,))
    return found


@handler("project.get")
async def get(ctx: Context, p: ProjectRef) -> Project:
    pid = ctx.app.projects.resolve(p.id)
    ctx.app.project_scope.check(ctx.session_id, pid, "read", "read the project")
    return ctx.app.projects.get(pid)


@handler("project.update")
async def update(ctx: Context, p: ProjectUpdate) -> Project:
    app = ctx.app
    pid = app.projects.resolve(p.id)
    app.project_scope.check(ctx.session_id, pid, "write", "update the project")
    changes: dict[str, Any] = {}
    if p.name is not None:
        if not p.name.strip():
            raise errors.invalid_params(["name: must not be empty"])
        changes["name"] = p.name
    if p.dir is not None:
        changes["dir"] = _check_dir(p.dir)
    if p.description is not None:
        changes["description"] = p.description
    with app.db.transaction():
        proj = app.projects.update(pid, changes)
        app.record(ctx.actor, "project", pid, "project.updated", {"changes": changes})
    return proj


@handler("project.delete")
async def delete(ctx: Context, p: ProjectDelete) -> dict[str, Any]:
    """Refused while sessions of the project run (even with cascade: stop them first); its tasks and
    exited sessions go only with cascade.  Sessions first (their rows point at the project and their
    children at them), then tasks deepest first, then the project: SQLite's foreign keys accept that order."""
    app = ctx.app
    pid = app.projects.resolve(p.id)
    app.project_scope.check(ctx.session_id, pid, "write", "delete the project")
    store = app.session_store
    with app.db.transaction() as c:
        sessions = store.select(project_id=pid)
        live = [r for r in sessions if r["status"] != "exited"]
        if live:
            listed = ", ".join(f"{r['id']} ({r['name']}, {r['status']})" for r in live)
            raise errors.conflict(
                f"project {pid} has {len(live)} live session(s): {listed}; stop them first "
                "(`maestroctl session stop ID`), then delete the project",
                {"live_sessions": [{"id": r["id"], "name": r["name"], "status": r["status"]} for r in live]})
        n = app.projects.task_count(pid)
        if (n or sessions) and not p.cascade:
            raise errors.conflict(
                f"project {pid} still has {n} task(s) and {len(sessions)} exited session(s); delete them "
                "first or pass cascade", {"tasks": n, "sessions": len(sessions)})
        session_ids = [r["id"] for r in sessions]
        if session_ids:
            store.delete(c, session_ids)
        if n:
            app.tasks.delete(app.projects.task_ids_deepest_first(pid))
        app.projects.delete(pid)
        app.record(ctx.actor, "project", pid, "project.deleted",
                   {"tasks_deleted": n, "sessions_deleted": len(session_ids), "sessions": session_ids})
    for sid in session_ids:
        app.sessions.forget(sid)
    return {"deleted": pid, "tasks_deleted": n, "sessions_deleted": len(session_ids)}
