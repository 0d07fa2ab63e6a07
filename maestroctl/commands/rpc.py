"""``maestroctl rpc METHOD [JSON-PARAMS]``: the raw escape hatch."""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description="Call any method; prints the raw JSON result.")
    p.add_argument("method", help="e.g. system.methods")
    p.add_argument("params", nargs="?", default=None, help="JSON object of params ('-' reads stdin)")
    p.set_defaults(func=run)


def run(rt: Any, args: argparse.Namespace) -> int:
    params = None
    if args.params is not None:
        raw = sys.stdin.read() if args.params == "-" else args.params
        try:
            params = json.loads(raw)
        except json.JSONDecodeError as exc:
            sys.stderr.write(f"maestroctl: params are not valid JSON: {exc}\n")
            return 2
    result = rt.call(args.method, params)
    from maestroctl.output import print_json

    print_json(result)
    return 0
