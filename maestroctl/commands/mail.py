"""``maestroctl mail send|broadcast|inbox|read|reply|thread|wait``

Inside an agent the caller is its session (MAESTRO_SESSION_TOKEN); outside, the human.
``--message -`` reads the text from stdin.
"""

from __future__ import annotations

import sys

from maestroctl import paging

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any

TYPES = ["assignment", "status_update", "query", "response", "directive", "notification", "blocked"]
PRIORITIES = ["critical", "high", "normal", "low"]
SCOPES = ["all", "my-workers", "team"]
#: Extra seconds the socket waits beyond `mail wait --timeout`, so the daemon always answers first.
WAIT_GRACE = 30.0


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_)
    s = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    snd = s.add_parser("send", help="send a message to sessions (or the human)")
    snd.add_argument("--to", action="append", default=[], metavar="SESSION",
                     help='session id, unique prefix or name, or "human" (repeatable)')
    snd.add_argument("--to-coordinator", action="store_true",
                     help="to the session that spawned you (the human for a top-level session)")
    _content(snd, default_type="notification")
    snd.add_argument("--task", help="the task this is about")
    snd.set_defaults(func=send)

    b = s.add_parser("broadcast", help="send a message to every live session in a scope")
    b.add_argument("--scope", required=True, choices=SCOPES,
                   help="all: everyone you may reach; my-workers: sessions you spawned; team: your fellow workers")
    _content(b, default_type="directive")
    b.add_argument("--task", help="the task this is about")
    b.add_argument("--project", help="(human) with --scope all: only this project's sessions")
    b.set_defaults(func=broadcast)

    i = s.add_parser("inbox", help="your messages: unread first, then by priority, then newest")
    i.add_argument("--unread", action="store_true", help="only unread messages")
    i.add_argument("--type", choices=TYPES)
    i.add_argument("--thread", metavar="ID", help="only this thread (any message id in it)")
    i.add_argument("--mailbox", metavar="SESSION", help="another inbox you may read (human: any)")
    paging.add_args(i)
    i.set_defaults(func=inbox)

    r = s.add_parser("read", help="show a message and mark it read")
    r.add_argument("id", metavar="ID")
    r.set_defaults(func=read)

    rp = s.add_parser("reply", help="answer a message in its thread")
    rp.add_argument("id", metavar="ID")
    rp.add_argument("--message", required=True, help="the text (- reads stdin)")
    rp.add_argument("--type", choices=TYPES, default="response")
    rp.add_argument("--priority", choices=PRIORITIES, default="normal")
    rp.set_defaults(func=reply)

    t = s.add_parser("thread", help="every message of a thread, oldest first")
    t.add_argument("id", metavar="ID", help="the thread id or any message id in it")
    paging.add_args(t)
    t.set_defaults(func=thread)

    w = s.add_parser("wait", help="every unread message now, or block until one arrives (marks them read)")
    w.add_argument("--timeout", dest="wait_timeout", type=float, default=None, metavar="SECONDS",
                   help="give up after this long and print nothing ([] with --json); exit 0. "
                        "Default: wait until mail arrives")
    w.add_argument("--type", choices=TYPES, help="only messages of this type")
    w.add_argument("--peek", action="store_true", help="do not mark the messages read")
    w.set_defaults(func=wait)


def _content(p: argparse.ArgumentParser, default_type: str) -> None:
    p.add_argument("--type", choices=TYPES, default=default_type, help=f"default: {default_type}")
    p.add_argument("--subject", required=True)
    p.add_argument("--message", required=True, help="the text (- reads stdin)")
    p.add_argument("--priority", choices=PRIORITIES, default="normal")


def _text(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


def _sent(m: dict[str, Any]) -> str:
    to = ", ".join(m["to"]) if len(m["to"]) <= 5 else f"{len(m['to'])} sessions ({m['scope']})"
    return f"sent {m['id']} to {to} (thread {m['thread_id']})"


def _full(m: dict[str, Any]) -> str:
    from maestroctl.output import short_time

    to = ", ".join(m["to"]) if len(m["to"]) <= 5 else f"{len(m['to'])} sessions"
    if m.get("scope"):
        to += f" [{m['scope']}]"
    read = sum(1 for v in m["receipts"].values() if v)
    meta = [f"{m['id']}  {m['type']}  {m['priority']}  {short_time(m['created_at'])}",
            f"from {m['from_name']}" + (f" ({m['from']})" if m["from_name"] != m["from"] else "") + f" to {to}",
            f"thread {m['thread_id']}" + (f", reply to {m['reply_to']}" if m["reply_to"] else "")
            + (f", task {m['task_id']}" if m["task_id"] else "") + f", read by {read}/{len(m['receipts'])}",
            f"subject: {m['subject']}", "", m["body"]]
    return "\n".join(meta)


def _many(msgs: list[dict[str, Any]]) -> str:
    return "\n\n".join("── " + _full(m) for m in msgs)


def _table(msgs: list[dict[str, Any]]) -> str:
    from maestroctl.output import short_time, table

    if not msgs:
        return "no messages"
    rows = [{**m, "new": "*" if m.get("read_at") is None else "", "when": short_time(m["created_at"])}
            for m in msgs]
    return table(rows, [("new", "NEW"), ("id", "ID"), ("priority", "PRIO"), ("type", "TYPE"),
                        ("from_name", "FROM"), ("subject", "SUBJECT"), ("when", "WHEN")])


def send(rt: Any, a: argparse.Namespace) -> int:
    if not a.to and not a.to_coordinator:
        raise SystemExit("maestroctl mail send: give --to SESSION (repeatable) and/or --to-coordinator")
    params: dict[str, Any] = {"to": a.to, "to_coordinator": a.to_coordinator, "type": a.type,
                              "subject": a.subject, "body": _text(a.message), "priority": a.priority}
    if a.task:
        params["task"] = a.task
    rt.show("mail.send", params, _sent)
    return 0


def broadcast(rt: Any, a: argparse.Namespace) -> int:
    params: dict[str, Any] = {"scope": a.scope, "type": a.type, "subject": a.subject,
                              "body": _text(a.message), "priority": a.priority}
    if a.task:
        params["task"] = a.task
    if a.project:
        params["project"] = a.project
    rt.show("mail.broadcast", params, _sent)
    return 0


def inbox(rt: Any, a: argparse.Namespace) -> int:
    params: dict[str, Any] = {"unread": a.unread}
    for key in ("type", "thread", "mailbox"):
        if getattr(a, key):
            params[key] = getattr(a, key)
    paging.show(rt, "mail.inbox", params, _table, a.limit, a.cursor)
    return 0


def read(rt: Any, a: argparse.Namespace) -> int:
    rt.show("mail.read", {"id": a.id}, _full)
    return 0


def reply(rt: Any, a: argparse.Namespace) -> int:
    rt.show("mail.reply", {"id": a.id, "body": _text(a.message), "type": a.type, "priority": a.priority},
            _sent)
    return 0


def thread(rt: Any, a: argparse.Namespace) -> int:
    paging.show(rt, "mail.thread", {"id": a.id}, _many, a.limit, a.cursor)
    return 0


def wait(rt: Any, a: argparse.Namespace) -> int:
    # `maestroctl --timeout S mail wait` means the same as `mail wait --timeout S`.
    timeout = a.wait_timeout if a.wait_timeout is not None else rt.timeout
    if timeout is not None and timeout < 0:
        raise SystemExit("maestroctl mail wait: --timeout must be >= 0")
    params: dict[str, Any] = {"peek": a.peek}
    if a.type:
        params["type"] = a.type
    # Across a daemon restart the wait resumes (what is left of the timeout); one the daemon answered is never
    # sent again, so mail it marked read always reaches us. The socket outlives the daemon's wait by
    # WAIT_GRACE, or a slow answer would be cut off (and lost).
    value, raw = rt.reconnecting().wait_raw("mail.wait", params, timeout, grace=WAIT_GRACE)
    rt.show_answer(value, raw, lambda msgs: _many(msgs) if msgs else "no new mail")
    return 0
