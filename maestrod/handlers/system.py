"""system.*: liveness, versions, the method catalogue, connection identity."""

from __future__ import annotations

import os
import time
from typing import Any


import shared
from maestrod.dispatch import HANDLERS, Context, handler
from shared import errors
from shared.convert import field_specs
from shared.messages.system import AuthParams, MethodsParams, NoParams
from shared.methods import CATALOGUE


@handler("system.ping")
async def ping(ctx: Context, p: NoParams) -> str:
    return "pong"


@handler("system.version")
async def version(ctx: Context, p: NoParams) -> dict[str, Any]:
    return {"daemon": shared.__version__, "protocol": shared.PROTOCOL_VERSION, "pid": os.getpid(),
            "socket": str(ctx.app.socket_path), "data_dir": str(ctx.app.data_dir),
            "schema": ctx.app.db.schema_version,
            # The dashboard's address (never its token: `maestroctl web url` gives that to the person).
            "web": ctx.app.web.url if ctx.app.web is not None else None,
            "uptime_s": round(time.monotonic() - ctx.app.started_at, 3), "notify": ctx.app.notifier.stats(),
            "connections": ctx.app.connections.stats()}


@handler("system.methods")
async def methods(ctx: Context, p: MethodsParams) -> list[dict[str, Any]]:
    return [{"name": spec.name, "description": spec.description, "params": field_specs(spec.params)}
            for name, spec in sorted(CATALOGUE.items())
            if name.startswith(p.prefix) and name in HANDLERS]


@handler("system.whoami")
async def whoami(ctx: Context, p: NoParams) -> dict[str, Any]:
    return {"actor": ctx.actor, "session_id": ctx.session_id,
            "peer_pid": ctx.conn.peer_pid if ctx.conn else None}


@handler("system.auth")
async def auth(ctx: Context, p: AuthParams) -> dict[str, Any]:
    conn = ctx.conn
    assert conn is not None
    session_id = ctx.app.token_lookup(p.token)
    identity = ctx.app.identity
    tree = identity.tree_of(conn.extras)
    if session_id is None:
        # Never fall back to acting as a human: later requests on this connection are refused.
        conn.auth_error = ("invalid session token (MAESTRO_SESSION_TOKEN; a token dies with its session): "
                           "this connection may not act")
        conn.session_id = tree
        raise errors.forbidden("invalid session token")
    mismatch = identity.check_token(conn.extras, session_id)
    if mismatch is not None:
        # A token of another session, used from inside an agent's tree: refused for the whole connection.
        conn.auth_error = mismatch
        conn.session_id = tree
        raise errors.RpcError(errors.FORBIDDEN, mismatch,
                              {"token_session": session_id, "peer_session": tree, "reason": "token_mismatch"})
    conn.auth_error = None
    conn.session_id = session_id
    return {"session_id": session_id}
