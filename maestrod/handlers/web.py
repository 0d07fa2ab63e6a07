"""web.*: where the web feed listens, and its token, for the person (``maestroctl web token|url``)."""

from __future__ import annotations

from typing import Any

from maestrod.dispatch import Context, handler
from shared import errors
from shared.messages.system import NoParams


@handler("web.info")
async def info(ctx: Context, p: NoParams) -> dict[str, Any]:
    if not ctx.is_human:
        # The token keeps other users' browsers and cross-site pages out; an agent has no use for it (a
        # WebSocket from its process tree is still that agent), so it is not handed to one.
        raise errors.RpcError(errors.FORBIDDEN,
                              f"the web token is for the person, not agents (this caller is session "
                              f"{ctx.session_id})", {"session": ctx.session_id, "reason": "agent"})
    web = ctx.app.web
    if web is None:
        return {"enabled": False, "port": None, "url": None, "rpc_url": None, "dashboard_url": None,
                "token": None}
    return {"enabled": True, "port": web.port, "url": web.url, "rpc_url": web.rpc_url,
            "dashboard_url": web.dashboard_url, "token": web.token}
