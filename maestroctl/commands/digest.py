"""``maestroctl digest FILE [--mode tools|text] [--last N] [--json] [--utc]``: digest a transcript offline.

FILE is a Claude Code transcript or a Codex CLI rollout: the format is recognised from its first records.

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
    p = sub.add_parser(name, help=help_, description="Digest a Claude Code transcript or a Codex rollout (JSONL) without a daemon: "
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
    from shared.digest import DigestConfig, SessionDigest, agent_label_for_path, render_text
    from shared.transcript.formats import detect_format

    agent = agent_label_for_path(a.file) if a.file != "-" else None
    last = a.last or None
    # What shared.digest.digest_bytes does, keeping the parser for its counts of skipped lines.
    digest = SessionDigest(agent=agent, config=DigestConfig(retain=None if last is None else max(last, 1)),
                           format=detect_format(data))
    digest.feed(data)
    digest.finish()
    window = digest.window(a.mode, last, None)
    stats = digest.parser.stats
    skipped = stats.corrupt_lines + stats.oversized_lines
    if skipped:
        sys.stderr.write(f"maestroctl digest: skipped {skipped} unreadable line(s) ({stats.corrupt_lines} "
                         f"corrupt, {stats.oversized_lines} over {digest.parser.max_line_bytes} bytes)\n")
    if rt.json:
        out = window.to_dict()
        out["file"] = a.file
        rt.emit(out)
        return 0
    import datetime

    from maestroctl.output import safe  # agents' words: never terminal commands

    sys.stdout.write(safe(render_text(window, tz=datetime.UTC if a.utc else None)))
    return 0
