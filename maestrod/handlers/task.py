"""task.*: hierarchy, dependencies (enforced), status times, audit history."""

from __future__ import annotations

from typing import Any

import orjson

from maestrod import paging
from maestrod.dispatch import Context, handler
from maestrod.policy import ProjectAction
from maestrod.store.tasks import PAGE_KEY
from shared import errors
from shared.convert import unstructure
from shared.messages.task import (Task, TaskChildren, TaskCreate, TaskDelete, TaskHistory, TaskList, TaskReady,
                                  TaskRef, TaskUpdate)


def task_event(ctx: Context, task: Task, **extra: Any) -> dict[str, Any]:
    """The data of a task.* event: the actor and the task as a plain dict (no nested children)."""
    data = unstructure(task)
    data.pop("children", None)
    return {"actor": ctx.actor, "task": data, **extra}


def _check_task(ctx: Context, tid: str, action: ProjectAction) -> None:
    """An agent acts on the tasks of its own project unless ``[policy]`` grants more."""
    if not ctx.is_human:
        ctx.app.project_scope.check(ctx.session_id, ctx.app.tasks.get(tid).project_id, action, f"task {tid}")


def _listed_project(ctx: Context, ident: str | None) -> str | None:
    """The project a listing covers: the one named (readable by the caller), else every project for the
    human and its own project for an agent."""
    if not ident:
        return ctx.app.project_scope.own_project(ctx.session_id)
    pid = ctx.app.projects.resolve(ident)
    ctx.app.project_scope.check(ctx.session_id, pid, "read", "list tasks")
    return pid


@handler("task.create")
async def create(ctx: Context, p: TaskCreate) -> Task:
    app = ctx.app
    pid = app.projects.resolve(p.project)
    app.project_scope.check(ctx.session_id, pid, "write", "create a task")
    parent = app.tasks.resolve(p.parent) if p.parent else None
    deps = [app.tasks.resolve(d) for d in p.depends_on]
    with app.db.transaction():
        task = app.tasks.create(pid, p.title, p.description, p.priority, p.status, parent, deps)
        app.record(ctx.actor, "task", task.id, "task.created",
                   {"title": task.title, "status": task.status, "parent_id": parent, "depends_on": deps},
                   event=task_event(ctx, task))
    return task


@handler("task.list")
async def list_(ctx: Context, p: TaskList) -> list[Task] | dict[str, Any] | orjson.Fragment:
    app = ctx.app
    pid = _listed_project(ctx, p.project)
    roots_only = p.parent == ""
    parent = app.tasks.resolve(p.parent) if p.parent else None
    if paging.paged(p.limit, p.cursor):
        if p.tree:  # a keyset cannot cut a tree without splitting a subtree across pages
            raise errors.invalid_params(["tree: a tree comes whole; leave out limit and cursor"])
        page = paging.Page("task.list", p.cursor, p.limit, PAGE_KEY)
        return page.answer(app.tasks.list(pid, p.status, p.priority, parent, roots_only=roots_only, page=page))
    if not p.tree:  # the whole list as it is read, already encoded (the biggest answers there are)
        return app.tasks.list_encoded(pid, p.status, p.priority, parent, roots_only=roots_only)
    return app.tasks.as_tree(app.tasks.list(pid, p.status, p.priority, parent))


@handler("task.get")
async def get(ctx: Context, p: TaskRef) -> Task:
    task = ctx.app.tasks.find(p.id)
    ctx.app.project_scope.check(ctx.session_id, task.project_id, "read", f"task {task.id}")
    return task


@handler("task.update")
async def update(ctx: Context, p: TaskUpdate) -> Task:
    app = ctx.app
    tid = app.tasks.resolve(p.id)
    _check_task(ctx, tid, "write")
    fields: dict[str, Any] = {}
    if p.title is not None:
        if not p.title.strip():
            raise errors.invalid_params(["title: must not be empty"])
        fields["title"] = p.title
    if p.description is not None:
        fields["description"] = p.description
    if p.priority is not None:
        fields["priority"] = p.priority
    if p.parent is not None:
        fields["parent_id"] = app.tasks.resolve(p.parent) if p.parent else None
        if fields["parent_id"] == tid:
            raise errors.conflict(f"task {tid} cannot be its own parent")
    add = [app.tasks.resolve(d) for d in p.add_depends_on]
    remove = [app.tasks.resolve(d) for d in p.remove_depends_on]
    with app.db.transaction():
        before = app.tasks.get(tid)
        if fields:
            app.tasks.update_fields(tid, fields)
            app.record(ctx.actor, "task", tid, "task.updated",
                       {"changes": fields}, event=task_event(ctx, app.tasks.get(tid), changes=fields))
        if add or remove:
            app.tasks.change_deps(tid, add, remove)
            app.record(ctx.actor, "task", tid, "task.deps_changed", {"added": add, "removed": remove},
                       event=task_event(ctx, app.tasks.get(tid), added=add, removed=remove))
        if p.status is not None and p.status != before.status:
            old, task = app.tasks.set_status(tid, p.status)
            app.record(ctx.actor, "task", tid, "task.status_changed", {"from": old, "to": p.status},
                       event=task_event(ctx, task, **{"from": old, "to": p.status}))
    return app.tasks.get(tid)


@handler("task.delete")
async def delete(ctx: Context, p: TaskDelete) -> dict[str, Any]:
    app = ctx.app
    tid = app.tasks.resolve(p.id)
    _check_task(ctx, tid, "write")
    with app.db.transaction():
        descendants = app.tasks.descendants(tid)
        if descendants and not p.cascade:
            raise errors.conflict(
                f"task {tid} has {len(descendants)} descendant task(s); pass cascade to delete them too",
                {"children": [t.id for t in descendants]})
        doomed = [t.id for t in reversed(descendants)] + [tid]
        # Tasks that depended on a deleted task lose that dependency; say so in their history.
        affected: dict[str, list[str]] = {}
        for d in doomed:
            for dependent in app.tasks.dependents(d):
                if dependent not in doomed:
                    affected.setdefault(dependent, []).append(d)
        app.tasks.delete(doomed)
        for d in doomed:
            app.record(ctx.actor, "task", d, "task.deleted", {"cascade_from": tid if d != tid else None})
        for dependent, lost in affected.items():
            app.record(ctx.actor, "task", dependent, "task.deps_changed",
                       {"added": [], "removed": lost, "reason": "dependency deleted"})
    return {"deleted": doomed}


@handler("task.children")
async def children(ctx: Context, p: TaskChildren) -> list[Task] | dict[str, Any]:
    app = ctx.app
    tid = app.tasks.resolve(p.id)
    _check_task(ctx, tid, "read")
    found = app.tasks.descendants(tid) if p.recursive else app.tasks.children(tid)
    if paging.paged(p.limit, p.cursor):
        # A task's subtree is short next to a project: paged over the list, in its order
        # (depth, created_at, rowid).
        depth = {tid: 0}
        for t in found:  # shallowest first: a parent's depth is known before its children's
            depth[t.id] = depth.get(t.parent_id or "", 0) + 1
        rowid = app.tasks.rowids([t.id for t in found])
        return paging.slice_page("task.children", found, lambda t: (depth[t.id], t.created_at, rowid[t.id]),
                                 p.cursor, p.limit, (int, str, int))
    return found


@handler("task.ready")
async def ready(ctx: Context, p: TaskReady) -> list[Task] | dict[str, Any] | orjson.Fragment:
    app = ctx.app
    pid = _listed_project(ctx, p.project)
    if paging.paged(p.limit, p.cursor):
        page = paging.Page("task.ready", p.cursor, p.limit, PAGE_KEY)
        return page.answer(app.tasks.ready(pid, page=page))
    return app.tasks.ready_encoded(pid)


@handler("task.history")
async def history(ctx: Context, p: TaskHistory) -> list[dict[str, Any]] | dict[str, Any]:
    app = ctx.app
    # Deleted tasks keep their history: accept a full id that no longer resolves.
    try:
        tid = app.tasks.resolve(p.id)
    except errors.RpcError:
        if not app.timeline.for_subject("task", p.id, 1):
            raise
        tid = p.id
    else:
        _check_task(ctx, tid, "read")
    if paging.paged(p.limit, p.cursor):
        page = paging.Page("task.history", p.cursor, p.limit, (int,))
        return page.answer(app.timeline.page_for_subject("task", tid, page))
    return app.timeline.for_subject("task", tid, 200)
