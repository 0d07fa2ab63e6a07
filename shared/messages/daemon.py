"""daemon.*: restart in place (graceful handoff, upgrade), reload the config, stop (docs/restart.md)."""

from shared.messages.spec import MethodSpec
from shared.messages.system import NoParams

METHODS = [
    MethodSpec("daemon.restart", NoParams,
               "Re-execute the installed maestrod in place (same pid), handing over every live session, the "
               "socket and the in-memory state; agents notice nothing. The installed code checks the state "
               "first: refused (-32002, the reason) if it fails, and this daemon keeps serving. Answered "
               "before the handoff; the person only."),
    MethodSpec("daemon.reload", NoParams,
               "Read config.toml again and apply it without touching any agent; answers what changed, what "
               "applies to new sessions only, and what needs `daemon restart`. The person only."),
    MethodSpec("daemon.stop", NoParams,
               "Stop the daemon after answering: its agents are stopped gracefully (SIGHUP, SIGTERM, SIGKILL). "
               "The person only."),
]
