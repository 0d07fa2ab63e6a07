"""session.digest / session.digests / session.usage / context.coordinator: transcript digests (issue 4).

A digest window (``session.digest``) is the pure digest's window (``shared.digest.DigestWindow.to_dict``)
plus the maestro session's identity::

    {"id": "s-1a2b3c", "session_id": "s-1a2b3c", "name": "api", "status": "working", "role": "worker",
     "claude_session_id": "5c03…", "mode": "tools", "state": "working", "needs_attention": true,
     "attention_reason": "3 consecutive failed tool calls (last: Bash: npm test ✗ exit 1)",
     "stuck": false, "running": ["Bash: npm test"], "thinking_since": null, "total_entries": 41,
     "usage": {...}, "cost_usd": 0.42, "entries": [{"timestamp": "…", "kind": "tool",
     "summary": "Bash: npm test ✗ exit 1 — FAIL src/api.test.ts", "tool": "Bash", "is_error": true,
     "count": 3, "agent": null, "seq": 40}, …]}

Following a session: subscribe to the ``session.digest`` events (``events.subscribe``) - each carries the
entries appended (per mode, with their ``seq``) and those whose ``count`` grew - then read the window once
and print events' entries whose ``seq`` is beyond it.  ``maestroctl session log --follow`` does exactly
that.
"""

from typing import Literal, Optional

import attrs

from shared.messages.spec import MethodSpec, doc

DigestMode = Literal["tools", "text"]


def _last(_inst: object, a: "attrs.Attribute[int]", v: int) -> None:
    if not 0 <= v <= 10_000:
        raise ValueError(f"{a.name}: must be between 0 and 10000, got {v}")


@attrs.define
class SessionDigestParams:
    id: str = attrs.field(metadata=doc("session id, unique prefix or name"))
    mode: DigestMode = attrs.field(default="tools", metadata=doc(
        "tools: one line per step; text: only the agent's words and the prompts"))
    last: Optional[int] = attrs.field(default=None, validator=attrs.validators.optional(_last), metadata=doc(
        "entries to return (default: [digest] window, 20; 0: none, only the aggregates)"))


@attrs.define
class SessionDigestsParams:
    ids: list[str] = attrs.field(factory=list, metadata=doc(
        "sessions (ids, prefixes or names); none from a person: every live session"))
    my_workers: bool = attrs.field(default=False, metadata=doc(
        "(inside a session) also every session whose parent is the caller"))
    mode: DigestMode = "tools"
    last: Optional[int] = attrs.field(default=None, validator=attrs.validators.optional(_last))


@attrs.define
class SessionUsageParams:
    id: str = attrs.field(metadata=doc("session id, unique prefix or name"))


@attrs.define
class ContextCoordinatorParams:
    id: Optional[str] = attrs.field(default=None, metadata=doc("coordinator session (default: the caller)"))
    budget_tokens: int = attrs.field(default=1500, metadata=doc("size limit, estimated at 4 characters/token"))

    @budget_tokens.validator
    def _budget(self, _a: object, v: int) -> None:
        if not 50 <= v <= 100_000:
            raise ValueError(f"budget_tokens: must be between 50 and 100000, got {v}")


METHODS = [
    MethodSpec("session.digest", SessionDigestParams,
               "A session's transcript digest: the last entries, state, needs_attention, tokens, cost. "
               "Follow it with events.subscribe([\"session.digest\"])."),
    MethodSpec("session.digests", SessionDigestsParams,
               "Digests of several sessions (ids and/or the caller's workers), one per session."),
    MethodSpec("session.usage", SessionUsageParams,
               "Tokens (input, output, cache read/creation) and estimated cost of a session, per model."),
    MethodSpec("context.coordinator", ContextCoordinatorParams,
               "<coordinator_context>: a coordinator's task board and its workers' digests, within a token "
               "budget (what its hooks inject)."),
]
