"""One module per method group; importing this package registers every handler."""

from maestrod.handlers import events, project, system, task  # noqa: F401
from maestrod.handlers import mail, report, template  # noqa: F401
from maestrod.handlers import hook, session  # noqa: F401
from maestrod.handlers import digest  # noqa: F401
from maestrod.handlers import worktree  # noqa: F401
from maestrod.handlers import web  # noqa: F401
from maestrod.handlers import daemon  # noqa: F401
from maestrod.handlers import run  # noqa: F401
