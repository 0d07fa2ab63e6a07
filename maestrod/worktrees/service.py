"""Git worktrees for sessions: made before the agent starts, watched while it works, removed on request.

``session spawn --worktree`` asks this service for a fresh worktree (a new branch from a base, placed
under ``[worktree] root``, by default ``<data dir>/worktrees``: outside the repository, so tools that
scan the repository never see it), copies the untracked files ``.worktreeinclude`` names (gitignore
syntax: ``.env`` and the like, which a checkout would not carry), runs the setup command in it, and only
then lets the session manager start the agent there. Any failure before the agent runs removes what was
made (worktree and branch): a failed spawn leaves nothing behind.

git itself does the work (``git worktree add/remove``, ``git status --porcelain=v2``,
``git rev-list --left-right --count``): every call is a subprocess with a timeout, run by trio, so a
slow repository never blocks the daemon's loop. The state shown by ``session get`` and ``worktree list``
(ahead/behind the base, uncommitted entries) is cached in the store and refreshed after the agent's
PostToolUse of Edit, Write or Bash (coalesced per worktree) and when asked.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import trio

from maestrod.config import WorktreeConfig
from maestrod.recorder import Recorder
from maestrod.sessions.store import SessionStore
from maestrod.store.db import utcnow
from maestrod.store.projects import ProjectStore
from maestrod.worktrees import git
from maestrod.worktrees.store import WorktreeStore, state_of
from shared import errors
from shared.messages.session import Session, SessionSpawn
from shared.messages.worktree import Worktree, WorktreeState

log = logging.getLogger("maestrod.worktrees")

#: The repository's own setup script, used when ``[worktree] setup`` is not set.
REPO_SETUP = ".maestro/worktree-setup"
INCLUDE_FILE = ".worktreeinclude"
#: How much of a setup command's output is kept (the tail, where errors are).
OUTPUT_KEEP = 16 * 1024
#: Tools after which the worktree's state is read again.
EDITING_TOOLS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit", "Bash"})


class GitFailed(Exception):
    def __init__(self, argv: list[str], code: int | None, output: str) -> None:
        self.argv, self.code, self.output = argv, code, output
        super().__init__(f"`{' '.join(argv)}` failed" + (f" (exit {code})" if code is not None else "")
                         + (f": {output.strip()[-500:]}" if output.strip() else ""))


@attrs.frozen
class Made:
    """A worktree made for a spawn that has not started yet."""

    repo: str
    path: str
    branch: str
    base: str
    base_commit: str
    #: The agent's directory inside the worktree (the spawn's cwd, relative to the repository root).
    cwd: str
    setup: dict[str, Any] | None = None


class WorktreeService:
    def __init__(self, store: WorktreeStore, sessions: SessionStore, projects: ProjectStore, recorder: Recorder,
                 config: WorktreeConfig, data_dir: Path) -> None:
        self.store = store
        self.sessions = sessions
        self.projects = projects
        self.recorder = recorder
        self.config = config
        self.root = Path(config.root).expanduser() if config.root else data_dir / "worktrees"
        self._refresh_send, self._refresh_recv = trio.open_memory_channel[str](math.inf)
        self._pending: set[str] = set()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Refresh worktrees' state after the agent edits, one git call at a time, coalesced."""
        task_status.started()
        async for wid in self._refresh_recv:
            self._pending.discard(wid)
            try:
                await self.refresh(self.store.get(wid))
            except Exception as exc:  # a worktree removed meanwhile, git gone: the next edit tries again
                log.info("worktree %s: could not refresh: %s", wid, exc)

    # -- git -----------------------------------------------------------------------------------------

    async def _git(self, argv: list[str], cwd: str, *, check: bool = True,
                   timeout: float | None = None) -> tuple[int, str]:
        """Run git; (exit code, stdout). stderr is folded into the error when ``check`` fails."""
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        with trio.move_on_after(timeout or self.config.git_timeout_seconds) as scope:
            proc = await trio.run_process(argv, cwd=cwd, env=env, check=False, capture_stdout=True,
                                          capture_stderr=True, stdin=subprocess.DEVNULL)
        if scope.cancelled_caught:
            raise GitFailed(argv, None, f"timed out after {timeout or self.config.git_timeout_seconds:g} s")
        out = proc.stdout.decode("utf-8", "replace")
        if check and proc.returncode != 0:
            raise GitFailed(argv, proc.returncode, proc.stderr.decode("utf-8", "replace") or out)
        return proc.returncode, out

    async def _toplevel(self, cwd: str) -> str:
        code, out = await self._git(git.toplevel(), cwd, check=False)
        if code != 0:
            raise errors.invalid_params([f"cwd: not inside a git repository: {cwd}"])
        return out.strip()

    # -- making one ----------------------------------------------------------------------------------

    async def make(self, cwd: str, session_name: str, branch: str | None, base: str | None) -> Made:
        """A new worktree on a new branch from ``base`` (default: the repository's HEAD), with the included
        files copied and the setup run. Refused (-32602 naming the flag) when ``cwd`` is not in a git
        repository, an explicit ``branch`` exists, or ``base`` does not resolve."""
        repo = await self._toplevel(cwd)
        base_ref = base or "HEAD"
        code, out = await self._git(git.resolve_commit(base_ref), repo, check=False)
        if code != 0 or not out.strip():
            raise errors.invalid_params([f"base: {base_ref!r} does not resolve to a commit in {repo}"])
        base_commit = out.strip()
        if base is None:  # name the base by its branch when HEAD is on one: ahead/behind follow that branch
            code, out = await self._git(git.current_branch(), repo, check=False)
            base_ref = out.strip() if code == 0 and out.strip() else base_commit
        branch = await self._pick_branch(repo, session_name, branch)
        path = self._path_for(repo, branch)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            await self._git(git.add(str(path), branch, base_commit), repo)
        except GitFailed as exc:
            raise errors.conflict(f"could not create the worktree: {exc}") from None
        rel = os.path.relpath(os.path.realpath(cwd), os.path.realpath(repo))
        agent_cwd = os.path.normpath(path / rel) if rel != "." else str(path)
        if not os.path.isdir(agent_cwd):  # the directory is untracked, so not in the checkout
            agent_cwd = str(path)
        made = Made(repo, str(path), branch, base_ref, base_commit, agent_cwd)
        try:
            await self._copy_included(repo, str(path))
            return attrs.evolve(made, setup=await self._setup(made))
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.discard(made)
            raise

    async def _pick_branch(self, repo: str, session_name: str, branch: str | None) -> str:
        if branch is not None:
            code, _ = await self._git(git.valid_branch(branch), repo, check=False)
            if code != 0:
                raise errors.invalid_params([f"branch: {branch!r} is not a valid branch name"])
            code, _ = await self._git(git.branch_exists(branch), repo, check=False)
            if code == 0:
                raise errors.invalid_params([f"branch: {branch!r} already exists in {repo}"])
            return branch
        for candidate in git.candidate_branches(git.branch_for(session_name)):
            code, _ = await self._git(git.branch_exists(candidate), repo, check=False)
            if code != 0 and not self._path_for(repo, candidate).exists():
                return candidate
        raise errors.conflict(f"no free branch name for {session_name!r}: pass --branch")

    def _path_for(self, repo: str, branch: str) -> Path:
        tag = hashlib.sha256(repo.encode()).hexdigest()[:8]
        return self.root / f"{Path(repo).name}-{tag}" / git.dir_name(branch)

    async def _copy_included(self, repo: str, path: str) -> None:
        include = os.path.join(repo, INCLUDE_FILE)
        if not os.path.isfile(include):
            return
        _, out = await self._git(git.included_files(include), repo)
        names = git.parse_z(out)
        if names:
            await trio.to_thread.run_sync(_copy_files, repo, path, names)

    async def _setup(self, made: Made) -> dict[str, Any] | None:
        argv = list(self.config.setup)
        if not argv:
            script = os.path.join(made.path, REPO_SETUP)
            if not (os.path.isfile(script) and os.access(script, os.X_OK)):
                return None
            argv = [script]
        started = time.monotonic()
        env = {**os.environ, "MAESTRO_WORKTREE": made.path, "MAESTRO_WORKTREE_BRANCH": made.branch,
               "MAESTRO_REPO": made.repo}
        with trio.move_on_after(self.config.setup_timeout_seconds) as scope:
            try:
                proc = await trio.run_process(argv, cwd=made.path, env=env, check=False, capture_stdout=True,
                                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            except OSError as exc:
                raise errors.conflict(f"worktree setup {argv[0]!r} could not run: {exc}",
                                      {"setup": argv}) from None
        seconds = round(time.monotonic() - started, 3)
        if scope.cancelled_caught:
            raise errors.conflict(f"worktree setup {argv[0]!r} timed out after "
                                  f"{self.config.setup_timeout_seconds:g} s", {"setup": argv})
        output = proc.stdout.decode("utf-8", "replace")[-OUTPUT_KEEP:]
        if proc.returncode != 0:
            raise errors.conflict(f"worktree setup {argv[0]!r} failed (exit {proc.returncode}): "
                                  f"{output.strip()[-2000:]}",
                                  {"setup": argv, "exit_code": proc.returncode, "output": output})
        return {"argv": argv, "exit_code": 0, "seconds": seconds, "output": output}

    async def discard(self, made: Made) -> None:
        """Undo :meth:`make` (the spawn failed before the agent ran): worktree and branch go."""
        for argv in (git.remove(made.path, force=True), git.delete_branch(made.branch)):
            try:
                await self._git(argv, made.repo)
            except GitFailed as exc:
                log.warning("could not undo the worktree %s: %s", made.path, exc)

    # -- spawning in one -----------------------------------------------------------------------------

    async def spawn(self, p: SessionSpawn, start: Callable[[SessionSpawn], Awaitable[Session]],
                    actor: str) -> Session:
        """Start a session in a worktree: a new one (``--worktree``), or the worktree of an exited session
        (``--worktree-of``)."""
        if p.worktree_of is not None:
            return await self._spawn_in_existing(p, start, actor)
        cwd = p.cwd if p.cwd is not None else self.projects.get(self.projects.resolve(p.project)).dir
        if not os.path.isabs(cwd) or not os.path.isdir(cwd):
            raise errors.invalid_params([f"cwd: must be an existing absolute directory, got {cwd!r}"])
        made = await self.make(cwd, p.name, p.branch, p.base)
        try:
            session = await start(attrs.evolve(p, cwd=made.cwd))
        except BaseException as exc:
            data = getattr(exc, "data", None)
            if isinstance(data, dict) and data.get("session"):
                # The row exists (exited: failed): keep the worktree recorded, as the session's.
                self.store.insert(str(data["session"]), made.repo, made.path, made.branch, made.base,
                                  made.base_commit)
            else:
                with trio.CancelScope(shield=True):
                    await self.discard(made)
            raise
        self.store.insert(session.id, made.repo, made.path, made.branch, made.base, made.base_commit)
        self.recorder.record(actor, "session", session.id, "worktree.created",
                             {"path": made.path, "branch": made.branch, "base": made.base,
                              "base_commit": made.base_commit, "repo": made.repo, "setup": made.setup})
        return session

    async def _spawn_in_existing(self, p: SessionSpawn, start: Callable[[SessionSpawn], Awaitable[Session]],
                                 actor: str) -> Session:
        assert p.worktree_of is not None
        try:
            prev = self.sessions.resolve(p.worktree_of)
        except errors.RpcError:
            raise errors.invalid_params([f"worktree_of: no session {p.worktree_of!r}"]) from None
        wt = self.store.for_session(prev)
        if wt is None or wt.removed_at is not None:
            raise errors.invalid_params([f"worktree_of: session {prev} has no worktree"
                                         + (" (it was removed)" if wt is not None else "")])
        # A hibernated session holds no process: its successor (a context hand-off) may take the worktree on.
        busy = [s for s in wt.session_ids if self.sessions.row(s)["status"] not in ("exited", "hibernated")]
        if busy:
            raise errors.conflict(f"the worktree {wt.path} is in use by session {busy[0]}, which has not "
                                  "exited (or hibernated)", {"session": busy[0]})
        if not os.path.isdir(wt.path):
            raise errors.conflict(f"the worktree {wt.path} is gone from disk (run `git worktree prune`)")
        session = await start(attrs.evolve(p, cwd=wt.path))
        self.store.hand_on(wt.id, session.id)
        self.recorder.record(actor, "session", session.id, "worktree.handed_on",
                             {"path": wt.path, "branch": wt.branch, "from_session": prev})
        return session

    # -- state ---------------------------------------------------------------------------------------

    async def read_state(self, wt: Worktree) -> WorktreeState:
        """Ask git now: ahead/behind the base (by name, falling back to the base commit when the name no
        longer resolves) and uncommitted entries."""
        if wt.removed_at is not None:
            return wt.state
        if not os.path.isdir(wt.path):
            return WorktreeState(checked_at=utcnow(), error="the worktree directory is gone")
        try:
            _, status = await self._git(git.status(), wt.path)
            changes = git.parse_status(status)
            code, out = await self._git(git.ahead_behind(wt.base), wt.path, check=False)
            if code != 0:
                _, out = await self._git(git.ahead_behind(wt.base_commit), wt.path)
            ahead, behind = git.parse_ahead_behind(out)
        except (GitFailed, git.GitOutputError) as exc:
            return WorktreeState(checked_at=utcnow(), error=str(exc))
        return WorktreeState(ahead=ahead, behind=behind, changed=changes.changed, untracked=changes.untracked,
                             unmerged=changes.unmerged, dirty=changes.dirty, checked_at=utcnow())

    async def refresh(self, wt: Worktree) -> Worktree:
        state = await self.read_state(wt)
        if state != wt.state:
            self.store.set_state(wt.id, state)
            self.recorder.publish("worktree.changed", {"worktree_id": wt.id, "session_id": wt.session_id,
                                                        "branch": wt.branch, **attrs.asdict(state)})
        return attrs.evolve(wt, state=state)

    def after_tool(self, session_id: str, event: str, payload: dict[str, Any]) -> None:
        """Hook listener (PostToolUse): an edit may have changed the worktree; read it again soon."""
        if payload.get("tool_name") not in EDITING_TOOLS:
            return
        wt = self.store.for_session(session_id)
        if wt is None or wt.removed_at is not None or wt.id in self._pending:
            return
        self._pending.add(wt.id)
        self._refresh_send.send_nowait(wt.id)

    def resolve(self, ident: str) -> Worktree:
        """A session (id, prefix or name) or a branch."""
        by_branch = self.store.by_branch(None, ident)
        if len(by_branch) == 1:
            return by_branch[0]
        if len(by_branch) > 1:
            raise errors.conflict(f"{len(by_branch)} worktrees are on a branch named {ident!r} (in different "
                                  "repositories): name the session instead")
        try:
            sid = self.sessions.resolve(ident)
        except errors.RpcError:
            raise errors.not_found("worktree", ident) from None
        wt = self.store.for_session(sid)
        if wt is None:
            raise errors.not_found("worktree", ident)
        return wt

    def for_session(self, session_id: str) -> Worktree | None:
        return self.store.for_session(session_id)

    def note(self, session_id: str) -> str | None:
        """A worker's branch for its coordinator: ``branch maestro/x +2 (uncommitted)`` from the cached state
        (no git call: the coordinator context is rendered on every prompt)."""
        wt = self.store.for_session(session_id)
        if wt is None or wt.removed_at is not None:
            return None
        return f"branch {wt.branch} +{wt.state.ahead}" + (" (uncommitted)" if wt.state.dirty else "")

    def summary(self, session_id: str) -> dict[str, Any] | None:
        """``session get``/``list``/``digests``: where a session works, from the cached state."""
        return self.summaries([session_id]).get(session_id)

    def summaries(self, session_ids: list[str]) -> dict[str, dict[str, Any]]:
        """:meth:`summary` of many sessions at once (a session list reads them in one query)."""
        out = {}
        for sid, row in self.store.current_for(session_ids).items():
            state = state_of(row)
            out[sid] = {"id": row["id"], "path": row["path"], "branch": row["branch"], "base": row["base"],
                        "removed": row["removed_at"] is not None, **attrs.asdict(state)}
        return out

    async def with_changes(self, session_ids: Iterable[str]) -> dict[str, str]:
        """Of these sessions, those whose (current, not removed) worktree still holds work, with why:
        ``session delete``/``prune`` keep their records."""
        kept: dict[str, str] = {}
        for sid in session_ids:
            wt = self.store.for_session(sid)
            if wt is None or wt.removed_at is not None:
                continue
            wt = await self.refresh(wt)
            why = _changes_text(wt.state)
            if why:
                kept[sid] = f"its worktree {wt.path} ({wt.branch}) has {why}"
        return kept

    # -- removing, diffing ---------------------------------------------------------------------------

    async def remove(self, wt: Worktree, *, force: bool, delete_branch: bool, actor: str) -> dict[str, Any]:
        if wt.removed_at is not None:
            raise errors.conflict(f"the worktree {wt.path} was already removed", {"worktree": wt.id})
        live = [s for s in wt.session_ids if self.sessions.row(s)["status"] != "exited"]
        if live:
            raise errors.conflict(f"session {live[0]} still works in {wt.path}: stop it first",
                                  {"session": live[0]})
        wt = await self.refresh(wt)
        why = _changes_text(wt.state)
        if why and not force:
            raise errors.conflict(f"the worktree {wt.path} has {why}: commit or merge it, or pass --force",
                                  {"worktree": wt.id, "state": attrs.asdict(wt.state)})
        if os.path.isdir(wt.path):
            await self._git(git.remove(wt.path, force=force), wt.repo)
        branch_deleted = False
        if delete_branch:
            await self._git(git.delete_branch(wt.branch), wt.repo)
            branch_deleted = True
        self.store.mark_removed(wt.id)
        self.recorder.record(actor, "session", wt.session_id, "worktree.removed",
                             {"path": wt.path, "branch": wt.branch, "forced": force,
                              "branch_deleted": branch_deleted})
        return {"id": wt.id, "path": wt.path, "branch": wt.branch, "removed": True,
                "branch_deleted": branch_deleted}

    async def diff(self, wt: Worktree, stat: bool, limit: int) -> dict[str, Any]:
        if wt.removed_at is not None or not os.path.isdir(wt.path):
            raise errors.conflict(f"the worktree {wt.path} is removed")
        _, out = await self._git(git.diff_stat(wt.base_commit) if stat else git.diff(wt.base_commit), wt.path)
        _, untracked = await self._git(git.untracked(), wt.path)
        data = out.encode()
        return {"id": wt.id, "branch": wt.branch, "base": wt.base, "base_commit": wt.base_commit,
                "diff": data[:limit].decode("utf-8", "ignore"), "truncated": len(data) > limit,
                "untracked": git.parse_z(untracked)}


def _changes_text(state: WorktreeState) -> str:
    parts = []
    if state.dirty:
        n = state.changed + state.untracked + state.unmerged
        parts.append(f"{n} uncommitted change{'s' if n != 1 else ''}")
    if state.ahead:
        parts.append(f"{state.ahead} commit{'s' if state.ahead != 1 else ''} not in {'its base'}")
    return " and ".join(parts)


def _copy_files(repo: str, dest: str, names: list[str]) -> None:
    """Copy repository-relative files (symlinks as symlinks); never outside ``dest``."""
    root = os.path.realpath(dest)
    for name in names:
        src = os.path.join(repo, name)
        target = os.path.normpath(os.path.join(dest, name))
        parent = os.path.realpath(os.path.dirname(target))
        if not (parent == root or parent.startswith(root + os.sep)) or os.path.lexists(target):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), target)
        elif os.path.isfile(src):
            shutil.copy2(src, target)
