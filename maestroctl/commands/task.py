"""``maestroctl task create|list|get|update|delete|children|ready|history|report|run``"""

from __future__ import annotations

import os

from maestroctl import paging

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any

STATUSES = ["todo", "in_progress", "in_review", "completed", "blocked", "cancelled", "archived"]
PRIORITIES = ["low", "medium", "high", "critical"]
COLUMNS = [("id", "ID"), ("status", "STATUS"), ("priority", "PRIO"), ("title", "TITLE"),
           ("parent_id", "PARENT"), ("depends_on", "DEPENDS ON")]


def _project(a: argparse.Namespace) -> str | None:
    # Inside an agent the project is known from the environment. Read at run time, not as an
    # argparse default, so the parser (and its compiled fast path) does not depend on the env.
    return a.project or os.environ.get("MAESTRO_PROJECT_ID") or None


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_)
    s = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    c = s.add_parser("create", help="create a task")
    c.add_argument("--project", help="project id/prefix/name (default: $MAESTRO_PROJECT_ID)")
    c.add_argument("--title", required=True)
    c.add_argument("--description", default="")
    c.add_argument("--priority", choices=PRIORITIES, default="medium")
    c.add_argument("--status", choices=STATUSES, default="todo")
    c.add_argument("--parent", help="parent task id or prefix")
    c.add_argument("--depends-on", nargs="+", action="extend", default=[], metavar="ID",
                   help="tasks that must be completed first (repeatable)")
    c.set_defaults(func=create)

    ls = s.add_parser("list", help="list tasks")
    ls.add_argument("--project", help="default: $MAESTRO_PROJECT_ID")
    ls.add_argument("--status", action="append", choices=STATUSES, help="repeatable")
    ls.add_argument("--priority", action="append", choices=PRIORITIES, help="repeatable")
    ls.add_argument("--parent", help='parent id; "" or --roots for top-level tasks only')
    ls.add_argument("--roots", action="store_true", help="top-level tasks only")
    ls.add_argument("--tree", action="store_true", help="show the hierarchy (whole: not with --limit)")
    paging.add_args(ls)
    ls.set_defaults(func=list_)

    g = s.add_parser("get", help="show one task")
    g.add_argument("id")
    g.set_defaults(func=get)

    u = s.add_parser("update", help="change a task")
    u.add_argument("id")
    u.add_argument("--title")
    u.add_argument("--description")
    u.add_argument("--status", choices=STATUSES)
    u.add_argument("--priority", choices=PRIORITIES)
    u.add_argument("--parent", help='new parent id; "" makes it top-level')
    u.add_argument("--depends-on", nargs="+", action="extend", default=[], metavar="ID", help="add dependencies")
    u.add_argument("--no-depends-on", nargs="+", action="extend", default=[], metavar="ID",
                   help="remove dependencies")
    u.set_defaults(func=update)

    d = s.add_parser("delete", help="delete a task")
    d.add_argument("id")
    d.add_argument("--cascade", action="store_true", help="also delete its descendants")
    d.set_defaults(func=delete)

    ch = s.add_parser("children", help="a task's children")
    ch.add_argument("id")
    ch.add_argument("--recursive", action="store_true", help="all descendants")
    paging.add_args(ch)
    ch.set_defaults(func=children)

    r = s.add_parser("ready", help="todo tasks whose dependencies are all completed")
    r.add_argument("--project", help="default: $MAESTRO_PROJECT_ID")
    paging.add_args(r)
    r.set_defaults(func=ready)

    h = s.add_parser("history", help="who changed the task, what and when")
    h.add_argument("id")
    paging.add_args(h)
    h.set_defaults(func=history)

    # `task report` (issue 5): an agent reports on its own work; handler in maestrod/handlers/report.py
    rep = s.add_parser("report", help="from an agent: report progress|blocked|complete|error on a task")
    rep.add_argument("status", choices=["progress", "blocked", "complete", "error"])
    rep.add_argument("id", metavar="TASK", help="task id or unique prefix")
    rep.add_argument("--message", required=True, help="what happened (- reads stdin)")
    rep.set_defaults(func=report)

    # `task run` (issue 13): the run.* RPCs; its command lives in maestroctl/commands/run.py
    from maestroctl.commands import run

    run.register(s)


def _one(r: dict[str, Any]) -> str:
    from maestroctl.output import kv

    return kv(r, ["id", "title", "status", "priority", "project_id", "parent_id", "depends_on", "description",
                  "created_at", "updated_at", "started_at", "completed_at"])


def _rows(rows: list[dict[str, Any]]) -> str:
    from maestroctl.output import table

    return table(rows, COLUMNS) if rows else "no tasks"


def _tree(rows: list[dict[str, Any]]) -> str:
    lines: list[str] = []

    def label(t: dict[str, Any]) -> str:
        deps = f"  ⟵ {','.join(t['depends_on'])}" if t.get("depends_on") else ""
        return f"{t['id']}  [{t['status']}] {t['title']} ({t['priority']}){deps}"

    def walk(nodes: list[dict[str, Any]], prefix: str) -> None:
        for i, t in enumerate(nodes):
            last = i == len(nodes) - 1
            lines.append(prefix + ("└─ " if last else "├─ ") + label(t))
            walk(t.get("children") or [], prefix + ("   " if last else "│  "))

    for root in rows:
        lines.append(label(root))
        walk(root.get("children") or [], "")
    return "\n".join(lines) or "no tasks"


def create(rt: Any, a: argparse.Namespace) -> int:
    project = _project(a)
    if not project:
        raise SystemExit("maestroctl task create: --project is required (or set MAESTRO_PROJECT_ID)")
    params: dict[str, Any] = {"project": project, "title": a.title, "description": a.description,
                              "priority": a.priority, "status": a.status, "depends_on": a.depends_on}
    if a.parent:
        params["parent"] = a.parent
    rt.show("task.create", params, _one)
    return 0


def list_(rt: Any, a: argparse.Namespace) -> int:
    params: dict[str, Any] = {"tree": a.tree}
    if _project(a):
        params["project"] = _project(a)
    if a.status:
        params["status"] = a.status
    if a.priority:
        params["priority"] = a.priority
    if a.roots:
        params["parent"] = ""
    elif a.parent is not None:
        params["parent"] = a.parent
    if a.tree:
        if a.limit is not None or a.cursor is not None:
            raise SystemExit("maestroctl task list: --tree shows the whole tree; leave out --limit and --cursor")
        rt.show("task.list", params, _tree)
    else:
        paging.show(rt, "task.list", params, _rows, a.limit, a.cursor)
    return 0


def get(rt: Any, a: argparse.Namespace) -> int:
    rt.show("task.get", {"id": a.id}, _one)
    return 0


def update(rt: Any, a: argparse.Namespace) -> int:
    params: dict[str, Any] = {"id": a.id}
    for key in ("title", "description", "status", "priority", "parent"):
        value = getattr(a, key)
        if value is not None:
            params[key] = value
    if a.depends_on:
        params["add_depends_on"] = a.depends_on
    if a.no_depends_on:
        params["remove_depends_on"] = a.no_depends_on
    rt.show("task.update", params, _one)
    return 0


def delete(rt: Any, a: argparse.Namespace) -> int:
    r = rt.call("task.delete", {"id": a.id, "cascade": a.cascade})
    rt.emit(r, "deleted " + ", ".join(r["deleted"]))
    return 0


def children(rt: Any, a: argparse.Namespace) -> int:
    paging.show(rt, "task.children", {"id": a.id, "recursive": a.recursive}, _rows, a.limit, a.cursor)
    return 0


def ready(rt: Any, a: argparse.Namespace) -> int:
    params = {"project": _project(a)} if _project(a) else {}
    paging.show(rt, "task.ready", params, _rows, a.limit, a.cursor)
    return 0


def history(rt: Any, a: argparse.Namespace) -> int:
    from maestroctl.output import table

    def human(rows: list[dict[str, Any]]) -> str:
        shown = [{**r, "data": _brief(r["data"])} for r in rows]
        return table(shown, [("at", "WHEN"), ("actor", "WHO"), ("type", "WHAT"), ("data", "DETAILS")],
                     max_width=80)

    # Pages come newest first; shown oldest first (every row, or the latest --limit).
    from maestroctl import wire

    data, total, after = paging.fetch(rt, "task.history", {"id": a.id}, a.limit, a.cursor)
    rows = wire.loads(data)[::-1]
    rt.emit(rows, human)
    if after is not None:
        import sys

        sys.stderr.write(f"maestroctl: {total} in all; the older ones: --cursor {after}\n")
    return 0


def _brief(data: dict[str, Any]) -> str:
    if "from" in data and "to" in data:
        return f"{data['from']} → {data['to']}"
    return ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, [], {}))


def report(rt: Any, a: argparse.Namespace) -> int:
    import sys

    message = sys.stdin.read() if a.message == "-" else a.message
    r = rt.call("task.report", {"task": a.id, "status": a.status, "message": message})
    moved = r["status_change"]
    rt.emit(r, f"reported {a.status} on {r['task']['id']} (task {r['task']['status']}"
               + (f", was {moved['from']}" if moved else "") + ")"
               + (f"; mailed {r['mailed_to']}" if r["mailed_to"] else "")
               + (f"\nnote: {r['note']}" if r["note"] else ""))
    return 0
