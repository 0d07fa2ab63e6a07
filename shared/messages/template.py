"""template.*: the workflow templates a spawned agent is given (see shared/templates)."""

from typing import Optional

import attrs

from shared.messages.paging import cursor_field, limit_field
from shared.messages.spec import MethodSpec, doc


@attrs.define
class TemplateGet:
    name: str = attrs.field(metadata=doc("template name, e.g. execute-simple or coordinate-dag"))


@attrs.define
class TemplateList:
    limit: Optional[int] = limit_field()
    cursor: Optional[str] = cursor_field()


METHODS = [
    MethodSpec("template.list", TemplateList,
               "Every workflow template: name, role, description, and whether a user file overrides it."),
    MethodSpec("template.get", TemplateGet, "One workflow template with its text."),
]
