"""The mailbox rules: senders, recipients, scopes, priority order, threading, receipts, limits,
events and durability -- through the real dispatcher, as real sessions."""

from __future__ import annotations

from pathlib import Path

from maestrod.app import App
from shared import errors
from tests.test_mail_support import (
    add_session,
    call,
    call_err,
    family,
    family_app,  # noqa: F401  (the `app` fixture)
    make_app,
)


def msg(subject: str = "s", body: str = "b", **kw: object) -> dict[str, object]:
    return {"subject": subject, "body": body, **kw}


# -- send ------------------------------------------------------------------------------------

async def test_send_to_many_sets_sender_thread_and_receipts(app: App) -> None:
    m = await call(app, "s-coord", "mail.send", msg("plan", "do it", to=["s-w1", "worker-2", "w1"],
                                                     type="assignment", priority="high"))
    assert m["id"].startswith("m-") and len(m["id"]) == 8
    assert m["from"] == "s-coord" and m["from_name"] == "coord"
    assert m["to"] == ["s-w1", "s-w2"]  # "worker-2" is a name, "w1" a prefix of s-w1; duplicates merged
    assert m["thread_id"] == m["id"] and m["reply_to"] is None
    assert m["type"] == "assignment" and m["priority"] == "high"
    assert m["receipts"] == {"s-w1": None, "s-w2": None}
    for who in ("s-w1", "s-w2"):
        inbox = await call(app, who, "mail.inbox")
        assert [x["id"] for x in inbox] == [m["id"]] and inbox[0]["read_at"] is None
    assert await call(app, "s-w2a", "mail.inbox") == []


async def test_sender_cannot_be_chosen(app: App) -> None:
    err = await call_err(app, "s-w1", "mail.send", msg(to=["s-coord"], **{"from": "s-w2"}))
    assert err.code == errors.INVALID_PARAMS and "from: unknown field" in err.message


async def test_human_sends_as_human_and_agents_mail_the_human(app: App) -> None:
    m = await call(app, None, "mail.send", msg(to=["s-stranger"]))
    assert m["from"] == "human" and m["from_name"] == "human"
    r = await call(app, "s-stranger", "mail.send", msg("hello", to=["human"], type="notification"))
    assert r["to"] == ["human"]
    inbox = await call(app, None, "mail.inbox")
    assert [x["id"] for x in inbox] == [r["id"]]


async def test_to_coordinator(app: App) -> None:
    m = await call(app, "s-w2a", "mail.send", msg("q", to_coordinator=True, type="query"))
    assert m["to"] == ["s-w2"]
    both = await call(app, "s-w2a", "mail.send", msg("q", to=["s-w2"], to_coordinator=True))
    assert both["to"] == ["s-w2"]
    top = await call(app, "s-solo", "mail.send", msg("q", to_coordinator=True))
    assert top["to"] == ["human"]  # a top-level session's coordinator is the human who started it
    err = await call_err(app, None, "mail.send", msg(to_coordinator=True))
    assert err.code == errors.INVALID_PARAMS and "no coordinator" in err.message


async def test_unknown_recipients_are_named(app: App) -> None:
    err = await call_err(app, "s-coord", "mail.send", msg(to=["s-w1", "nobody", "s-zzz"]))
    assert err.code == errors.NOT_FOUND
    assert "nobody" in err.message and "s-zzz" in err.message and err.data["unknown"] == ["nobody", "s-zzz"]
    err = await call_err(app, "s-coord", "mail.send", msg())
    assert err.code == errors.INVALID_PARAMS and "at least one recipient" in err.message
    assert await call(app, "s-w1", "mail.inbox") == []  # nothing was half-sent


async def test_exited_recipient_is_refused(app: App) -> None:
    err = await call_err(app, "s-coord", "mail.send", msg(to=["s-w1", "s-gone"]))
    assert err.code == errors.CONFLICT and "s-gone" in err.message and "exited" in err.message
    assert await call(app, "s-w1", "mail.inbox") == []


async def test_ambiguous_recipient_name(app: App) -> None:
    add_session(app, "s-twin1", app.projects.resolve("proj"), name="twin", parent="s-coord")
    add_session(app, "s-twin2", app.projects.resolve("proj"), name="twin", parent="s-coord")
    err = await call_err(app, "s-coord", "mail.send", msg(to=["twin"]))
    assert err.code == errors.CONFLICT and "ambiguous" in err.message


async def test_policy_refuses_mail_outside_the_family(app: App) -> None:
    err = await call_err(app, "s-w1", "mail.send", msg(to=["s-stranger"]))
    assert err.code == errors.FORBIDDEN
    assert "s-w1" in err.message and "s-stranger" in err.message
    err = await call_err(app, "s-w1", "mail.send", msg(to=["s-lw1"]))  # a cousin
    assert err.code == errors.FORBIDDEN
    # upwards (coordinator chain), sideways (siblings) and downwards are allowed
    for frm, to in (("s-w2a", "s-coord"), ("s-w1", "s-w2"), ("s-coord", "s-w2a"), ("s-w1", "s-w1")):
        await call(app, frm, "mail.send", msg(to=[to]))


async def test_body_and_subject_limits(app: App) -> None:
    limit = 64 * 1024
    ok = await call(app, "s-coord", "mail.send", msg(body="x" * limit, to=["s-w1"]))
    assert len(ok["body"]) == limit
    err = await call_err(app, "s-coord", "mail.send", msg(body="x" * (limit + 1), to=["s-w1"]))
    assert err.code == errors.TOO_LARGE and "65537 bytes" in err.message and "65536" in err.message
    err = await call_err(app, "s-coord", "mail.send", msg(body="é" * (limit // 2 + 1), to=["s-w1"]))
    assert err.code == errors.TOO_LARGE  # bytes of UTF-8, not characters
    err = await call_err(app, "s-coord", "mail.send", msg(subject="  ", to=["s-w1"]))
    assert err.code == errors.INVALID_PARAMS and "subject" in err.message
    err = await call_err(app, "s-coord", "mail.broadcast", msg(body="x" * (limit + 1), scope="my-workers"))
    assert err.code == errors.TOO_LARGE
    err = await call_err(app, "s-coord", "mail.send", msg(to=["s-w1"], type="gossip", priority="urgent"))
    assert err.code == errors.INVALID_PARAMS and "type" in err.message and "priority" in err.message


async def test_task_is_resolved(app: App) -> None:
    tid = app.tasks.create(app.projects.resolve("proj"), "T", "", "medium", "todo", None, []).id
    m = await call(app, "s-w1", "mail.send", msg(to_coordinator=True, task=tid[:5]))
    assert m["task_id"] == tid
    err = await call_err(app, "s-w1", "mail.send", msg(to_coordinator=True, task="t-nope"))
    assert err.code == errors.NOT_FOUND


# -- broadcast scopes ------------------------------------------------------------------------

async def test_scope_my_workers_only_live_children(app: App) -> None:
    m = await call(app, "s-coord", "mail.broadcast", msg(scope="my-workers"))
    assert m["to"] == ["s-lead", "s-w1", "s-w2"] and m["scope"] == "my-workers" and m["type"] == "directive"
    # not the grandchildren, not the exited worker, not another tree
    for who in ("s-w2a", "s-lw1", "s-gone", "s-solo", "s-stranger"):
        assert await call(app, who, "mail.inbox") == []


async def test_scope_team_is_same_parent(app: App) -> None:
    m = await call(app, "s-w1", "mail.broadcast", msg(scope="team", type="notification"))
    assert m["to"] == ["s-lead", "s-w2"]  # not itself, not the exited sibling, not the coordinator


async def test_scope_all_for_an_agent_is_whom_it_may_reach(app: App) -> None:
    m = await call(app, "s-w2", "mail.broadcast", msg(scope="all"))
    # coordinator, live siblings, own descendants; never cousins, other trees or itself
    assert m["to"] == sorted(["s-coord", "s-w1", "s-lead", "s-w2a"])


async def test_scope_all_for_the_human(app: App) -> None:
    m = await call(app, None, "mail.broadcast", msg(scope="all"))
    assert "s-stranger" in m["to"] and "s-gone" not in m["to"] and len(m["to"]) == 8
    m = await call(app, None, "mail.broadcast", msg(scope="all", project="other"))
    assert m["to"] == ["s-stranger"]
    m = await call(app, None, "mail.broadcast", msg(scope="my-workers"))
    assert m["to"] == ["s-coord", "s-solo", "s-stranger"]  # the top-level sessions


async def test_empty_scopes_are_errors(app: App) -> None:
    err = await call_err(app, "s-w1", "mail.broadcast", msg(scope="my-workers"))
    assert err.code == errors.CONFLICT and "scope my-workers is empty" in err.message and "worker-1" in err.message
    err = await call_err(app, "s-stranger", "mail.broadcast", msg(scope="team"))
    assert err.code == errors.CONFLICT and "scope team is empty" in err.message
    err = await call_err(app, "s-lw1", "mail.broadcast", msg(scope="team"))
    assert err.code == errors.CONFLICT
    err = await call_err(app, None, "mail.broadcast", msg(scope="team"))
    assert err.code == errors.INVALID_PARAMS and "human" in err.message
    err = await call_err(app, "s-coord", "mail.broadcast", msg(scope="everyone"))
    assert err.code == errors.INVALID_PARAMS


# -- inbox order and filters ------------------------------------------------------------------

async def test_inbox_unread_first_then_priority_then_newest(app: App) -> None:
    sent = {}
    for name, prio in (("n1", "normal"), ("low", "low"), ("c1", "critical"), ("n2", "normal"),
                       ("h1", "high"), ("c2", "critical")):
        sent[name] = (await call(app, "s-coord", "mail.send", msg(name, to=["s-w1"], priority=prio)))["id"]
    await call(app, "s-w1", "mail.read", {"id": sent["c2"]})
    await call(app, "s-w1", "mail.read", {"id": sent["n1"]})
    inbox = await call(app, "s-w1", "mail.inbox")
    assert [m["subject"] for m in inbox] == ["c1", "h1", "n2", "low", "c2", "n1"]
    assert [m["read_at"] is None for m in inbox] == [True] * 4 + [False] * 2
    unread = await call(app, "s-w1", "mail.inbox", {"unread": True})
    assert [m["subject"] for m in unread] == ["c1", "h1", "n2", "low"]
    assert [m["subject"] for m in (await call(app, "s-w1", "mail.inbox", {"limit": 2}))["items"]] == ["c1", "h1"]
    err = await call_err(app, "s-w1", "mail.inbox", {"limit": 0})
    assert err.code == errors.INVALID_PARAMS


async def test_inbox_filters_type_and_thread(app: App) -> None:
    q = await call(app, "s-coord", "mail.send", msg("q", to=["s-w1"], type="query"))
    await call(app, "s-coord", "mail.send", msg("d", to=["s-w1"], type="directive"))
    r = await call(app, "s-w1", "mail.reply", {"id": q["id"], "body": "a"})
    f = await call(app, "s-coord", "mail.reply", {"id": r["id"], "body": "thanks", "type": "notification"})
    assert [m["subject"] for m in await call(app, "s-w1", "mail.inbox", {"type": "directive"})] == ["d"]
    thread = await call(app, "s-w1", "mail.inbox", {"thread": f["id"]})  # any message id names the thread
    assert [m["id"] for m in thread] == [f["id"], q["id"]]


async def test_reading_another_inbox(app: App) -> None:
    await call(app, "s-coord", "mail.send", msg("for w2a", to=["s-w2a"]))
    assert len(await call(app, "s-w2", "mail.inbox", {"mailbox": "s-w2a"})) == 1  # a descendant's
    assert len(await call(app, None, "mail.inbox", {"mailbox": "worker-2a"})) == 1  # the human reads any
    err = await call_err(app, "s-w2a", "mail.inbox", {"mailbox": "s-coord"})
    assert err.code == errors.FORBIDDEN
    err = await call_err(app, "s-w1", "mail.inbox", {"mailbox": "human"})
    assert err.code == errors.FORBIDDEN


# -- read, receipts, reply, thread --------------------------------------------------------------

async def test_read_marks_read_and_records_receipt(app: App) -> None:
    m = await call(app, "s-coord", "mail.send", msg(to=["s-w1", "s-w2"]))
    before = app.bus.last_seq
    got = await call(app, "s-w1", "mail.read", {"id": m["id"][:5]})
    assert got["id"] == m["id"] and got["body"] == "b" and got["read_at"] is not None
    assert got["receipts"]["s-w1"] == got["read_at"] and got["receipts"]["s-w2"] is None
    again = await call(app, "s-w1", "mail.read", {"id": m["id"]})
    assert again["read_at"] == got["read_at"]  # the first read time is kept
    events = app.bus.replay(before, ["mail.read"], 10)["events"]
    assert [e["data"]["reader"] for e in events] == ["s-w1"]  # one event: the second read changed nothing
    history = app.timeline.for_subject("mail", m["id"])
    assert [h["type"] for h in history] == ["mail.sent", "mail.read"]
    # the sender sees the receipts
    seen = await call(app, "s-coord", "mail.read", {"id": m["id"]})
    assert seen["receipts"]["s-w1"] is not None and seen["read_at"] is None


async def test_read_is_limited_to_participants(app: App) -> None:
    m = await call(app, "s-coord", "mail.send", msg(to=["s-w1"]))
    err = await call_err(app, "s-w2", "mail.read", {"id": m["id"]})
    assert err.code == errors.FORBIDDEN
    human = await call(app, None, "mail.read", {"id": m["id"]})
    assert human["receipts"] == {"s-w1": None}  # the human may look without reading it for the agent
    err = await call_err(app, "s-w1", "mail.read", {"id": "m-doesnotexist"})
    assert err.code == errors.NOT_FOUND


async def test_reply_threads_and_answers_the_sender(app: App) -> None:
    q = await call(app, "s-w1", "mail.send", msg("schema question", to_coordinator=True, type="query",
                                                 task=None))
    a = await call(app, "s-coord", "mail.reply", {"id": q["id"], "body": "use v2"})
    assert a["thread_id"] == q["id"] and a["reply_to"] == q["id"] and a["to"] == ["s-w1"]
    assert a["subject"] == "Re: schema question" and a["type"] == "response"
    # answering means having read it
    assert (await call(app, "s-coord", "mail.inbox"))[0]["read_at"] is not None
    b = await call(app, "s-w1", "mail.reply", {"id": a["id"], "body": "ok", "type": "notification"})
    assert b["thread_id"] == q["id"] and b["subject"] == "Re: schema question" and b["to"] == ["s-coord"]
    # a follow-up to one's own message goes to its recipients
    c = await call(app, "s-w1", "mail.reply", {"id": b["id"], "body": "also"})
    assert c["to"] == ["s-coord"] and c["thread_id"] == q["id"]
    thread = await call(app, "s-coord", "mail.thread", {"id": c["id"]})
    assert [m["id"] for m in thread] == [q["id"], a["id"], b["id"], c["id"]]
    human_view = await call(app, None, "mail.thread", {"id": q["id"]})
    assert [m["id"] for m in human_view] == [m["id"] for m in thread]


async def test_reply_to_a_broadcast_goes_to_its_sender_only(app: App) -> None:
    d = await call(app, "s-coord", "mail.broadcast", msg("go", scope="my-workers"))
    r = await call(app, "s-w2", "mail.reply", {"id": d["id"], "body": "on it"})
    assert r["to"] == ["s-coord"]
    err = await call_err(app, "s-w2a", "mail.reply", {"id": d["id"], "body": "me too"})
    assert err.code == errors.FORBIDDEN


async def test_thread_shows_only_what_the_viewer_may_see(app: App) -> None:
    q = await call(app, "s-coord", "mail.send", msg("q", to=["s-w1", "s-w2"]))
    await call(app, "s-w1", "mail.reply", {"id": q["id"], "body": "private to coord"})
    assert len(await call(app, "s-w2", "mail.thread", {"id": q["id"]})) == 1
    assert len(await call(app, "s-w1", "mail.thread", {"id": q["id"]})) == 2
    assert len(await call(app, None, "mail.thread", {"id": q["id"]})) == 2
    err = await call_err(app, "s-lw1", "mail.thread", {"id": q["id"]})
    assert err.code == errors.FORBIDDEN


# -- events, timeline, durability -------------------------------------------------------------

async def test_send_publishes_mail_received(app: App) -> None:
    before = app.bus.last_seq
    m = await call(app, "s-w1", "mail.send", msg("hello", to_coordinator=True, priority="high"))
    ev = app.bus.replay(before, ["mail."], 10)["events"]
    assert [e["topic"] for e in ev] == ["mail.received"]
    data = ev[0]["data"]
    assert data["message_id"] == m["id"] and data["to"] == ["s-coord"] and data["from"] == "s-w1"
    assert data["priority"] == "high" and data["subject"] == "hello" and "body" not in data
    assert app.timeline.for_subject("mail", m["id"])[0]["type"] == "mail.sent"


async def test_mail_survives_a_restart(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    family(app)
    m = await call(app, "s-coord", "mail.send", msg("durable", to=["s-w1", "s-w2"]))
    await call(app, "s-w1", "mail.read", {"id": m["id"]})
    app.close()
    app = make_app(tmp_path)
    try:
        got = await call(app, "s-w2", "mail.inbox", {"unread": True})
        assert [x["subject"] for x in got] == ["durable"]
        assert got[0]["receipts"]["s-w1"] is not None and got[0]["receipts"]["s-w2"] is None
        assert await call(app, "s-w1", "mail.inbox", {"unread": True}) == []
    finally:
        app.close()


def test_store_counts(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    try:
        family(app)
        store = app.mail.store
        mail = app.mail
        for prio in ("critical", "high", "normal", "low"):
            mail.send("s-coord", ["s-w1"], type_="notification", subject=prio, body="", priority=prio)
        assert store.unread_count("s-w1") == 4
        assert store.unread_count("s-w1", 1) == 2
        assert store.unread_count("s-w1", 0) == 1
        assert [h["subject"] for h in store.unread_heads("s-w1", 1)] == ["critical", "high"]
    finally:
        app.close()
