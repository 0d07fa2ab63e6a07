"""task.report: an agent reports on a task; the task, the timeline and its coordinator learn of it.

``maestroctl task report progress|blocked|complete|error TASK --message TEXT``:

1. the reporting session's row in ``session_tasks`` takes the new state
   (``in_progress``, ``blocked``, ``completed``, ``error``; the row is created if the
   session was not assigned to the task yet);
2. the task's status moves where due:

   * ``progress``: ``todo`` -> ``in_progress``; ``blocked`` -> ``in_progress`` once no
     assigned session is still blocked;
   * ``blocked``: -> ``blocked`` (unless completed, cancelled or archived);
   * ``complete``: -> ``completed`` once every session assigned to the task has
     completed its part;
   * ``error``: the status stays; the error is recorded;

   a move the dependency rules refuse (a dependency not completed yet) is not made,
   and the answer and the mail say why;
3. a ``task.report`` timeline row (plus ``task.status_changed`` when it moved);
4. a ``status_update`` mail to the coordinator -- the session's parent, or the human
   for a top-level session -- with priority ``high`` for ``blocked`` and ``error``.
"""

from __future__ import annotations

from typing import Any

from maestrod.dispatch import Context, handler
from maestrod.handlers.task import task_event
from maestrod.scheduler.core import RELEASED
from shared import errors
from shared.messages.report import TaskReport
from shared.messages.spec import HUMAN

#: session_tasks.status for each report.
SESSION_TASK_STATUS = {"progress": "in_progress", "blocked": "blocked", "complete": "completed",
                       "error": "error"}
FINAL = frozenset({"completed", "cancelled", "archived"})


def _parts(ctx: Context, tid: str) -> list[str]:
    """The status of every session's part of task ``tid`` (its ``session_tasks`` rows), released ones aside."""
    return [s for s in ctx.app.session_store.task_part_statuses(tid) if s != RELEASED]


def _target_status(ctx: Context, tid: str, current: str, report: str) -> str | None:
    if current in FINAL:
        return None
    if report == "progress":
        if current == "todo":
            return "in_progress"
        if current == "blocked" and "blocked" not in _parts(ctx, tid):
            return "in_progress"
        return None
    if report == "blocked":
        return "blocked"
    if report == "complete" and all(status == "completed" for status in _parts(ctx, tid)):
        return "completed"
    return None


@handler("task.report")
async def report(ctx: Context, p: TaskReport) -> dict[str, Any]:
    app = ctx.app
    if ctx.is_human:
        raise errors.forbidden("task report is sent by an agent about its own work (it needs the session's "
                               "MAESTRO_SESSION_TOKEN); a human changes a task with `maestroctl task update ID "
                               "--status STATUS`")
    sid = ctx.session_id
    assert sid is not None
    if not p.message.strip():
        raise errors.invalid_params(["message: must not be empty: say what happened"])
    mail = app.mail
    store = app.session_store
    session = store.row(sid)
    tid = app.tasks.resolve(p.task)
    task = app.tasks.get(tid)
    if task.project_id != session["project_id"]:
        raise errors.forbidden(f"task {tid} belongs to project {task.project_id}, not to this session's "
                               f"project {session['project_id']}")
    coordinator = session["parent_id"] or HUMAN
    row_status = SESSION_TASK_STATUS[p.status]
    subject = f"{p.status}: {task.title}"[:mail.config.max_subject_chars]
    change: dict[str, str] | None = None
    note: str | None = None
    mailed: dict[str, Any] | None = None
    with app.db.transaction() as c:
        store.set_task_part(c, sid, tid, row_status)
        target = _target_status(ctx, tid, task.status, p.status)
        if target is not None and target != task.status:
            try:
                old, moved = app.tasks.set_status(tid, target)
            except errors.RpcError as exc:
                if exc.code != errors.CONFLICT:
                    raise
                note = f"task status left at {task.status}: {exc.message}"
            else:
                change = {"from": old, "to": target}
                app.record(sid, "task", tid, "task.status_changed", {**change, "via": "report"},
                           event=task_event(ctx, moved, **change))
        after = app.tasks.get(tid)
        app.record(sid, "task", tid, "task.report",
                   {"session_id": sid, "status": p.status, "message": p.message,
                    "task_status": after.status, **({"note": note} if note else {})},
                   event={"actor": sid, "task_id": tid, "session_id": sid, "status": p.status,
                          "message": p.message, "task_status": after.status})
        # Mail the coordinator, unless it has exited (the report itself is recorded either way).
        if coordinator == HUMAN or store.row(coordinator)["status"] != "exited":
            moved_text = (f"task status: {change['from']} -> {change['to']}" if change
                          else f"task status: {after.status}")
            body = (f"{session['name']} ({sid}) reports {p.status} on task {tid} '{task.title}':\n\n"
                    f"{p.message}\n\n{moved_text}" + (f"\nnote: {note}" if note else ""))
            mailed = mail.send(sid, [coordinator], type_="status_update", subject=subject, body=body,
                               priority="high" if p.status in ("blocked", "error") else "normal", task_id=tid)
        else:
            note = (note + "; " if note else "") + f"coordinator {coordinator} has exited: no mail sent"
    return {"task": after, "session_id": sid, "report": p.status, "session_task_status": row_status,
            "status_change": change, "note": note,
            "mail_id": mailed["id"] if mailed else None, "mailed_to": coordinator if mailed else None}
