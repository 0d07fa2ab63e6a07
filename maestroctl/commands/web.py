"""``maestroctl web token|url``: the web feed's token and the dashboard's address, for the person.

Both ask the daemon (``web.info``) rather than reading the port and token files beside the socket: the
daemon is what knows the caller -- an agent is refused by its session token *or* because its process is
in an agent's tree (maestrod/identity.py), which a client-side check could not see through
``env -u MAESTRO_SESSION_TOKEN`` -- and it knows the port it actually listens on (``port = 0``) and
whether the feed is on at all. It is one ordinary call, so the client stays as lean as every other
command. Exit codes: 0 printed; 1 refused (an agent) or the feed is off; 3 the daemon is unreachable.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description="The WebSocket feed and dashboard on 127.0.0.1 "
                                                     "(for the person; agents are refused).")
    s = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    s.add_parser("token", help="print the web feed's token").set_defaults(func=token)
    s.add_parser("url", help="print the dashboard's URL, token in its fragment").set_defaults(func=url)


def _info(rt: Any) -> dict[str, Any] | None:
    info = rt.call("web.info")
    if not info.get("enabled"):
        sys.stderr.write("maestroctl: the web feed is off (maestrod --no-web, [web] enabled = false, "
                         "or its port was taken: see the daemon log)\n")
        return None
    return info  # type: ignore[no-any-return]


def token(rt: Any, args: argparse.Namespace) -> int:
    info = _info(rt)
    if info is None:
        return 1
    rt.emit({"token": info["token"]}, info["token"])
    return 0


def url(rt: Any, args: argparse.Namespace) -> int:
    info = _info(rt)
    if info is None:
        return 1
    rt.emit({"url": info["dashboard_url"]}, info["dashboard_url"])
    return 0
