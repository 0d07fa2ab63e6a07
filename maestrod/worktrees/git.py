"""What maestro asks git about worktrees, and how it reads the answers: pure functions, no process.

Every git call maestrod makes for worktrees is built here as an argv and every answer is parsed here,
so the rules (branch names, what counts as a change, ahead/behind) are tested without a repository;
:mod:`maestrod.worktrees.service` runs them.
"""

from __future__ import annotations

import re

import attrs

#: The branch prefix of worktrees maestro creates (``maestro/<session-name>``).
BRANCH_PREFIX = "maestro/"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def branch_for(session_name: str) -> str:
    """The default branch of a session's worktree: ``maestro/<name>`` with the name made a valid ref
    component (``git check-ref-format`` rules: no spaces, ``..``, ``~^:?*[\\``, leading ``.``/``-``,
    trailing ``.lock`` or ``.``)."""
    slug = _UNSAFE.sub("-", session_name.strip()).strip("-.")
    slug = re.sub(r"\.{2,}", ".", slug)
    while slug.endswith(".lock"):
        slug = slug[: -len(".lock")].rstrip("-.")
    return BRANCH_PREFIX + (slug[:80].rstrip("-.") or "session")


def candidate_branches(base_name: str, limit: int = 100) -> list[str]:
    """``name``, then ``name-2``, ``name-3``... for when the default name is taken."""
    return [base_name] + [f"{base_name}-{n}" for n in range(2, limit + 1)]


def dir_name(branch: str) -> str:
    """A directory name for a branch's worktree (one path component)."""
    return _UNSAFE.sub("-", branch.replace("/", "--")).strip("-.") or "worktree"


# -- argv builders (run with ``cwd`` set to the repository or the worktree) -----------------------------

def toplevel() -> list[str]:
    return ["git", "rev-parse", "--show-toplevel"]


def resolve_commit(ref: str) -> list[str]:
    # `--end-of-options` keeps a ref that starts with '-' from being read as an option.
    return ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"]


def branch_exists(branch: str) -> list[str]:
    return ["git", "show-ref", "--verify", "--quiet", f"refs/heads/{branch}"]


def valid_branch(branch: str) -> list[str]:
    return ["git", "check-ref-format", "--branch", branch]


def current_branch() -> list[str]:
    return ["git", "symbolic-ref", "--quiet", "--short", "HEAD"]


def add(path: str, branch: str, base_commit: str) -> list[str]:
    return ["git", "worktree", "add", "--quiet", "-b", branch, path, base_commit]


def remove(path: str, force: bool) -> list[str]:
    return ["git", "worktree", "remove", *(["--force", "--force"] if force else []), path]


def delete_branch(branch: str) -> list[str]:
    return ["git", "branch", "-D", branch]


def status() -> list[str]:
    return ["git", "status", "--porcelain=v2", "--untracked-files=normal"]


def ahead_behind(base: str) -> list[str]:
    return ["git", "rev-list", "--left-right", "--count", f"{base}...HEAD"]


def diff(base_commit: str) -> list[str]:
    """Everything the worktree changed since its base: commits and uncommitted edits of tracked files."""
    return ["git", "diff", "--no-color", "--no-ext-diff", base_commit]


def diff_stat(base_commit: str) -> list[str]:
    return ["git", "diff", "--no-color", "--no-ext-diff", "--stat", base_commit]


def untracked() -> list[str]:
    return ["git", "ls-files", "--others", "--exclude-standard", "-z"]


def included_files(include_file: str) -> list[str]:
    """Untracked files of the repository that the patterns of ``include_file`` (gitignore syntax) match:
    what ``.worktreeinclude`` asks to copy (``.env`` and the like, which git itself would not carry)."""
    return ["git", "ls-files", "--others", "--ignored", f"--exclude-from={include_file}", "-z"]


# -- readers -----------------------------------------------------------------------------------------

@attrs.frozen
class Changes:
    """Uncommitted state of a worktree, from ``git status --porcelain=v2``."""

    changed: int = 0
    untracked: int = 0
    unmerged: int = 0

    @property
    def dirty(self) -> bool:
        return bool(self.changed or self.untracked or self.unmerged)


def parse_status(text: str) -> Changes:
    """Count entries by kind: ``1``/``2`` (changed, renamed), ``u`` (unmerged), ``?`` (untracked);
    ``!`` (ignored) and ``#`` headers are not changes."""
    changed = untracked = unmerged = 0
    for line in text.splitlines():
        kind = line[:1]
        if kind in ("1", "2"):
            changed += 1
        elif kind == "u":
            unmerged += 1
        elif kind == "?":
            untracked += 1
    return Changes(changed, untracked, unmerged)


class GitOutputError(ValueError):
    pass


def parse_ahead_behind(text: str) -> tuple[int, int]:
    """``git rev-list --left-right --count BASE...HEAD`` prints ``<behind>\\t<ahead>``; returns
    ``(ahead, behind)``."""
    parts = text.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise GitOutputError(f"unexpected rev-list output: {text!r}")
    return int(parts[1]), int(parts[0])


def parse_z(text: str) -> list[str]:
    """NUL-separated paths (``-z`` output)."""
    return [p for p in text.split("\0") if p]
