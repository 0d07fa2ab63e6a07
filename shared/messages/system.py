import attrs

from shared.messages.spec import MethodSpec, doc


@attrs.define
class NoParams:
    pass


@attrs.define
class MethodsParams:
    prefix: str = attrs.field(default="", metadata=doc("only methods whose name starts with this"))


@attrs.define
class AuthParams:
    token: str = attrs.field(metadata=doc("the MAESTRO_SESSION_TOKEN given to a spawned agent"))


METHODS = [
    MethodSpec("system.ping", NoParams, "Liveness check; answers \"pong\"."),
    MethodSpec("system.version", NoParams, "Daemon version and protocol version."),
    MethodSpec("system.methods", MethodsParams, "Every method with a one-line description and its params."),
    MethodSpec("system.whoami", NoParams, "Who this connection acts as: human or a session."),
    MethodSpec("system.auth", AuthParams,
               "Bind this connection to a session by its token (usually sent as a notification)."),
]
