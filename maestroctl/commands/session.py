"""``maestroctl session spawn|list|get|screen|output|prompt|input|interrupt|resize|stop|kill|attach|wait``
(and ``log|digests|usage`` from :mod:`maestroctl.commands.session_log`, ``delete|prune|history|explain``
and ``output --tail`` from :mod:`maestroctl.commands.session_admin`)

Inside an agent the caller is its session (MAESTRO_SESSION_TOKEN): a session it spawns gets it
as parent (only coordinators may spawn), and ``list --my-workers`` / ``--siblings`` are relative to it.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any

STATUSES = ["queued", "spawning", "working", "waiting_input", "idle", "hibernated", "exited", "unknown"]
#: Extra seconds the socket waits beyond `session wait --timeout`, so the daemon always answers first.
WAIT_GRACE = 30.0
COLUMNS = [
    ("id", "ID"),
    ("name", "NAME"),
    ("role", "ROLE"),
    ("status", "STATUS"),
    ("agent", "AGENT"),
    ("parent_id", "PARENT"),
    ("project_id", "PROJECT"),
    ("pid", "PID"),
    ("resources", "RSS/CPU"),
    ("needs_attention", "ATTENTION"),
]
#: ``session input --key NAME``
KEYS = {
    "enter": b"\r",
    "tab": b"\t",
    "escape": b"\x1b",
    "esc": b"\x1b",
    "backspace": b"\x7f",
    "space": b" ",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
    "ctrl-c": b"\x03",
    "ctrl-d": b"\x04",
    "ctrl-z": b"\x1a",
    "ctrl-l": b"\x0c",
    "ctrl-u": b"\x15",
}


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_)
    s = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    sp = s.add_parser(
        "spawn",
        help="start Claude Code (or `-- ARGV...`) in a terminal maestrod owns",
        description="Start a session. Without `-- ARGV` it is Claude Code with maestro's hooks; "
        "with `-- ARGV` any program (e.g. `-- bash -i`). With --agent claude (or codex: the Codex CLI, "
        "docs/codex.md), `-- ARGS` are extra arguments for the agent.",
    )
    sp.add_argument("--project", help="project id/prefix/name (default: $MAESTRO_PROJECT_ID)")
    sp.add_argument("--name", required=True)
    sp.add_argument("--cwd", help="working directory (default: the project's directory)")
    sp.add_argument("--role", choices=["worker", "coordinator"], default="worker")
    sp.add_argument("--parent", help="parent session (default: the calling session, if any)")
    sp.add_argument("--prompt", help="first prompt, delivered when the agent is ready (- reads stdin)")
    sp.add_argument(
        "--agent",
        choices=["claude", "codex", "command"],
        help="claude (default without ARGV), codex (Codex CLI) or command (default with ARGV)",
    )
    sp.add_argument("--allowed-tools", help='claude --allowedTools, e.g. "Bash Read Edit"')
    sp.add_argument("--permission-mode", help="claude --permission-mode (e.g. acceptEdits, default, plan)")
    sp.add_argument(
        "--task", action="append", default=[], metavar="ID", help="a task it works on (repeatable)"
    )
    sp.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment (repeatable)"
    )
    sp.add_argument(
        "--template",
        metavar="NAME",
        help="workflow template for the agent's system prompt (default: execute-simple for a worker, "
        "coordinate-default for a coordinator; none: no workflow; see `maestroctl template list`)",
    )
    sp.add_argument(
        "--subject", help="directive subject: shown as <coordinator_directive> and sent as its first mail"
    )
    sp.add_argument(
        "--message",
        help="directive text (- reads stdin); a Claude agent without --prompt is told to start on it",
    )
    sp.add_argument("--worktree", action="store_true",
                    help="start in a new git worktree of the repository at --cwd, on a new branch")
    sp.add_argument("--branch", help="with --worktree: the new branch (default: maestro/NAME)")
    sp.add_argument("--base", help="with --worktree: the commit or branch to start from (default: HEAD)")
    sp.add_argument("--worktree-of", metavar="SESSION",
                    help="start in the worktree of this exited session (its branch and its work)")
    sp.add_argument("--rows", type=int, help="terminal rows (default 40)")
    sp.add_argument("--cols", type=int, help="terminal columns (default 120)")
    sp.add_argument("argv", nargs="*", metavar="ARGV", help="after --: the program to run and its arguments")
    sp.set_defaults(func=spawn)

    ls = s.add_parser("list", help="list sessions")
    ls.add_argument("--project")
    ls.add_argument("--status", action="append", choices=STATUSES, help="repeatable")
    ls.add_argument("--active", action="store_true", help="leave out exited sessions")
    ls.add_argument("--parent", help="sessions spawned by this one")
    ls.add_argument("--my-workers", action="store_true", help="(inside a session) the sessions it spawned")
    ls.add_argument(
        "--siblings", action="store_true", help="(inside a session) the other sessions of its coordinator"
    )
    from maestroctl import paging

    paging.add_args(ls)
    ls.set_defaults(func=list_)

    g = s.add_parser("get", help="show one session")
    g.add_argument("id", help="id, unique prefix, or name")
    g.set_defaults(func=get)

    sc = s.add_parser("screen", help="print what the session's terminal shows now")
    sc.add_argument("id")
    sc.set_defaults(func=screen)

    o = s.add_parser("output", help="write raw output bytes (from the scrollback), or the last N lines",
                     description="Raw output bytes from --offset; or, with --tail N, the last N lines as "
                                 "text (escape sequences stripped; --json: the raw bytes in base64).")
    o.add_argument("id")
    o.add_argument("--offset", type=int, help="absolute byte offset (default 0)")
    o.add_argument("--limit", type=int, default=1024 * 1024)
    o.add_argument("--tail", type=int, metavar="N", help="the latest N lines of output instead")
    o.set_defaults(func=output)

    pr = s.add_parser("prompt", help="send a prompt: pasted, then Enter; queued while the agent is working")
    pr.add_argument("id")
    pr.add_argument("--message", required=True, help="the prompt (- reads stdin); at most 10,000 characters")
    pr.add_argument("--mode", choices=["send", "paste"], default="send", help="paste: do not press Enter")
    pr.add_argument("--now", action="store_true", help="deliver even while the agent is working")
    pr.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="wait until the agent confirms it received the prompt (exit 1 if it does not)",
    )
    pr.set_defaults(func=prompt)

    i = s.add_parser("input", help="type raw keys into the session")
    i.add_argument("id")
    i.add_argument("--text", help="keys to type as is (e.g. $'ls\\r')")
    i.add_argument(
        "--key",
        action="append",
        default=[],
        choices=sorted(KEYS),
        help="a named key after the text (repeatable)",
    )
    i.set_defaults(func=input_)

    it = s.add_parser("interrupt", help="interrupt the agent (Escape for Claude, Ctrl-C otherwise)")
    it.add_argument("id")
    it.set_defaults(func=interrupt)

    rs = s.add_parser("resize", help="change the terminal size")
    rs.add_argument("id")
    rs.add_argument("--rows", type=int, required=True)
    rs.add_argument("--cols", type=int, required=True)
    rs.set_defaults(func=resize)

    st = s.add_parser("stop", help="stop: SIGHUP, then SIGTERM, then SIGKILL")
    st.add_argument("id")
    st.add_argument("--no-wait", action="store_true", help="do not wait for the process to exit")
    st.set_defaults(func=stop)

    k = s.add_parser("kill", help="kill at once (SIGKILL)")
    k.add_argument("id")
    k.set_defaults(func=kill)

    hb = s.add_parser("hibernate", help="stop an idle Claude or Codex session's process, keep its identity (wake resumes it)")
    hb.add_argument("id")
    hb.set_defaults(func=hibernate)

    wk = s.add_parser("wake", help="resume a hibernated session (claude --resume, codex resume)")
    wk.add_argument("id")
    wk.set_defaults(func=wake)

    a = s.add_parser(
        "attach",
        help="use the session's terminal here (detach with Ctrl-])",
        description="Raw-mode attach: repaints the screen, streams output, forwards keys and window "
        "size. Ctrl-] detaches; the session keeps running.",
    )
    a.add_argument("id")
    a.set_defaults(func=attach)

    w = s.add_parser(
        "wait",
        help="block until sessions are exited (or idle); those already there count at once",
        description="Wait until every listed session reached the state. --until idle: the agent is not "
        "working (idle or waiting for input, with no prompt pending) or has exited. On --timeout the "
        "answer lists the sessions not there yet (done: false); the exit code is 0 either way.",
    )
    w.add_argument("ids", nargs="+", metavar="ID", help="id, unique prefix, or name")
    w.add_argument("--until", choices=["exited", "idle"], default="exited")
    w.add_argument("--timeout", type=float, dest="wait_timeout", metavar="SECONDS", help="give up after this long")
    w.set_defaults(func=wait)

    from maestroctl.commands.session_log import register_log

    register_log(s)

    from maestroctl.commands.session_admin import register_admin

    register_admin(s)


def _worktree_text(w: dict[str, Any] | None) -> str | None:
    if not w:
        return None
    if w.get("removed"):
        return f"{w['branch']} (removed)"
    n = w.get("changed", 0) + w.get("untracked", 0) + w.get("unmerged", 0)
    return (f"{w['branch']} +{w.get('ahead', 0)}/-{w.get('behind', 0)} vs {w['base']}, "
            f"{f'{n} uncommitted' if n else 'clean'} ({w['path']})")


def _one(r: dict[str, Any]) -> str:
    from maestroctl.output import kv

    return kv(
        {**r, "worktree": _worktree_text(r.get("worktree")), "resources": _resources(r)},
        [
            "id",
            "name",
            "status",
            "role",
            "agent",
            "project_id",
            "parent_id",
            "root_id",
            "cwd",
            "pid",
            "exit_code",
            "exit_reason",
            "needs_attention",
            "task_ids",
            "queued_prompts",
            "viewers",
            "claude_session_id",
            "transcript_path",
            "worktree",
            "resources",
            "created_at",
            "exited_at",
        ],
    )


def _rows(rows: list[dict[str, Any]]) -> str:
    from maestroctl.output import table

    return table([{**r, "resources": _resources(r)} for r in rows], COLUMNS) if rows else "no sessions"


def _resources(r: dict[str, Any]) -> str | None:
    """The whole process tree's memory and CPU (live sessions only)."""
    if r.get("status") == "exited" or r.get("rss_bytes") is None:
        return None
    return f"{round(r['rss_bytes'] / 1048576)}M {round(r.get('cpu_percent') or 0)}%"


def _text_arg(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


def spawn(rt: Any, a: argparse.Namespace) -> int:
    project = a.project or os.environ.get("MAESTRO_PROJECT_ID")
    if not project:
        raise SystemExit("maestroctl session spawn: --project is required (or set MAESTRO_PROJECT_ID)")
    params: dict[str, Any] = {
        "project": project,
        "name": a.name,
        "role": a.role,
        "agent": a.agent or ("command" if a.argv else "claude"),
        "argv": a.argv,
    }
    if a.cwd:
        params["cwd"] = os.path.abspath(a.cwd)
    if (a.branch or a.base) and not a.worktree:
        raise SystemExit("maestroctl session spawn: --branch and --base go with --worktree")
    if a.worktree:
        params["worktree"] = True
    for key in ("parent", "allowed_tools", "permission_mode", "rows", "cols", "template", "subject", "branch",
                "base", "worktree_of"):
        value = getattr(a, key)
        if value is not None:
            params[key] = value
    for key in ("prompt", "message"):  # `-` reads stdin
        value = getattr(a, key)
        if value is not None:
            params[key] = _text_arg(value)
    if a.task:
        params["task_ids"] = a.task
    if a.env:
        params["env"] = env_pairs(a.env, "session spawn")
    rt.show("session.spawn", params, _one)
    return 0


def env_pairs(items: list[str], command: str) -> dict[str, str]:
    """``--env KEY=VALUE`` (repeatable) as a dict; a usage error names the command."""
    env = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SystemExit(f"maestroctl {command}: --env wants KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def list_(rt: Any, a: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    for key in ("project", "status", "parent"):
        value = getattr(a, key)
        if value:
            params[key] = value
    for key in ("active", "my_workers", "siblings"):
        if getattr(a, key):
            params[key] = True
    from maestroctl import paging

    paging.show(rt, "session.list", params, _rows, a.limit, a.cursor)
    return 0


def get(rt: Any, a: argparse.Namespace) -> int:
    rt.show("session.get", {"id": a.id}, _one)
    return 0


def screen(rt: Any, a: argparse.Namespace) -> int:
    rt.show("session.screen", {"id": a.id}, lambda r: r["text"] if r["lines"] else r.get("note", ""))
    return 0


def output(rt: Any, a: argparse.Namespace) -> int:
    import base64

    if a.tail is not None:
        from maestroctl.commands.session_admin import output_tail

        return output_tail(rt, a)
    offset = a.offset or 0
    r = rt.call("session.output", {"id": a.id, "offset": offset, "limit": a.limit})
    if rt.json:
        rt.emit(r)
        return 0
    if r["truncated"]:
        sys.stderr.write(f"maestroctl: bytes {offset}..{r['offset']} are no longer in the scrollback\n")
    sys.stdout.buffer.write(base64.b64decode(r["data"]))
    sys.stdout.flush()
    return 0


def prompt(rt: Any, a: argparse.Namespace) -> int:
    params = {"id": a.id, "message": _text_arg(a.message), "mode": a.mode, "now": a.now}
    if a.wait is None:
        rt.show("session.prompt", params, _prompt_human)
        return 0
    return _prompt_and_wait(rt, params, a.wait)


def _prompt_human(r: dict[str, Any]) -> str:
    if r["state"] == "queued":
        ahead = f", {r['ahead']} ahead" if r.get("ahead") else ""
        return f"queued for {r['session_id']} (prompt {r['prompt_id']}; it is {r.get('status')}{ahead})"
    if r["state"] == "confirmed":
        return f"delivered to {r['session_id']} and confirmed by the agent (prompt {r['prompt_id']})"
    return f"delivered to {r['session_id']} (prompt {r['prompt_id']})"


def _prompt_and_wait(rt: Any, params: dict[str, Any], wait: float) -> int:
    """Subscribe first, then prompt, then wait for the agent's confirmation (or its exit)."""
    import time

    client = rt.client()
    client.call("events.subscribe", {"topics": ["session.prompt_delivered", "session.status"]})
    # Events that arrive before the answer stay queued in the client (a fast agent may confirm first).
    result = client.call("session.prompt", params)
    deadline = time.monotonic() + wait
    sid, pid = result["session_id"], result["prompt_id"]

    def verdict(ev: dict[str, Any]) -> str | None:
        data = ev.get("data", {})
        if (
            ev["topic"] == "session.prompt_delivered"
            and data.get("session_id") == sid
            and data.get("prompt_id") == pid
        ):
            return "confirmed"
        if ev["topic"] == "session.status" and data.get("session_id") == sid and data.get("to") == "exited":
            return "exited"
        return None

    outcome = None
    notifications = client.notifications()
    while outcome is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        client.set_timeout(left)
        try:
            msg = next(notifications)
        except TimeoutError:
            break
        if msg.get("method") == "event":
            outcome = verdict(msg["params"])
    if outcome == "confirmed":
        rt.emit({**result, "state": "confirmed"}, _prompt_human)
        return 0
    rt.emit(result, _prompt_human)
    why = "the session exited" if outcome == "exited" else f"no confirmation within {wait:g} s"
    sys.stderr.write(f"maestroctl: prompt {pid} was {result['state']} but not confirmed: {why}\n")
    return 1


def input_(rt: Any, a: argparse.Namespace) -> int:
    import base64

    data = (a.text or "").encode() + b"".join(KEYS[k] for k in a.key)
    if not data:
        raise SystemExit("maestroctl session input: give --text and/or --key")
    r = rt.call("session.input", {"id": a.id, "data": base64.b64encode(data).decode()})
    rt.emit(r, f"typed {r['bytes']} byte(s) into {r['id']}")
    return 0


def interrupt(rt: Any, a: argparse.Namespace) -> int:
    r = rt.call("session.interrupt", {"id": a.id})
    rt.emit(r, f"sent {r['sent']} to {r['id']}")
    return 0


def resize(rt: Any, a: argparse.Namespace) -> int:
    r = rt.call("session.resize", {"id": a.id, "rows": a.rows, "cols": a.cols})
    rt.emit(r, f"{r['id']} is now {r['rows']}x{r['cols']}")
    return 0


def _stopped(r: dict[str, Any]) -> str:
    if r["status"] != "exited":
        return f"{r['id']} is stopping"
    return f"{r['id']} exited: {r['exit_reason']} (code {r['exit_code']})"


def stop(rt: Any, a: argparse.Namespace) -> int:
    rt.show("session.stop", {"id": a.id, "wait": not a.no_wait}, _stopped)
    return 0


def kill(rt: Any, a: argparse.Namespace) -> int:
    rt.show("session.kill", {"id": a.id}, _stopped)
    return 0


def hibernate(rt: Any, a: argparse.Namespace) -> int:
    rt.show("session.hibernate", {"id": a.id}, lambda r: f"{r['id']} is {r['status']}")
    return 0


def wake(rt: Any, a: argparse.Namespace) -> int:
    rt.show("session.wake", {"id": a.id}, lambda r: f"{r['id']} is {r['status']} (resumed, pid {r.get('pid')})")
    return 0


def attach(rt: Any, a: argparse.Namespace) -> int:
    from maestroctl.attach import attach as run

    return run(rt.socket, a.id)


def _waited(r: dict[str, Any]) -> str:
    def one(x: dict[str, Any]) -> str:
        return f"{x['id']} ({x['name']}: {x['status']})"

    if r["done"]:
        return f"all {r['until']}: " + ", ".join(one(x) for x in r["sessions"])
    pending = [x for x in r["sessions"] if not x["reached"]]
    return f"timed out; not {r['until']} yet: " + ", ".join(one(x) for x in pending)


def wait(rt: Any, a: argparse.Namespace) -> int:
    # `maestroctl --timeout S session wait` means the same as `session wait --timeout S`.
    timeout = a.wait_timeout if a.wait_timeout is not None else rt.timeout
    if timeout is not None and timeout < 0:
        raise SystemExit("maestroctl session wait: --timeout must be >= 0")
    # Resumes across a daemon restart (maestroctl.reconnect; what is left of the timeout); the socket outlives
    # the daemon's wait by WAIT_GRACE, or a slow answer would be cut off.
    value, raw = rt.reconnecting().wait_raw("session.wait", {"ids": a.ids, "until": a.until}, timeout,
                                            grace=WAIT_GRACE)
    rt.show_answer(value, raw, _waited)
    return 0
