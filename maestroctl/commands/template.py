"""``maestroctl template list|get``"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_)
    s = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    ls = s.add_parser("list", help="every workflow template")
    from maestroctl import paging

    paging.add_args(ls)
    ls.set_defaults(func=list_)
    g = s.add_parser("get", help="print one template's text")
    g.add_argument("name", help="e.g. execute-simple, coordinate-dag")
    g.set_defaults(func=get)


def list_(rt: Any, a: argparse.Namespace) -> int:
    from maestroctl.output import table

    from maestroctl import paging

    paging.show(rt, "template.list", {},
                lambda rows: table(rows, [("name", "NAME"), ("role", "ROLE"), ("source", "SOURCE"),
                                          ("description", "DESCRIPTION")], max_width=90), a.limit, a.cursor)
    return 0


def get(rt: Any, a: argparse.Namespace) -> int:
    rt.show("template.get", {"name": a.name}, lambda t: t["text"])
    return 0
