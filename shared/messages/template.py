"""template.*: the workflow templates a spawned agent is given (see shared/templates)."""

import attrs

from shared.messages.spec import MethodSpec, doc
from shared.messages.system import NoParams


@attrs.define
class TemplateGet:
    name: str = attrs.field(metadata=doc("template name, e.g. execute-simple or coordinate-dag"))


METHODS = [
    MethodSpec("template.list", NoParams,
               "Every workflow template: name, role, description, and whether a user file overrides it."),
    MethodSpec("template.get", TemplateGet, "One workflow template with its text."),
]
