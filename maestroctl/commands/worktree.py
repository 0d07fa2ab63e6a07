"""``maestroctl worktree list|get|diff|remove``: the git worktrees sessions work in (``session spawn --worktree``).

ID is the session (id, prefix or name) or the worktree's branch.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any

COLUMNS = [("session_id", "SESSION"), ("branch", "BRANCH"), ("base", "BASE"), ("ahead", "AHEAD"),
           ("behind", "BEHIND"), ("changes", "CHANGES"), ("path", "PATH")]


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description="The git worktrees sessions work in (`session spawn "
                       "--worktree`). ID is the session (id, prefix or name) or the worktree's branch.")
    s = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    ls = s.add_parser("list", help="every worktree: branch, ahead/behind its base, uncommitted changes")
    ls.add_argument("--all", action="store_true", help="include removed worktrees")
    from maestroctl import paging

    paging.add_args(ls)
    ls.set_defaults(func=list_)
    g = s.add_parser("get", help="one worktree, freshly read from git")
    g.add_argument("id", metavar="ID", help="session id/prefix/name, or the branch")
    g.set_defaults(func=get)
    d = s.add_parser("diff", help="what the worktree changed since its base (commits and edits)")
    d.add_argument("id", metavar="ID", help="session id/prefix/name, or the branch")
    d.add_argument("--stat", action="store_true", help="a summary (git diff --stat)")
    d.set_defaults(func=diff)
    r = s.add_parser("remove", help="remove a worktree (refused with uncommitted or unmerged changes)")
    r.add_argument("id", metavar="ID", help="session id/prefix/name, or the branch")
    r.add_argument("--force", action="store_true", help="remove even with uncommitted or unmerged changes")
    r.add_argument("--delete-branch", action="store_true", help="also delete its branch (kept by default)")
    r.set_defaults(func=remove)


def _flat(w: dict[str, Any]) -> dict[str, Any]:
    st = w.get("state") or {}
    n = st.get("changed", 0) + st.get("untracked", 0) + st.get("unmerged", 0)
    changes = st.get("error") or (f"{n} uncommitted" if n else "clean")
    if w.get("removed_at"):
        changes = "removed"
    return {**w, "ahead": st.get("ahead", 0), "behind": st.get("behind", 0), "changes": changes}


def list_(rt: Any, a: argparse.Namespace) -> int:
    from maestroctl.output import table

    from maestroctl import paging

    paging.show(rt, "worktree.list", {"all": a.all},
                lambda rows: table([_flat(w) for w in rows], COLUMNS) if rows else "no worktrees", a.limit, a.cursor)
    return 0


def get(rt: Any, a: argparse.Namespace) -> int:
    from maestroctl.output import kv

    rt.show("worktree.get", {"id": a.id},
            lambda w: kv(_flat(w), ["id", "session_id", "session_ids", "repo", "path", "branch", "base",
                                    "base_commit", "ahead", "behind", "changes", "created_at", "removed_at"]))
    return 0


def diff(rt: Any, a: argparse.Namespace) -> int:
    def render(r: dict[str, Any]) -> str:
        out = r["diff"].rstrip("\n")
        if r["untracked"]:
            out += ("\n" if out else "") + "untracked: " + ", ".join(r["untracked"])
        if r["truncated"]:
            out += "\n(cut: the diff is larger than one answer; run git diff in the worktree)"
        return out or "no changes"

    rt.show("worktree.diff", {"id": a.id, "stat": a.stat}, render)
    return 0


def remove(rt: Any, a: argparse.Namespace) -> int:
    rt.show("worktree.remove", {"id": a.id, "force": a.force, "delete_branch": a.delete_branch},
            lambda r: f"removed {r['path']}" + (f" and the branch {r['branch']}" if r["branch_deleted"]
                                                else f" (the branch {r['branch']} is kept)"))
    return 0
