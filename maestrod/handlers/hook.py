"""hook.event: a Claude Code hook (``maestroctl hook EVENT``) reporting on its own session.

Only a session's own token can report for it: the connection must be authenticated
(``MAESTRO_SESSION_TOKEN``). The answer's ``stdout`` is what the hook prints (context for
UserPromptSubmit/PostToolUse, a block decision for Stop; see maestrod.sessions.hooks).
"""

from __future__ import annotations

from typing import Any

from maestrod.dispatch import Context, handler
from shared import errors
from shared.messages.session import HookEvent


@handler("hook.event")
async def event(ctx: Context, p: HookEvent) -> dict[str, Any]:
    if ctx.session_id is None:
        raise errors.forbidden(
            "hook.event reports for a session: call it with that session's MAESTRO_SESSION_TOKEN"
        )
    if not p.event or len(p.event) > 64:
        raise errors.invalid_params(["event: a hook event name such as Stop"])
    return await ctx.app.sessions.hook(ctx.session_id, p.event, p.payload, p.started_monotonic)
