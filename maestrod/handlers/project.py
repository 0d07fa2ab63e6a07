"""project.*"""

from __future__ import annotations

import os
from typing import Any

from maestrod.dispatch import Context, handler
from shared import errors
from shared.convert import unstructure
from shared.messages.project import Project, ProjectCreate, ProjectDelete, ProjectRef, ProjectUpdate


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
    with app.db.transaction():
        proj = app.projects.create(p.name, d, p.description)
        app.record(ctx.actor, "project", proj.id, "project.created", {"name": proj.name, "dir": proj.dir},
                   event={"actor": ctx.actor, "project": unstructure(proj)})
    return proj


@handler("project.list")
async def list_(ctx: Context, p: Any) -> list[Project]:
    return ctx.app.projects.list()


@handler("project.get")
async def get(ctx: Context, p: ProjectRef) -> Project:
    return ctx.app.projects.get(ctx.app.projects.resolve(p.id))


@handler("project.update")
async def update(ctx: Context, p: ProjectUpdate) -> Project:
    app = ctx.app
    pid = app.projects.resolve(p.id)
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
    app = ctx.app
    pid = app.projects.resolve(p.id)
    with app.db.transaction():
        n = app.projects.task_count(pid)
        if n and not p.cascade:
            raise errors.conflict(f"project {pid} still has {n} task(s); delete them first or pass cascade",
                                  {"tasks": n})
        if n:
            ids = [r[0] for r in app.db.conn.execute(
                "WITH RECURSIVE d(id, depth) AS (SELECT id, 0 FROM tasks WHERE project_id=? AND parent_id IS NULL "
                "UNION ALL SELECT t.id, d.depth+1 FROM tasks t JOIN d ON t.parent_id=d.id) "
                "SELECT id FROM d ORDER BY depth DESC", (pid,))]
            app.tasks.delete(ids)
        app.projects.delete(pid)
        app.record(ctx.actor, "project", pid, "project.deleted", {"tasks_deleted": n})
    return {"deleted": pid, "tasks_deleted": n}
