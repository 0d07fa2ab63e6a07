"""``maestroctl task run``: drain a project's ready tasks with at most N worker sessions (the ``run.*`` RPCs;
registered under ``task`` by maestroctl/commands/task.py)."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs start-up time; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any


def register(s: Any) -> None:
    r = s.add_parser(
        "run", help="drain the project's ready tasks with at most N worker sessions (--status, --stop)",
        description="Start a run: each time a worker slot is free, the highest-priority ready task gets a "
        "worker session (dependencies enforced); a worker that reports complete is stopped (or, with --reuse, "
        "given the next task). `--status` shows the run (the project's active or latest; `--id RUN` another), "
        "`--stop` lets its running workers finish and starts no more. See docs/scheduler.md.")
    r.add_argument("--project", help="default: $MAESTRO_PROJECT_ID")
    r.add_argument("--workers", type=int, help="live worker sessions at most (default 2)")
    r.add_argument("--template", help="the workers' workflow template (default execute-simple; none: no workflow)")
    r.add_argument("--agent", choices=["claude", "codex", "command"], help="the workers' agent (default claude)")
    r.add_argument("--worktree", action="store_true", help="each worker in a new git worktree of the project")
    r.add_argument("--root", metavar="TASK", help="only this task and its descendants")
    r.add_argument("--reuse", action="store_true", help="a worker whose task ended takes the next ready one")
    r.add_argument("--retries", type=int, help="a failed task goes back to todo this many times (default 0)")
    r.add_argument("--cwd", help="the workers' directory (default: the project's)")
    r.add_argument("--allowed-tools", help='claude --allowedTools for the workers, e.g. "Bash Read Edit"')
    r.add_argument("--permission-mode", help="claude --permission-mode for the workers")
    r.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for every worker (repeatable)")
    r.add_argument("--prompt", help="added to each worker's first prompt")
    r.add_argument("--status", action="store_true", help="show the run (RUN, or the project's active or latest)")
    r.add_argument("--stop", action="store_true", help="let running workers finish and start no more")
    r.add_argument("--id", metavar="RUN", help="with --status/--stop: the run (default: the project's)")
    r.add_argument("argv", nargs="*", metavar="ARGV", help="after --: the program (--agent command) or claude args")
    r.set_defaults(func=main)


def _human(r: dict[str, Any]) -> str:
    from maestroctl.output import safe, table

    c = r["counts"]
    lines = [f"run {r['id']}  {r['state']}  project {r['project_id']}  workers {c['live_workers']}/{r['workers_max']}"
             + (f"  root {r['root_task_id']}" if r["root_task_id"] else ""),
             f"tasks: {c['running']} running, {c['queued']} queued ({c['ready']} ready), {c['done']} done, "
             f"{c['failed']} failed" + (f"\n{safe(r['reason'])}" if r["reason"] else "")]
    if r["workers"]:
        rows = [{**w, "context": f"{w['context']['share']:.0%} of {w['context']['window'] // 1000}k"
                 if w.get("context") else ""} for w in r["workers"]]
        lines.append(table(rows, [("session_id", "SESSION"), ("name", "NAME"), ("status", "STATUS"),
                                  ("task_id", "TASK"), ("context", "CONTEXT"), ("needs_attention", "ATTENTION")]))
    failed = [t for t in r["tasks"] if t["state"] == "failed"]
    for t in failed:
        lines.append(f"failed {t['task_id']} ({safe(t['title'] or '')}): {safe(t['reason'])}")
    return "\n".join(lines)


def main(rt: Any, a: argparse.Namespace) -> int:
    project = a.project or os.environ.get("MAESTRO_PROJECT_ID") or None
    if a.status or a.stop:
        ref: dict[str, Any] = {"id": a.id} if a.id else ({"project": project} if project else {})
        rt.show("run.stop" if a.stop else "run.status", ref, _human)
        return 0
    if not project:
        raise SystemExit("maestroctl task run: --project is required (or set MAESTRO_PROJECT_ID)")
    params: dict[str, Any] = {"project": project, "argv": a.argv}
    for key in ("workers", "template", "agent", "root", "retries", "allowed_tools", "permission_mode", "prompt"):
        value = getattr(a, key)
        if value is not None:
            params[key] = value
    if a.agent is None and a.argv:
        params["agent"] = "command"
    if a.cwd:
        params["cwd"] = os.path.abspath(a.cwd)
    for key in ("worktree", "reuse"):
        if getattr(a, key):
            params[key] = True
    if a.env:
        from maestroctl.commands.session import env_pairs

        params["env"] = env_pairs(a.env, "task run")
    rt.show("run.start", params, _human)
    return 0
