"""task.report: an agent reports on a task it works on (registered with the task group)."""

from typing import Literal

import attrs

from shared.messages.spec import MethodSpec, doc

ReportStatus = Literal["progress", "blocked", "complete", "error"]
REPORT_STATUSES: tuple[str, ...] = ReportStatus.__args__  # type: ignore[attr-defined]


@attrs.define
class TaskReport:
    task: str = attrs.field(metadata=doc("task id or unique prefix"))
    status: ReportStatus = attrs.field(metadata=doc(
        "progress: working on it; blocked: cannot go on; complete: my part is done; error: something failed"))
    message: str = attrs.field(metadata=doc("what happened, for the coordinator and the task's history"))


METHODS = [
    MethodSpec("task.report", TaskReport,
               "From an agent: record its progress/blocked/complete/error on a task, move the task's status "
               "where due, and mail its coordinator a status_update."),
]
