"""``maestroctl hook EVENT``: the command every Claude Code hook of a maestro session runs.

Reads the hook's JSON from stdin and forwards it (``hook.event``) with the session token
(``MAESTRO_SESSION_TOKEN``); prints what the daemon answers (context for UserPromptSubmit
and PostToolUse, a decision for Stop). It must never hang or break the agent: the whole
call is bounded (:data:`DEADLINE`), and every failure -- no daemon, no token, bad input --
is a note on stderr and exit status 0.

It sends when its process started (``started_monotonic``, the system-wide monotonic clock, read first
thing): Claude Code runs some hooks in the background (``async``), so their reports may reach the daemon
after later ones, and the daemon orders them by this.
"""

from __future__ import annotations

import os
import sys
from time import monotonic

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    from typing import Any

#: Seconds for the socket round trip; the process gives up (exit 0) after DEADLINE at the latest.
TIMEOUT = 2.0
DEADLINE = 3
#: Payloads larger than this lose their `tool_response` (a tool's whole output) before sending.
MAX_PAYLOAD = 1024 * 1024
#: JSON-RPC's invalid params (shared.errors.INVALID_PARAMS; not imported: start-up).
INVALID_PARAMS = -32602


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "event",
        help="the hook event: SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, "
        "PostToolUseFailure, Stop, Notification, SessionEnd",
    )
    p.set_defaults(func=run)


def _note(msg: str) -> None:
    try:
        sys.stderr.write(f"maestroctl hook: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _give_up(_signum: int, _frame: Any) -> None:
    _note(f"maestrod did not answer within {DEADLINE} s; hook ignored")
    os._exit(0)


def run(rt: Any, a: Any) -> int:
    started = monotonic()  # first: the closer to the process's start, the better reports are ordered
    import _signal as signal  # the C module: `signal` would import enum (~3 ms)

    signal.signal(signal.SIGALRM, _give_up)
    signal.alarm(DEADLINE)
    try:
        return _forward(rt, a.event, started)
    except Exception as exc:  # never fail the agent
        _note(f"{type(exc).__name__}: {exc}".splitlines()[0])
        return 0
    finally:
        signal.alarm(0)


def _forward(rt: Any, event: str, started: float) -> int:
    from maestroctl import wire
    from maestroctl.client import TOKEN_ENV, Client, DaemonConnectionError, RemoteError

    raw = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    token = os.environ.get(TOKEN_ENV)
    if not token:
        _note(f"not inside a maestro session (no {TOKEN_ENV}); {event} ignored")
        return 0
    payload: Any = {}
    if raw.strip():
        try:
            payload = wire.loads(raw)
        except ValueError as exc:
            _note(f"the {event} input is not JSON ({exc}); forwarded without it")
    if not isinstance(payload, dict):
        payload = {"value": payload}
    if len(raw) > MAX_PAYLOAD and "tool_response" in payload:
        payload["tool_response"] = {"truncated": True, "bytes": len(raw)}
    client = Client(rt.socket, token=token, timeout=TIMEOUT)
    params = {"event": event, "payload": payload, "started_monotonic": started}
    try:
        try:
            result = client.call("hook.event", params)
        except RemoteError as exc:
            if exc.code != INVALID_PARAMS or "started_monotonic" not in exc.message:
                raise
            # A daemon older than this maestroctl (it runs on until restarted after an upgrade): report
            # without the start time rather than not at all.
            del params["started_monotonic"]
            result = client.call("hook.event", params)
    except DaemonConnectionError as exc:  # unreachable, or closed before answering: never fail the agent
        _note(f"{str(exc).splitlines()[0]}; {event} not reported")
        return 0
    except RemoteError as exc:
        _note(f"maestrod refused {event}: {exc.message}")
        return 0
    except TimeoutError:
        _note(f"maestrod did not answer within {TIMEOUT} s; {event} not reported")
        return 0
    finally:
        client.close()
    out = (result or {}).get("stdout") or ""
    if out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
        sys.stdout.flush()
    return 0
