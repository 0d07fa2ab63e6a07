"""``maestroctl dashboard --print`` and ``mail.unread_counts`` (the dashboard's counts), against a real daemon."""

from __future__ import annotations

from pathlib import Path

import trio

from maestrod.web.feed import WebFeed
from tests.conftest import Daemon, RawClient, maestroctl_env
from tests.session_support import _agent, _ctl, _error, _project


async def test_dashboard_print_gives_the_url_with_its_token(daemon: Daemon, nursery: trio.Nursery) -> None:
    env = maestroctl_env(daemon.socket_path)
    assert "the web feed is off" in await _ctl(env, "dashboard", "--print", code=1)
    endpoint = await nursery.start(WebFeed(daemon.app, 0).run)
    assert endpoint is not None
    out = await _ctl(env, "dashboard", "--print")
    assert out.strip() == f"http://127.0.0.1:{endpoint.port}/#token={endpoint.token}"
    assert out == await _ctl(env, "web", "url")
    assert await _ctl(env, "--json", "dashboard") == f'{{"url":"{endpoint.dashboard_url}"}}\n'


async def test_unread_counts_per_mailbox(client: RawClient, daemon: Daemon, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    a, a_conn, _ = await _agent(daemon, client, "a")
    b, _b_conn, _ = await _agent(daemon, client, "b")
    await client.call("mail.send", {"to": [a], "subject": "one", "body": "x"})
    await client.call("mail.send", {"to": [a, b], "subject": "two", "body": "y", "priority": "low"})
    await a_conn.call("mail.send", {"to": ["human"], "subject": "hi", "body": "z"})
    counts = await client.call("mail.unread_counts", {"mailboxes": [a, b, "human", a]})
    assert counts == {"counts": {a: 2, b: 1, "human": 1}}
    inbox = await a_conn.call("mail.inbox", {"unread": True})
    await a_conn.call("mail.read", {"id": (inbox["items"] if isinstance(inbox, dict) else inbox)[0]["id"]})
    assert (await a_conn.call("mail.unread_counts", {"mailboxes": [a]}))["counts"] == {a: 1}
    # An agent counts only what it may read: not the human's mailbox.
    err = await _error(a_conn, "mail.unread_counts", {"mailboxes": ["human"]})
    assert err["code"] == -32003
    err = await _error(client, "mail.unread_counts", {"mailboxes": []})
    assert err["code"] == -32602 and "mailboxes" in err["message"]
