"""Hardening item 4: a session's token dies with its session (after it exits, and across daemon restarts)."""

from __future__ import annotations

import secrets
from pathlib import Path

from maestrod.sessions.store import token_hash
from shared import errors
from tests.conftest import Daemon, EventLog, RawClient
from tests.session_support import _agent, _as, _error, _project
from tests.test_digest_service_support import add_session, make_app


async def test_a_token_stops_working_when_its_session_exits(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path) -> None:
    await _project(client, tmp_path)
    sid, conn, token = await _agent(daemon, client, "w1")
    assert (await conn.call("system.whoami"))["session_id"] == sid
    assert (await conn.call("hook.event", {"event": "Notification", "payload": {}})) == {"stdout": ""}

    await client.call("session.stop", {"id": sid})
    await events.status(sid, "exited")
    late = await _as(daemon, token)
    err = await _error(late, "system.whoami", {})
    assert err["code"] == errors.FORBIDDEN
    assert "invalid session token" in err["message"]
    # what a SessionEnd hook reporting after the process exited gets (maestroctl hook still exits 0)
    late = await _as(daemon, token)
    err = await _error(late, "hook.event", {"event": "SessionEnd", "payload": {}})
    assert err["code"] == errors.FORBIDDEN


async def test_a_token_of_a_session_lost_in_a_restart_is_dead(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)
    app = make_app(tmp_path)
    add_session(app, "s-1", token_hash=token_hash(token), status="working")
    assert app.token_lookup(token) == "s-1"
    app.close()

    app = make_app(tmp_path)  # the next daemon: the session's terminal went with the previous one
    try:
        app.sessions.recover()  # what the session service does before the daemon listens
        assert app.sessions.store.row("s-1")["exit_reason"] == "lost"
        assert app.token_lookup(token) is None
    finally:
        app.close()
