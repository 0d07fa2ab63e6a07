"""``maestroctl events watch|replay``"""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_)
    s = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    w = s.add_parser("watch", help="print events as they happen (Ctrl-C to stop)")
    w.add_argument("--topic", action="append", default=[], help="topic prefix, e.g. task. (repeatable)")
    w.add_argument("--since", type=int, default=None, metavar="SEQ",
                   help="first print the events after SEQ (resume an earlier watch)")
    w.set_defaults(func=watch)
    r = s.add_parser("replay", help="events after a seq")
    r.add_argument("--since", type=int, default=0)
    r.add_argument("--topic", action="append", default=[])
    r.add_argument("--limit", type=int, default=1000)
    r.set_defaults(func=replay)


def _line(ev: dict[str, Any]) -> str:
    data = ev.get("data", {})
    return f"{ev['seq']:>6} {ev['at'][11:23]} {ev['topic']:<24} {json.dumps(data, ensure_ascii=False)[:200]}"


def watch(rt: Any, a: argparse.Namespace) -> int:
    """Print events as they happen, across daemon restarts and drops (maestroctl.reconnect): every event
    once, in seq order; a one-line note on stderr when it reconnects."""
    if a.since is not None and a.since < 0:
        raise SystemExit("maestroctl events watch: --since must be >= 0")
    rc = rt.reconnecting()
    rc.subscribe(a.topic, since=a.since)
    from maestroctl.output import safe

    for ev in rc.events():
        sys.stdout.write((json.dumps(ev, ensure_ascii=False) if rt.json else safe(_line(ev))) + "\n")
        sys.stdout.flush()
    return 0


def replay(rt: Any, a: argparse.Namespace) -> int:
    r = rt.call("events.replay", {"since": a.since, "topics": a.topic, "limit": a.limit})
    rt.emit(r, lambda r: "\n".join(_line(e) for e in r["events"]) + ("\n(gap: older events were pruned)"
                                                                      if r["gap"] else ""))
    return 0
