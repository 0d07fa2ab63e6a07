"""web.*: the WebSocket feed and dashboard on 127.0.0.1 (docs/web.md)."""

from shared.messages.spec import MethodSpec
from shared.messages.system import NoParams

METHODS = [
    MethodSpec("web.info", NoParams,
               "The web feed's port, URLs and token (the person only; agents are refused). "
               "enabled is false when it is off (--no-web, [web] enabled = false, or its port was taken)."),
]
