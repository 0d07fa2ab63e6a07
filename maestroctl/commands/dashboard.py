"""``maestroctl dashboard [--print]``: open the live dashboard (or print its URL) -- for the person.

The URL (token in its fragment) comes from the daemon's ``web.info``, exactly as ``maestroctl web url``
gets it (the same refusals: an agent, or the feed off). ``webbrowser`` is imported only here, when a
browser is to be opened: it costs start-up time no other command should pay.
"""

from __future__ import annotations

import sys

from maestroctl.commands import web

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description="Open the dashboard (sessions, live terminal, tasks, "
                                                     "prompts) in a browser; it is served by maestrod on "
                                                     "127.0.0.1.")
    p.add_argument("--print", dest="print_only", action="store_true",
                   help="print the URL (with its token) instead of opening a browser")
    p.set_defaults(func=dashboard)


def dashboard(rt: Any, args: argparse.Namespace) -> int:
    info = web._info(rt)
    if info is None:
        return 1
    address = info["dashboard_url"]
    if args.print_only or rt.json:
        rt.emit({"url": address}, address)
        return 0
    import webbrowser

    if not webbrowser.open(address):
        sys.stderr.write("maestroctl: no browser found to open; the dashboard is at:\n")
        rt.emit({"url": address}, address)
        return 0
    sys.stderr.write("maestroctl: opened the dashboard in your browser\n")
    return 0
