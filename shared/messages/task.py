from typing import Literal, Optional

import attrs

from shared.messages.paging import cursor_field, limit_field
from shared.messages.spec import MethodSpec, between, doc

Status = Literal["todo", "in_progress", "in_review", "completed", "blocked", "cancelled", "archived"]
Priority = Literal["low", "medium", "high", "critical"]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
PRIORITIES: tuple[str, ...] = Priority.__args__  # type: ignore[attr-defined]


@attrs.define
class Task:
    id: str
    project_id: str
    title: str
    description: str
    status: str
    priority: str
    parent_id: Optional[str]
    depends_on: list[str]
    created_at: str
    updated_at: str
    started_at: Optional[str]
    completed_at: Optional[str]
    children: Optional[list["Task"]] = None


attrs.resolve_types(Task)


@attrs.define
class TaskCreate:
    project: str = attrs.field(metadata=doc("project id, prefix or name"))
    title: str = attrs.field()
    description: str = ""
    priority: Priority = "medium"
    status: Status = "todo"
    parent: Optional[str] = attrs.field(default=None, metadata=doc("parent task id or prefix"))
    depends_on: list[str] = attrs.field(factory=list, metadata=doc("task ids this task waits for"))

    @title.validator
    def _title(self, _a: object, v: str) -> None:
        if not v.strip():
            raise ValueError("title: must not be empty")


@attrs.define
class TaskList:
    project: Optional[str] = None
    status: Optional[list[Status]] = attrs.field(default=None, metadata=doc("any of these statuses"))
    priority: Optional[list[Priority]] = None
    parent: Optional[str] = attrs.field(default=None, metadata=doc('parent task id, or "" for roots only'))
    tree: bool = attrs.field(default=False, metadata=doc("nest children under their parents"))
    limit: Optional[int] = limit_field()
    cursor: Optional[str] = cursor_field()


@attrs.define
class TaskRef:
    id: str = attrs.field(metadata=doc("task id or unique prefix"))


@attrs.define
class TaskUpdate:
    id: str
    title: Optional[str] = None
    description: Optional[str] = None
    status: Optional[Status] = None
    priority: Optional[Priority] = None
    parent: Optional[str] = attrs.field(default=None, metadata=doc('new parent id; "" makes it a root'))
    add_depends_on: list[str] = attrs.field(factory=list)
    remove_depends_on: list[str] = attrs.field(factory=list)


@attrs.define
class TaskDelete:
    id: str
    cascade: bool = attrs.field(default=False, metadata=doc("also delete its descendants"))


@attrs.define
class TaskChildren:
    id: str
    recursive: bool = False
    limit: Optional[int] = limit_field()
    cursor: Optional[str] = cursor_field()


@attrs.define
class TaskReady:
    project: Optional[str] = None
    limit: Optional[int] = limit_field()
    cursor: Optional[str] = cursor_field()


@attrs.define
class TaskHistory:
    id: str
    limit: Optional[int] = attrs.field(
        default=None, validator=attrs.validators.optional(between(1, 10_000)),
        metadata=doc("page size (1..10000): one page {total, next_cursor, items}, newest first; "
                     "without limit and cursor: the latest 200 rows, oldest first"))
    cursor: Optional[str] = cursor_field()


METHODS = [
    MethodSpec("task.create", TaskCreate, "Create a task (optionally under a parent, with dependencies)."),
    MethodSpec("task.list", TaskList, "List tasks, filtered by project, status, priority, parent; or as a tree."),
    MethodSpec("task.get", TaskRef, "Get one task."),
    MethodSpec("task.update", TaskUpdate,
               "Change a task; entering in_progress/completed requires every dependency completed."),
    MethodSpec("task.delete", TaskDelete, "Delete a task (refused while it has children unless cascade)."),
    MethodSpec("task.children", TaskChildren, "A task's children (or all descendants with recursive)."),
    MethodSpec("task.ready", TaskReady, "Tasks still todo whose dependencies are all completed."),
    MethodSpec("task.history", TaskHistory, "The audit timeline of a task: who changed what, when."),
]
