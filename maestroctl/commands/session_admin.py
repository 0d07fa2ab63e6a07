"""``maestroctl session delete|prune|history|explain`` and ``session output --tail N``.

These subcommands belong to the ``session`` group; :func:`register_admin` adds them to its sub-parsers
(one call in ``maestroctl/commands/session.py``)::

    maestroctl [--json] session delete ID
    maestroctl [--json] session prune [--project P] [--older-than 7d]
    maestroctl [--json] session history ID [--limit N]
    maestroctl [--json] session explain ID
    maestroctl [--json] session output ID --tail N

``output --tail`` is built on ``session.output`` (base64 ``data`` from an ``offset``, with ``total`` and
``start``): it reads backwards from the end in growing windows until it holds N lines (or the scrollback's
oldest byte), so the daemon needs nothing new.  The human form decodes UTF-8 (with replacement), strips
escape sequences and applies carriage returns; ``--json`` prints ``session.output``'s shape for those bytes.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any

#: ``session.output`` gives at most this many bytes per call.
OUTPUT_MAX = 1024 * 1024
#: The first window ``output --tail`` reads; it grows four-fold until it holds enough lines.
TAIL_WINDOW = 16 * 1024
WITNESSES = ["process", "hooks", "transcript", "screen", "person"]
#: What a ``session.hook`` timeline row shows besides the event name.
HOOK_FIELDS = ("tool_name", "notification_type", "source", "reason", "message", "refused_transcript_path",
               "refused_reason")
PRUNED_COLUMNS = [("id", "ID"), ("name", "NAME"), ("project_id", "PROJECT"), ("exit_reason", "EXIT"),
                  ("exit_code", "CODE"), ("exited_at", "EXITED")]


def register_admin(s: Any) -> None:
    """Add ``delete``, ``prune``, ``history`` and ``explain`` to the ``session`` group's sub-parsers ``s``."""
    d = s.add_parser("delete", help="remove an exited session and its rows (prompts, timeline)",
                     description="Remove an exited session with its rows. A live session is refused: "
                                 "stop it first.")
    d.add_argument("id", help="id, unique prefix, or name")
    d.set_defaults(func=delete)

    pr = s.add_parser("prune", help="remove exited sessions (of a project, exited long enough ago)",
                      description="Remove every exited session (of --project; that exited longer ago "
                                  "than --older-than) with its rows, and list them. Live sessions are never "
                                  "touched.")
    pr.add_argument("--project", help="only this project's sessions (id, prefix or name)")
    pr.add_argument("--older-than", metavar="DURATION",
                    help="only sessions that exited longer ago than this: 30m, 2h, 7d, 1w (or 1d12h)")
    pr.set_defaults(func=prune)

    h = s.add_parser("history", help="the session's timeline: status changes and why, prompts, hooks, input",
                     description="One line per timeline row: status changes with reason and source, prompts "
                                 "with their state (and, while queued, why they wait), attention, hooks, "
                                 "input, attach.")
    h.add_argument("id", help="id, unique prefix, or name")
    h.add_argument("--limit", type=int, default=200, metavar="N", help="the latest N rows (default 200)")
    h.set_defaults(func=history)

    e = s.add_parser("explain", help="why the session has its status, and whether a prompt may be typed now",
                     description="The current status, the source that decided it, each source's latest "
                                 "observation and its age, the screen rule that matched, the input gate and "
                                 "the queued prompts.")
    e.add_argument("id", help="id, unique prefix, or name")
    e.set_defaults(func=explain)


# ------------------------------------------------------------------------------------------------ rendering


def _clock(ts: str | None) -> str:
    from maestroctl.commands.session_log import _clock as clock

    return clock(ts)


def _short(text: Any, width: int = 80) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= width else s[: width - 1] + "…"


def _quote(text: Any, width: int = 60) -> str:
    return '"' + _short(text, width) + '"'


def _age(seconds: Any) -> str:
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60)}s"
    if s < 86400:
        return f"{int(s // 3600)}h {int(s % 3600 // 60)}m"
    return f"{int(s // 86400)}d {int(s % 86400 // 3600)}h"


def _removed(r: dict[str, Any]) -> str:
    from maestroctl.output import table

    from maestroctl.output import safe

    kept = "".join(f"\nkept {k['id']}: {safe(k['why'])}" for k in r.get("kept", []))
    if not r["deleted"]:
        return "no exited sessions to remove" + kept
    rows = [dict(x, exited_at=(x.get("exited_at") or "")[:19].replace("T", " ") or None)
            for x in r["deleted"]]
    return f"removed {r['count']} exited session(s):\n" + table(rows, PRUNED_COLUMNS) + kept


def _deleted(r: dict[str, Any]) -> str:
    return "\n".join(f"deleted {x['id']} ({x['name']})" for x in r["deleted"])


def _status_details(d: dict[str, Any]) -> str:
    text = f"{d.get('from', '?')} -> {d.get('to', '?')}"
    if d.get("to") == "exited" and (d.get("exit_reason") or d.get("exit_code") is not None):
        text += f" ({d.get('exit_reason') or '?'}, code {d.get('exit_code')})"
    source, reason = d.get("source"), d.get("reason")
    if source and reason:
        text += f"  ({source}: {reason})"
    elif source or reason:
        text += f"  ({source or reason})"
    return text


def _prompt_state(p: dict[str, Any] | None) -> str:
    if p is None:
        return ""
    state = p.get("state") or "?"
    if state == "queued" and p.get("held"):
        return f"  [queued, held: {p['held']}]"
    return f"  [{state}]"


def entry_details(e: dict[str, Any], prompts: dict[int, dict[str, Any]]) -> str:
    """The details column of one timeline row (``session history``)."""
    d = e.get("data") or {}
    kind = e.get("type", "")
    by = e.get("actor")
    if kind == "session.status":
        return _status_details(d)
    if kind == "session.prompt":
        flags = "".join([" (paste)" if d.get("mode") == "paste" else "", " --now" if d.get("now") else ""])
        pid = d.get("prompt_id")
        text = _quote(d.get("text", ""))
        return (f"#{pid} from {d.get('source', by)}{flags}, {d.get('chars', '?')} chars: {text}"
                + _prompt_state(prompts.get(pid) if isinstance(pid, int) else None))
    if kind == "session.prompt_delivered":
        how = d.get("witness") or "the UserPromptSubmit hook"
        return f"#{d.get('prompt_id')} confirmed by {how} (from {d.get('source', '?')})"
    if kind == "session.needs_attention":
        source = f"  ({d['source']})" if d.get("source") else ""
        if d.get("reason") is None:
            return "cleared" + source
        return _quote(d["reason"], 100) + source
    if kind == "session.hook":
        parts = [str(d.get("event", "?"))]
        parts += [f"{k}={_short(d[k], 60)}" for k in HOOK_FIELDS if d.get(k) not in (None, "")]
        return " ".join(parts)
    if kind == "session.input":
        if d.get("key"):
            return f"key {d['key']}" + (" (interrupt)" if d.get("interrupt") else "") + f"  by {by}"
        return f"{d.get('bytes', '?')} byte(s): {_quote(d.get('text', ''))}  by {by}"
    if kind == "session.attach":
        if d.get("attached"):
            return f"a viewer attached ({d.get('viewers', '?')} viewing)  by {by}"
        return f"a viewer detached: {d.get('reason', '?')} ({d.get('viewers', '?')} viewing)  by {by}"
    if kind == "session.spawned":
        name = _quote(d.get("name", ""), 40)
        text = f"{d.get('agent', '?')} {d.get('role', '?')} {name} in {d.get('cwd', '?')}"
        if d.get("parent_id"):
            text += f", parent {d['parent_id']}"
        return text + f"  by {by}"
    if kind == "session.resized":
        return f"{d.get('rows')}x{d.get('cols')}  by {by}"
    if kind == "session.stop":
        return f"{d.get('how', 'stop')} ({', '.join(d.get('signals') or [])})  by {by}"
    if kind == "session.resumed":
        cut = ", its last turn cut off" if d.get("cut_off") else ""
        return f"with {d.get('how', '--resume')}{cut}: {d.get('reason', '?')}  by {by}"
    if kind == "session.suspended":
        return f"{d.get('reason', '?')} (it was {d.get('status', '?')})"
    return " ".join(f"{k}={_short(v, 60)}" for k, v in d.items()) + (f"  by {by}" if by else "")


def render_history(r: dict[str, Any]) -> str:
    prompts = {p["id"]: p for p in r.get("prompts", [])}
    name = f" ({r['name']})" if r.get("name") else ""
    lines = [f"# {r['id']}{name}: {len(r.get('entries', []))} timeline row(s)"]
    for e in r.get("entries", []):
        kind = e.get("type", "")
        short = kind[len("session."):] if kind.startswith("session.") else kind
        lines.append(f"{_clock(e.get('at'))}  {short}  {entry_details(e, prompts)}".rstrip())
    queued = [p for p in r.get("prompts", []) if p.get("state") == "queued"]
    if queued:
        lines.append("queued prompts: " + "; ".join(
            f"#{p['id']} from {p.get('sender', '?')}" + (f" (held: {p['held']})" if p.get("held") else "")
            for p in queued))
    return "\n".join(lines)


def _witness(w: dict[str, Any] | None) -> str:
    """``ScreenSeen kind=dialog rule=trust-folder reason="..."  (0.4 s ago)``."""
    if w is None:
        return "nothing seen yet"
    age = w.get("age_s")
    parts = [str(w["observation"])] if w.get("observation") is not None else []
    parts += [f"{k}={_quote(v) if isinstance(v, str) and ' ' in v else _short(v, 60)}"
              for k, v in w.items() if k not in ("observation", "age_s")]
    return " ".join(parts) + (f"  ({_age(age)} ago)" if age is not None else "")


def render_explain(r: dict[str, Any]) -> str:
    """``session explain``'s human form (``r`` is ``session.explain``'s result)."""
    gate = r.get("gate") or {}
    rows: list[tuple[str, str]] = [
        ("status", f"{r.get('status')}: {r.get('reason') or '-'}"),
        ("decided by", str(r.get("witness") or r.get("source") or "-")),
    ]
    if r.get("needs_attention"):
        rows.append(("attention", f"{r['needs_attention']}  (from {r.get('attention_source') or '?'})"))
    else:
        rows.append(("attention", "none"))
    rows.append(("prompt gate", f"{'open' if gate.get('open') else 'closed'}: {gate.get('reason', '-')}"))
    held = f"; the first waits: {r['held']}" if r.get("held") and r.get("queued_prompts") else ""
    rows.append(("queued", f"{r.get('queued_prompts', 0)} prompt(s){held}"))
    witnesses = r.get("witnesses") or {}
    screen = witnesses.get("screen")
    if r.get("screen_rules") is None:
        rows.append(("screen rules", "no screen rules apply to this program"))
    else:
        rows.append(("screen rules", str(r["screen_rules"])))
        if screen and screen.get("rule"):
            why = f": {screen['reason']}" if screen.get("reason") else ""
            rows.append(("rule matched", f"{screen['rule']} ({screen.get('kind', '?')}){why}"))
        else:
            rows.append(("rule matched", "none"))
    rows += [(f"  {name}", _witness(witnesses.get(name))) for name in WITNESSES]
    width = max(len(k) for k, _ in rows)
    head = f"{r.get('id')} ({r.get('name')})"
    return "\n".join([head] + [f"  {k.ljust(width)}  {v}" for k, v in rows[:-len(WITNESSES)]]
                     + ["  witnesses (each source's latest observation):"]
                     + [f"  {k.ljust(width)}  {v}" for k, v in rows[-len(WITNESSES):]])


# ------------------------------------------------------------------------------------------------ commands


def delete(rt: Any, a: argparse.Namespace) -> int:
    rt.show("session.delete", {"id": a.id}, _deleted)
    return 0


def prune(rt: Any, a: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if a.project is not None:
        params["project"] = a.project
    if a.older_than is not None:
        params["older_than"] = a.older_than
    rt.show("session.prune", params, _removed)
    return 0


def history(rt: Any, a: argparse.Namespace) -> int:
    rt.show("session.history", {"id": a.id, "limit": a.limit}, render_history)
    return 0


def explain(rt: Any, a: argparse.Namespace) -> int:
    rt.show("session.explain", {"id": a.id}, render_explain)
    return 0


# ------------------------------------------------------------------------------------------- output --tail


def tail_start(data: bytes, n: int) -> int | None:
    """Where the last ``n`` lines of ``data`` start (a final line without a newline counts), or None when
    ``data`` holds fewer line breaks than that (older bytes are needed)."""
    pos = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(n):
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            return None
    return pos + 1


def _read(client: Any, sid: str, start: int, end: int) -> tuple[int, bytes]:
    """Bytes ``start..end`` of the scrollback: ``(offset of the first byte held, data)`` (the offset is
    later than ``start`` when the scrollback dropped those bytes meanwhile)."""
    import base64

    got: int | None = None
    parts: list[bytes] = []
    offset = start
    while offset < end:
        limit = min(end - offset, OUTPUT_MAX)
        r = client.call("session.output", {"id": sid, "offset": offset, "limit": limit})
        if got is None:
            got = r["offset"]
        elif r["offset"] > offset:  # dropped in between: what we hold is no longer contiguous
            got, parts = r["offset"], []
        chunk = base64.b64decode(r["data"])
        if not chunk:
            break
        parts.append(chunk)
        offset = r["offset"] + len(chunk)
    return (start if got is None else got), b"".join(parts)


def read_tail(client: Any, ident: str, n: int) -> dict[str, Any]:
    """The last ``n`` lines of the session's output, in ``session.output``'s shape plus ``lines``."""
    import base64

    probe = client.call("session.output", {"id": ident, "offset": 0, "limit": 1})
    sid, total = probe["id"], probe["total"]
    first_held = probe["offset"]  # the oldest byte the scrollback still holds
    lo, data = total, b""
    window = TAIL_WINDOW
    while lo > first_held and tail_start(data, n) is None:
        frm = max(first_held, lo - window)
        got, chunk = _read(client, sid, frm, lo)
        if got > frm:  # the scrollback moved on while we read: keep what is contiguous with the end
            first_held = got
        data, lo = chunk + data, got
        window *= 4
    cut = tail_start(data, n) or 0
    out = data[cut:]
    lines = out.count(b"\n") + (0 if out.endswith(b"\n") or not out else 1)
    return {"id": sid, "offset": lo + cut, "next_offset": lo + len(data), "total": total, "start": first_held,
            "lines": lines, "truncated": lines < n and first_held > 0,
            "data": base64.b64encode(out).decode()}


def plain_text(data: bytes) -> str:
    """Terminal output as text: UTF-8 (with replacement), escape sequences and control characters removed,
    carriage returns applied (``50%\\r100%`` shows ``100%``)."""
    import re

    text = data.decode("utf-8", "replace")
    text = re.sub(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?"
                  r"|[ -/]*[0-~])?|\x9b[0-?]*[ -/]*[@-~]", "", text)
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
    lines = []
    for line in text.split("\n"):
        shown = ""
        for part in line.split("\r"):
            shown = part + shown[len(part):]
        lines.append(shown.rstrip())
    return "\n".join(lines)


def output_tail(rt: Any, a: argparse.Namespace) -> int:
    if a.tail < 1:
        raise SystemExit("maestroctl session output: --tail must be at least 1")
    if a.offset is not None:
        raise SystemExit("maestroctl session output: give --tail or --offset, not both")
    r = read_tail(rt.client(), a.id, a.tail)
    if rt.json:
        rt.emit(r)
        return 0
    import base64

    if r["truncated"]:
        sys.stderr.write(f"maestroctl: only {r['lines']} line(s) are still in the scrollback\n")
    text = plain_text(base64.b64decode(r["data"]))
    if text:
        from maestroctl.output import safe  # what escape sequences plain_text does not know

        sys.stdout.write(safe(text.rstrip("\n")) + "\n")
    return 0
