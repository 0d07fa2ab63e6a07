"""daemon.*: restart in place, reload, stop -- for the person (maestroctl daemon restart|reload|stop)."""

from __future__ import annotations

from typing import Any

from maestrod.control import Control
from maestrod.dispatch import Context, handler
from shared import errors
from shared.messages.system import NoParams


def _control(ctx: Context, what: str) -> Control:
    if not ctx.is_human:
        raise errors.RpcError(errors.FORBIDDEN, f"only the person may {what} the daemon (this caller is "
                              f"session {ctx.session_id})", {"session": ctx.session_id, "reason": "agent"})
    if ctx.app.control is None:
        raise errors.RpcError(errors.UNAVAILABLE, f"this daemon cannot {what} itself (not started by maestrod.main)")
    return ctx.app.control


@handler("daemon.restart")
async def restart(ctx: Context, p: NoParams) -> dict[str, Any]:
    return await _control(ctx, "restart").restart()


@handler("daemon.reload")
async def reload(ctx: Context, p: NoParams) -> dict[str, Any]:
    return _control(ctx, "reload").reload()


@handler("daemon.stop")
async def stop(ctx: Context, p: NoParams) -> dict[str, Any]:
    _control(ctx, "stop").stop()
    return {"stopping": True}
