"""``mail.wait``: everything unread at once, else woken by the arrival itself (no polling), else
an empty answer at the timeout. Virtual time (autojump clock) makes the timing assertions exact;
the socket tests use a real in-process daemon."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from maestrod.app import App
from shared import errors
from tests.conftest import Daemon
from tests.test_mail_support import (
    call,
    call_err,
    family,
    family_app,  # noqa: F401  (the `app` fixture)
)


def send(app: App, frm: str, to: list[str], subject: str = "s", **kw: Any) -> Any:
    return call(app, frm, "mail.send", {"to": to, "subject": subject, "body": "b", **kw})


def count_queries(app: App, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    store = app.mail.store
    calls = [0]
    real = store.unread

    def counted(*a: Any, **kw: Any) -> Any:
        calls[0] += 1
        return real(*a, **kw)

    monkeypatch.setattr(store, "unread", counted)
    return calls


async def test_returns_every_unread_message_at_once(app: App, autojump_clock: Any) -> None:
    await send(app, "s-w1", ["s-coord"], "normal-1")
    await send(app, "s-w2", ["s-coord"], "critical", priority="critical")
    await send(app, "s-w1", ["s-coord"], "normal-2")
    t0 = trio.current_time()
    got = await call(app, "s-coord", "mail.wait", {"timeout": 30})
    assert trio.current_time() == t0
    assert [m["subject"] for m in got] == ["critical", "normal-1", "normal-2"]  # priority, then arrival
    assert all(m["read_at"] is not None and m["receipts"]["s-coord"] == m["read_at"] for m in got)
    assert await call(app, "s-coord", "mail.inbox", {"unread": True}) == []
    assert await call(app, "s-coord", "mail.wait", {"timeout": 0}) == []


async def test_woken_by_the_arrival_not_by_polling(app: App, autojump_clock: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    queries = count_queries(app, monkeypatch)
    waiters = app.mail.waiters
    out: dict[str, Any] = {}

    async def waiter() -> None:
        out["result"] = await call(app, "s-coord", "mail.wait", {"timeout": 600})
        out["at"] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(100)  # virtual: nothing arrives for a long time
        assert "result" not in out and waiters.count("s-coord") == 1
        assert queries[0] == 1  # one look at the store, then asleep: no polling
        sent_at = trio.current_time()
        m = await send(app, "s-w1", ["s-coord"], "wake up", type="query")
    assert out["at"] == sent_at  # returned at the instant of the arrival, not at a poll tick
    assert [x["id"] for x in out["result"]] == [m["id"]]
    assert queries[0] == 2 and waiters.count() == 0


async def test_timeout_returns_empty(app: App, autojump_clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    queries = count_queries(app, monkeypatch)
    t0 = trio.current_time()
    assert await call(app, "s-coord", "mail.wait", {"timeout": 2.5}) == []
    assert trio.current_time() - t0 == pytest.approx(2.5)
    assert queries[0] == 1
    assert app.mail.waiters.count() == 0  # nothing left registered
    t0 = trio.current_time()
    assert await call(app, "s-coord", "mail.wait", {"timeout": 0}) == []
    assert trio.current_time() == t0


async def test_mail_for_others_does_not_wake(app: App, autojump_clock: Any) -> None:
    await send(app, "s-coord", ["s-w2"], "not yours")
    t0 = trio.current_time()
    assert await call(app, "s-w1", "mail.wait", {"timeout": 5}) == []
    assert trio.current_time() - t0 == pytest.approx(5)


async def test_broadcast_wakes_every_recipient(app: App, autojump_clock: Any) -> None:
    results: dict[str, Any] = {}
    start = trio.current_time()

    async def waiter(who: str) -> None:
        results[who] = (await call(app, who, "mail.wait", {"timeout": 60}), trio.current_time())

    async with trio.open_nursery() as nursery:
        for who in ("s-w1", "s-w2", "s-lead", "s-w2a"):
            nursery.start_soon(waiter, who)
        await trio.sleep(1)
        t = trio.current_time()
        m = await call(app, "s-coord", "mail.broadcast", {"scope": "my-workers", "subject": "go", "body": "now"})
    for who in ("s-w1", "s-w2", "s-lead"):
        msgs, at = results[who]
        assert at == t and [x["id"] for x in msgs] == [m["id"]]
    assert results["s-w2a"][0] == [] and results["s-w2a"][1] == pytest.approx(start + 60)


async def test_type_filter(app: App, autojump_clock: Any) -> None:
    out: dict[str, Any] = {}

    async def waiter() -> None:
        out["r"] = await call(app, "s-w1", "mail.wait", {"timeout": 60, "type": "assignment"})
        out["at"] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(1)
        await send(app, "s-coord", ["s-w1"], "a question", type="query")
        await trio.sleep(1)
        assert "r" not in out  # woken, looked, went back to sleep
        t = trio.current_time()
        a = await send(app, "s-coord", ["s-w1"], "do this", type="assignment")
    assert out["at"] == t and [m["id"] for m in out["r"]] == [a["id"]]
    left = await call(app, "s-w1", "mail.inbox", {"unread": True})
    assert [m["subject"] for m in left] == ["a question"]  # only what was returned was marked read


async def test_peek_leaves_mail_unread(app: App) -> None:
    await send(app, "s-coord", ["s-w1"], "x")
    assert len(await call(app, "s-w1", "mail.wait", {"timeout": 0, "peek": True})) == 1
    assert len(await call(app, "s-w1", "mail.wait", {"timeout": 0})) == 1
    assert await call(app, "s-w1", "mail.wait", {"timeout": 0}) == []


async def test_the_human_waits_on_the_human_mailbox(app: App, autojump_clock: Any) -> None:
    async with trio.open_nursery() as nursery:
        out: list[Any] = []

        async def waiter() -> None:
            out.append(await call(app, None, "mail.wait", {"timeout": 60}))

        nursery.start_soon(waiter)
        await trio.sleep(1)
        await send(app, "s-solo", ["human"], "need you")
    assert [m["subject"] for m in out[0]] == ["need you"]


async def test_bad_timeouts(app: App) -> None:
    err = await call_err(app, "s-w1", "mail.wait", {"timeout": -1})
    assert err.code == errors.INVALID_PARAMS
    err = await call_err(app, "s-w1", "mail.wait", {"timeout": "10"})
    assert err.code == errors.INVALID_PARAMS


def test_wait_is_concurrent_in_the_catalogue() -> None:
    from shared.methods import CATALOGUE

    assert CATALOGUE["mail.wait"].concurrent
    assert not any(CATALOGUE[m].concurrent for m in CATALOGUE if m.startswith("mail.") and m != "mail.wait")


# -- over a real socket -------------------------------------------------------------------------

async def authed(daemon: Daemon, token: str) -> Any:
    client = await daemon.connect()
    assert (await client.call("system.auth", {"token": token}))["session_id"]
    return client


def tokens(daemon: Daemon) -> None:
    family(daemon.app)
    daemon.app.token_lookup = {"tok-coord": "s-coord", "tok-w1": "s-w1"}.get


async def test_socket_wait_is_woken_and_does_not_block_the_connection(daemon: Daemon) -> None:
    tokens(daemon)
    coord = await authed(daemon, "tok-coord")
    worker = await authed(daemon, "tok-w1")
    with trio.fail_after(10):
        await coord.send({"jsonrpc": "2.0", "id": 100, "method": "mail.wait", "params": {"timeout": 30}})
        # the wait runs beside later requests on the same connection
        assert await coord.call("system.ping") == "pong"
        m = await worker.call("mail.send", {"to_coordinator": True, "type": "query", "subject": "q",
                                            "body": "schema?"})
        resp = await coord.recv_response()
    assert resp["id"] == 100 and [x["id"] for x in resp["result"]] == [m["id"]]
    assert resp["result"][0]["from"] == "s-w1" and resp["result"][0]["read_at"]


async def test_socket_wait_of_a_vanished_client_consumes_nothing(daemon: Daemon,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    tokens(daemon)
    coord = await authed(daemon, "tok-coord")
    worker = await authed(daemon, "tok-w1")
    waiters = daemon.app.mail.waiters
    with trio.fail_after(10):
        await coord.send({"jsonrpc": "2.0", "id": 1, "method": "mail.wait", "params": {"timeout": 30}})
        while waiters.count("s-coord") == 0:
            await trio.sleep(0.001)
        await coord.aclose()  # e.g. the agent's Bash tool killed `maestroctl mail wait`
        await trio.testing.wait_all_tasks_blocked()
        m = await worker.call("mail.send", {"to_coordinator": True, "subject": "lost?", "body": "no"})
        while waiters.count("s-coord"):
            await trio.sleep(0.001)
        await trio.testing.wait_all_tasks_blocked()
    unread = await call(daemon.app, "s-coord", "mail.inbox", {"unread": True})
    assert [x["id"] for x in unread] == [m["id"]]  # still unread: the next wait gets it
    assert not [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]  # the wait ended cleanly
