"""One module per method group; importing this package registers every handler."""

from maestrod.handlers import events, project, system, task  # noqa: F401
