"""Helpers shared by the session test modules (projects, spawns, agents acting with their token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient, wait_screen

#: A session that prints its token (so the test can act as it), then waits.
TOKEN_CAT = ["sh", "-c", "echo TOKEN=$MAESTRO_SESSION_TOKEN; exec cat"]


async def _project(client: RawClient, d: Path) -> str:
    proj = await client.call("project.create", {"name": "p", "dir": str(d)})
    return proj["id"]  # type: ignore[no-any-return]


async def _spawn(client: RawClient, argv: list[str], **kw: Any) -> dict[str, Any]:
    params = {"project": "p", "name": kw.pop("name", "sh"), "agent": "command", "argv": argv, **kw}
    return await client.call("session.spawn", params)  # type: ignore[no-any-return]


async def _fake_claude(
    daemon: Daemon, client: RawClient, fake: Path, events: EventLog, **kw: Any
) -> dict[str, Any]:
    daemon.app.config.claude.bin = str(fake)
    s = await client.call("session.spawn", {"project": "p", "name": kw.pop("name", "agent"), **kw})
    await events.status(s["id"], "idle")
    return s  # type: ignore[no-any-return]


async def _as(daemon: Daemon, token: str) -> RawClient:
    """A connection authenticated with a session token."""
    conn = await daemon.connect()
    await conn.send({"jsonrpc": "2.0", "method": "system.auth", "params": {"token": token}})
    return conn


async def _agent(daemon: Daemon, spawner: RawClient, name: str, **kw: Any) -> tuple[str, RawClient, str]:
    """A session spawned by ``spawner`` (TOKEN_CAT) and a connection authenticated as it: (id, conn, token)."""
    s = await _spawn(spawner, TOKEN_CAT, name=name, **kw)
    text = await wait_screen(daemon.app, s["id"], lambda t: "TOKEN=" in t)
    token = text.split("TOKEN=", 1)[1].split()[0]
    conn = await _as(daemon, token)
    assert (await conn.call("system.whoami"))["session_id"] == s["id"]
    return s["id"], conn, token


async def _error(client: RawClient, method: str, params: dict[str, Any]) -> dict[str, Any]:
    resp = await client.request(method, params)
    assert "error" in resp, resp
    return resp["error"]  # type: ignore[no-any-return]


async def _ctl(env: dict[str, str], *args: str, code: int = 0) -> str:
    """Run the real maestroctl: its stdout, or its stderr when ``code`` (the expected status) is not 0."""
    r = await trio.run_process([MAESTROCTL, *args], capture_stdout=True, capture_stderr=True, env=env, check=False)
    assert r.returncode == code, (args, r.returncode, r.stdout.decode(), r.stderr.decode())
    return r.stdout.decode() if code == 0 else r.stderr.decode()
