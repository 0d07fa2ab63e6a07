"""run.*: ``maestroctl task run`` -- start, watch and stop a run that drains a project's ready tasks.

The mechanism is :class:`maestrod.scheduler.runner.Runner` (``app.runner``). Policy: starting or stopping a
run spawns and stops sessions in the project, so an agent needs ``write`` in it and must be a coordinator
(as for ``session spawn``); reading a run needs ``read`` in its project.
"""

from __future__ import annotations

from typing import Any

from maestrod import policy
from maestrod.dispatch import Context, handler
from shared import errors
from shared.messages.run import RunList, RunRef, RunStart


@handler("run.start")
async def start(ctx: Context, p: RunStart) -> dict[str, Any]:
    app = ctx.app
    pid = app.projects.resolve(p.project)
    if not ctx.is_human:
        app.project_scope.check(ctx.session_id, pid, "write", "start a task run")
        policy.check_spawn(app.session_store, ctx.session_id)
    root = None
    if p.root is not None:
        try:
            root = app.tasks.resolve(p.root)
        except errors.RpcError:
            raise errors.invalid_params([f"root: no task {p.root!r}"]) from None
        if app.tasks.get(root).project_id != pid:
            raise errors.invalid_params([f"root: task {root} belongs to another project"])
    rid = app.runner.start(p, pid, root, ctx.actor)
    return app.runner.status(rid)


def _run_id(ctx: Context, p: RunRef, action: policy.ProjectAction) -> str:
    app = ctx.app
    if p.id:
        rid = app.run_store.resolve(p.id)
    else:
        ident = p.project or app.project_scope.own_project(ctx.session_id)
        if not ident:
            raise errors.invalid_params(["id: give a run id, or project to mean its active (or latest) run"])
        pid = app.projects.resolve(ident)
        found = app.run_store.active(pid) or app.run_store.recent(pid, 1)
        if not found:
            raise errors.RpcError(errors.NOT_FOUND, f"project {pid} has no run", {"project": pid})
        rid = str(found[0]["id"])
    project = str(app.run_store.row(rid)["project_id"])
    if not ctx.is_human:
        app.project_scope.check(ctx.session_id, project, action, f"run {rid}")
        if action == "write":
            policy.check_spawn(app.session_store, ctx.session_id)
    return rid


@handler("run.status")
async def status(ctx: Context, p: RunRef) -> dict[str, Any]:
    return ctx.app.runner.status(_run_id(ctx, p, "read"))


@handler("run.stop")
async def stop(ctx: Context, p: RunRef) -> dict[str, Any]:
    rid = _run_id(ctx, p, "write")
    ctx.app.runner.stop(rid, ctx.actor)
    return ctx.app.runner.status(rid)


@handler("run.list")
async def list_(ctx: Context, p: RunList) -> list[dict[str, Any]]:
    app = ctx.app
    pid = app.projects.resolve(p.project) if p.project else app.project_scope.own_project(ctx.session_id)
    if pid is not None and not ctx.is_human:
        app.project_scope.check(ctx.session_id, pid, "read", "list runs")
    return [{"id": r["id"], "project_id": r["project_id"], "state": r["state"], "workers_max": r["workers"],
             "root_task_id": r["root_task_id"], "started_by": r["started_by"], "reason": r["reason"],
             "created_at": r["created_at"], "finished_at": r["finished_at"]}
            for r in app.run_store.recent(pid, p.limit)]
