"""``maestroctl digest FILE [--mode tools|text] [--last N] [--json] [--utc]``: digest a transcript offline.

No daemon involved: people use it on old sessions (and tests on sample files).  The digest code
(:mod:`shared.digest`, with attrs/msgspec/orjson) is imported inside the command, so every other
command keeps its start-up time.

Exit codes: 0 ok; 2 usage error or FILE unreadable.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any

EXIT_USAGE = 2


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description="Digest a Claude Code transcript (JSONL) without a daemon: "
                       "one line per step (tools) or only the words (text), with state, tokens and cost.")
    p.add_argument("file", metavar="FILE", help="a transcript .jsonl (- reads stdin)")
    p.add_argument("--mode", choices=["tools", "text"], default="tools",
                   help="tools: one line per step (default); text: only the agent's words and the prompts")
    p.add_argument("--last", type=int, default=20, metavar="N", help="entries to show (default 20; 0: all)")
    p.add_argument("--utc", action="store_true", help="print times in UTC instead of local time")
    p.set_defaults(func=run)


def run(rt: Any, a: argparse.Namespace) -> int:
    if a.last < 0:
        sys.stderr.write("maestroctl digest: --last must be >= 0\n")
        return EXIT_USAGE
    try:
        if a.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(a.file, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        sys.stderr.write(f"maestroctl digest: cannot read {a.file}: {exc.strerror or exc}\n")
        return EXIT_USAGE
    from shared.digest import agent_label_for_path, digest_bytes, render_text

    agent = agent_label_for_path(a.file) if a.file != "-" else None
    window = digest_bytes(data, a.mode, a.last or None, agent=agent)
    if rt.json:
        out = window.to_dict()
        out["file"] = a.file
        rt.emit(out)
        return 0
    import datetime

    sys.stdout.write(render_text(window, tz=datetime.UTC if a.utc else None))
    return 0
