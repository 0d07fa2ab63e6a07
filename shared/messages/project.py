from typing import Optional

import attrs

from shared.messages.paging import cursor_field, limit_field
from shared.messages.spec import MethodSpec, doc


@attrs.define
class Project:
    id: str
    name: str
    dir: str
    description: str
    created_at: str
    updated_at: str


@attrs.define
class ProjectCreate:
    name: str = attrs.field(metadata=doc("unique name"))
    dir: str = attrs.field(metadata=doc("working directory; must exist"))
    description: str = ""


@attrs.define
class ProjectRef:
    id: str = attrs.field(metadata=doc("project id, unique id prefix, or name"))


@attrs.define
class ProjectUpdate:
    id: str = attrs.field(metadata=doc("project id, unique id prefix, or name"))
    name: Optional[str] = None
    dir: Optional[str] = None
    description: Optional[str] = None


@attrs.define
class ProjectList:
    limit: Optional[int] = limit_field()
    cursor: Optional[str] = cursor_field()


@attrs.define
class ProjectDelete:
    id: str = attrs.field(metadata=doc("project id, unique id prefix, or name"))
    cascade: bool = attrs.field(default=False, metadata=doc("also delete its tasks and exited sessions"))


METHODS = [
    MethodSpec("project.create", ProjectCreate, "Create a project."),
    MethodSpec("project.list", ProjectList, "List projects (by name)."),
    MethodSpec("project.get", ProjectRef, "Get one project."),
    MethodSpec("project.update", ProjectUpdate, "Change a project's name, directory or description."),
    MethodSpec("project.delete", ProjectDelete, "Delete a project (refused while it has live sessions, or tasks or sessions unless cascade)."),
]
