"""``maestroctl session log|digests|usage``: a session's transcript digest, several at once, tokens and cost.

These subcommands belong to the ``session`` group; :func:`register_log` adds them to its sub-parsers
(one call in ``maestroctl/commands/session.py``)::

    maestroctl [--json] session log ID [--mode tools|text] [--last N] [--follow]
    maestroctl [--json] session digests [ID ...] [--my-workers] [--mode tools|text] [--last N]
    maestroctl [--json] session usage ID

``--follow`` subscribes to the ``session.digest`` events (and ``session.status``, to notice the exit),
then reads the window once and prints the entries that come after it (by ``seq``, so nothing is shown
twice), until Ctrl-C or the session exits; across a daemon restart it reconnects and resumes from the last
event it saw (:mod:`maestroctl.reconnect`).  With ``--json`` it prints the window, then one line per new
(or grown, ``"updated": true``) entry.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any

MODES = ["tools", "text"]


def register_log(s: Any) -> None:
    """Add ``log``, ``digests`` and ``usage`` to the ``session`` group's sub-parsers ``s``."""
    lg = s.add_parser("log", help="the session's transcript digest: one line per step (or only its words)",
                      description="What the agent did, from its Claude Code transcript: one line per step "
                                  "(tools) or only its words and the prompts (text). --follow streams new "
                                  "entries until the session exits.")
    lg.add_argument("id", help="id, unique prefix, or name")
    lg.add_argument("--mode", choices=MODES, default="tools")
    lg.add_argument("--last", type=int, metavar="N", help="entries to show (default: the daemon's window, 20)")
    lg.add_argument("--follow", action="store_true", help="keep printing new entries (Ctrl-C to stop)")
    lg.set_defaults(func=log)

    dg = s.add_parser("digests", help="digests of several sessions (e.g. --my-workers)")
    dg.add_argument("ids", nargs="*", metavar="ID", help="sessions (none, from a person: every live session)")
    dg.add_argument("--my-workers", action="store_true", help="(inside a session) the sessions it spawned")
    dg.add_argument("--mode", choices=MODES, default="tools")
    dg.add_argument("--last", type=int, metavar="N", help="entries per session (default 20)")
    dg.set_defaults(func=digests)

    us = s.add_parser("usage", help="tokens and estimated cost of a session")
    us.add_argument("id")
    us.set_defaults(func=usage)


# ------------------------------------------------------------------------------------------------ rendering


def _clock(ts: str | None) -> str:
    if not ts:
        return "--:--:--"
    from datetime import datetime

    try:
        return datetime.fromisoformat(ts).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return "--:--:--"


def _tokens(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n / 1e3:.1f}k" if n >= 1000 else str(n)


def entry_line(e: dict[str, Any], own_agent: str | None = None) -> str:
    marker = "↳ " if e.get("agent") is not None and e.get("agent") != own_agent else ""
    repeat = f" ×{e['count']}" if e.get("count", 1) > 1 else ""
    return f"{_clock(e.get('timestamp'))} {marker}{e.get('summary', '')}{repeat}"


def header(w: dict[str, Any]) -> str:
    parts = [f"{w.get('name')} ({w.get('id')})", w.get("status") or "?"]
    if w.get("state") and w.get("state") != w.get("status"):
        parts.append(f"transcript: {w['state']}")
    if w.get("needs_attention"):
        parts.append(f"⚠ {w.get('attention_reason')}")
    elif w.get("stuck"):
        parts.append("stuck")
    wt = w.get("worktree")
    if wt and not wt.get("removed"):
        parts.append(f"branch {wt['branch']} +{wt.get('ahead', 0)}" + (" (uncommitted)" if wt.get("dirty") else ""))
    if "entries" in w:
        parts.append(f"{len(w['entries'])}/{w.get('total_entries', 0)} {w.get('mode', '')}".rstrip())
    u = w.get("usage")
    if u:
        parts.append(f"tok in {_tokens(u['input_tokens'])} out {_tokens(u['output_tokens'])} "
                     f"cache {_tokens(u['cache_read_tokens'])}r/{_tokens(u['cache_creation_tokens'])}w "
                     f"≈${w.get('cost_usd', 0):.2f}")
    return "# " + " · ".join(parts)


def render_window(w: dict[str, Any]) -> str:
    if w.get("digest", True) is None:
        return header(w) + "\n(no transcript digest)"
    lines = [header(w)]
    lines.extend(entry_line(e, w.get("agent")) for e in w.get("entries", []))
    clock = _clock(w.get("last_activity"))
    lines.extend(f"{clock} … {summary}" for summary in w.get("running", []))
    if w.get("thinking_since"):
        lines.append(f"{_clock(w['thinking_since'])} … [THINKING]")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ commands


def _params(a: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"mode": a.mode, **extra}
    if a.last is not None:
        params["last"] = a.last
    return params


def log(rt: Any, a: argparse.Namespace) -> int:
    params = _params(a, id=a.id)
    if not a.follow:
        rt.show("session.digest", params, render_window)
        return 0
    return _follow(rt, a, params)


def _follow(rt: Any, a: argparse.Namespace, params: dict[str, Any]) -> int:
    # Reconnects after a daemon restart or a drop and resumes from the last event (maestroctl.reconnect).
    rc = rt.reconnecting()
    rc.subscribe(["session.digest", "session.status"])
    # Events arriving before the window stay queued in the client; the seq filter below sorts them.
    window = rc.call("session.digest", params, repeatable=True)
    out = sys.stdout
    from maestroctl.output import safe  # agents' words: never terminal commands

    if rt.json:
        from maestroctl import wire

        dumps = wire.dumps
        out.write(dumps(window) + "\n")
    else:
        out.write(safe(render_window(window)) + "\n")
    out.flush()
    if window.get("status") == "exited":
        return 0
    sid = window["id"]
    own_agent = window.get("agent")
    entries = window.get("entries") or []
    last_seq = entries[-1]["seq"] if entries else window.get("total_entries", 0) - 1
    for ev in rc.events():
        data = ev.get("data") or {}
        topic = ev.get("topic")
        if topic == "session.status":
            if data.get("session_id") == sid and data.get("to") == "exited":
                return 0
            continue
        if topic != "session.digest" or data.get("session_id") != sid:
            continue
        new = [(e, False) for e in data.get("appended", {}).get(a.mode, []) if e["seq"] > last_seq]
        grown = [(e, True) for e in data.get("updated", {}).get(a.mode, []) if e["seq"] <= last_seq]
        for e, updated in grown + new:
            if rt.json:
                out.write(dumps({"session_id": sid, "updated": updated, **e}) + "\n")
            else:
                out.write(safe(entry_line(e, own_agent)) + "\n")
            last_seq = max(last_seq, e["seq"])
        if new or grown:
            out.flush()
    return 0


def digests(rt: Any, a: argparse.Namespace) -> int:
    params = _params(a, ids=a.ids, my_workers=a.my_workers)
    rt.show("session.digests", params,
            lambda r: "\n\n".join(render_window(w) for w in r["sessions"]) or "(no sessions)")
    return 0


def usage(rt: Any, a: argparse.Namespace) -> int:
    def human(r: dict[str, Any]) -> str:
        u = r["usage"]
        lines = [f"{r['name']} ({r['id']}): ≈${r['cost_usd']:.4f}"
                 + (f" (Claude Code reports ${r['reported_cost_usd']:.4f})" if r.get("reported_cost_usd") else ""),
                 (f"  input {u['input_tokens']}  output {u['output_tokens']}  cache read {u['cache_read_tokens']}"
                  f"  cache write {u['cache_creation_tokens']}")]
        for model, m in r.get("by_model", {}).items():
            lines.append(f"  {model}: in {m['input_tokens']} out {m['output_tokens']} ≈${m['cost_usd']:.4f}")
        if r.get("unpriced_models"):
            lines.append(f"  (no price known for: {', '.join(r['unpriced_models'])})")
        return "\n".join(lines)

    rt.show("session.usage", {"id": a.id}, human)
    return 0
