"""A git worktree per agent: `session spawn --worktree`, `--worktree-of`, `worktree list|get|diff|remove`,
and what `session delete|prune` keep.

Real git repositories in a temporary directory, the in-process daemon on its real socket, `command`
sessions whose program does what an agent would (edit, commit, report its edit through the real
`maestroctl hook PostToolUse`), and the real `maestroctl` for the command line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from maestrod.worktrees import git
from shared import errors
from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient, maestroctl_env
from tests.session_support import _ctl, _error, _project, _spawn

GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
          "GIT_COMMITTER_EMAIL": "t@example.com"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ID}).stdout


@pytest.fixture
def repo(short_tmp: Path) -> Path:
    r = short_tmp / "repo"
    (r / "src").mkdir(parents=True)
    _git(r, "init", "-q", "-b", "main")
    (r / "src" / "app.py").write_text("print('hi')\n")
    (r / ".gitignore").write_text(".env\n*.log\n")
    _git(r, "add", ".")
    _git(r, "commit", "-qm", "first")
    (r / ".env").write_text("SECRET=1\n")  # ignored: a checkout would not carry it
    (r / "debug.log").write_text("noise\n")
    return r


async def _wt_spawn(client: RawClient, repo: Path, argv: list[str], **kw: Any) -> dict[str, Any]:
    return await _spawn(client, argv, cwd=str(repo), worktree=True, env=GIT_ID, **kw)


# -- the pure rules ---------------------------------------------------------------------------------


def test_branch_names_are_valid_refs() -> None:
    assert git.branch_for("fix login") == "maestro/fix-login"
    assert git.branch_for("..weird..name.lock") == "maestro/weird.name"
    assert git.branch_for("   ") == "maestro/session"
    assert git.branch_for("a~b^c:d?e*f[g\\h") == "maestro/a-b-c-d-e-f-g-h"
    assert git.candidate_branches("maestro/x", 3) == ["maestro/x", "maestro/x-2", "maestro/x-3"]
    for name in ("fix login", "..weird..name.lock", "ünïcode", "-lead"):
        assert subprocess.run(["git", "check-ref-format", "--branch", git.branch_for(name)],
                              capture_output=True).returncode == 0, name


def test_status_and_ahead_behind_readers() -> None:
    text = ("# branch.oid abc\n# branch.head x\n1 .M N... 100644 100644 100644 a b f.py\n"
            "2 R. N... 100644 100644 100644 a b R100 new.py\told.py\nu UU N... 1 2 3 4 a b c c.py\n"
            "? new.txt\n! ignored.log\n")
    changes = git.parse_status(text)
    assert (changes.changed, changes.untracked, changes.unmerged, changes.dirty) == (2, 1, 1, True)
    assert not git.parse_status("# branch.oid abc\n").dirty
    assert git.parse_ahead_behind("3\t5\n") == (5, 3)
    with pytest.raises(git.GitOutputError):
        git.parse_ahead_behind("fatal: bad revision")


# -- spawning in a new worktree --------------------------------------------------------------------


async def test_spawn_in_a_new_worktree_outside_the_repository(
    daemon: Daemon, client: RawClient, short_tmp: Path, repo: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    (repo / ".worktreeinclude").write_text(".env\n")
    s = await _wt_spawn(client, repo / "src", ["sh", "-c", "pwd; cat ../.env; exec cat"], name="fix login")
    wt = s["worktree"]
    assert wt["branch"] == "maestro/fix-login" and wt["base"] == "main"
    path = Path(wt["path"])
    assert path.is_relative_to(daemon.app.data_dir / "worktrees") and not path.is_relative_to(repo)
    assert s["cwd"] == str(path / "src")  # the same subdirectory as the --cwd given
    assert (path / ".env").read_text() == "SECRET=1\n"  # named in .worktreeinclude
    assert not (path / "debug.log").exists()  # ignored but not included
    assert _git(repo, "worktree", "list", "--porcelain").count("worktree ") == 2
    assert "maestro/fix-login" in _git(repo, "branch", "--list")
    got = await client.call("session.get", {"id": s["id"]})
    assert got["worktree"]["path"] == str(path) and got["worktree"]["dirty"] is False
    history = await client.call("session.history", {"id": s["id"]})
    assert any(e["type"] == "worktree.created" for e in history["entries"])

    # The default name is taken now: the next one gets a suffix.
    await client.call("session.kill", {"id": s["id"]})
    await events.status(s["id"], "exited")
    again = await _wt_spawn(client, repo, ["cat"], name="fix login")
    assert again["worktree"]["branch"] == "maestro/fix-login-2"


async def test_spawn_in_a_worktree_is_refused_with_the_reason(
    daemon: Daemon, client: RawClient, short_tmp: Path, repo: Path
) -> None:
    await _project(client, short_tmp)
    plain = short_tmp / "plain"
    plain.mkdir()
    err = await _error(client, "session.spawn", {"project": "p", "name": "a", "agent": "command", "argv": ["cat"],
                                                 "cwd": str(plain), "worktree": True})
    assert err["code"] == errors.INVALID_PARAMS and "cwd: not inside a git repository" in err["message"]
    _git(repo, "branch", "taken")
    err = await _error(client, "session.spawn", {"project": "p", "name": "a", "agent": "command", "argv": ["cat"],
                                                 "cwd": str(repo), "worktree": True, "branch": "taken"})
    assert err["code"] == errors.INVALID_PARAMS and "branch: 'taken' already exists" in err["message"]
    err = await _error(client, "session.spawn", {"project": "p", "name": "a", "agent": "command", "argv": ["cat"],
                                                 "cwd": str(repo), "worktree": True, "base": "no-such-ref"})
    assert err["code"] == errors.INVALID_PARAMS and "base: 'no-such-ref' does not resolve" in err["message"]
    err = await _error(client, "session.spawn", {"project": "p", "name": "a", "agent": "command", "argv": ["cat"],
                                                 "cwd": str(repo), "branch": "x"})
    assert err["code"] == errors.INVALID_PARAMS and "branch: only with worktree" in err["message"]
    assert _git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert await client.call("session.list", {}) == []


async def test_setup_runs_before_the_agent_and_a_failing_one_leaves_nothing(
    daemon: Daemon, client: RawClient, short_tmp: Path, repo: Path
) -> None:
    await _project(client, short_tmp)
    script = repo / ".maestro" / "worktree-setup"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho setting up in $MAESTRO_WORKTREE_BRANCH\ntouch .ready\n")
    script.chmod(0o755)
    _git(repo, "add", ".maestro")
    _git(repo, "commit", "-qm", "setup")
    # The agent sees the setup's work the moment it starts.
    s = await _wt_spawn(client, repo, ["sh", "-c", "test -f .ready && echo READY; exec cat"], name="ok")
    history = await client.call("session.history", {"id": s["id"]})
    created = next(e for e in history["entries"] if e["type"] == "worktree.created")
    assert created["data"]["setup"]["output"] == "setting up in maestro/ok\n"
    from tests.conftest import wait_screen
    await wait_screen(daemon.app, s["id"], lambda text: "READY" in text)

    daemon.app.config.worktree.setup = ["sh", "-c", "echo cannot build >&2; exit 4"]
    err = await _error(client, "session.spawn", {"project": "p", "name": "bad", "agent": "command",
                                                 "argv": ["cat"], "cwd": str(repo), "worktree": True})
    assert err["code"] == errors.CONFLICT and "failed (exit 4): cannot build" in err["message"]
    assert err["data"]["output"] == "cannot build\n"
    assert "maestro/bad" not in _git(repo, "branch", "--list")
    assert _git(repo, "worktree", "list", "--porcelain").count("worktree ") == 2  # the repo and `ok`'s
    assert [x["name"] for x in await client.call("session.list", {})] == ["ok"]


# -- state, diff, remove, hand-on --------------------------------------------------------------------


async def test_state_follows_the_agents_edits_and_removal_guards_the_work(
    daemon: Daemon, client: RawClient, short_tmp: Path, repo: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    # The agent commits one change, leaves another uncommitted, and reports its edit like Claude Code's
    # PostToolUse hook would.
    work = ("echo feature > feature.txt && git add feature.txt && git commit -qm feature && "
            "echo wip > wip.txt && echo '{\"tool_name\": \"Bash\"}' | " + MAESTROCTL + " hook PostToolUse; "
            "exec cat")
    s = await _wt_spawn(client, repo, ["sh", "-c", work], name="w1")
    changed = await events.wait_for(lambda e: e["topic"] == "worktree.changed" and e["data"]["session_id"] == s["id"])
    assert changed["data"]["ahead"] == 1 and changed["data"]["untracked"] == 1
    got = await client.call("session.get", {"id": s["id"]})
    assert got["worktree"]["ahead"] == 1 and got["worktree"]["dirty"] is True

    env = maestroctl_env(daemon.socket_path)
    listed = await _ctl(env, "worktree", "list")
    assert "maestro/w1" in listed and "1 uncommitted" in listed
    assert "+feature" in await _ctl(env, "worktree", "diff", "w1")
    assert "feature.txt" in await _ctl(env, "worktree", "diff", "maestro/w1", "--stat")
    assert "maestro/w1 +1/-0 vs main, 1 uncommitted" in await _ctl(env, "session", "get", "w1")

    # Live: not removable. Exited with work in it: removal, delete and prune refuse or skip.
    err = await _error(client, "worktree.remove", {"id": s["id"]})
    assert err["code"] == errors.CONFLICT and "still works in" in err["message"]
    await client.call("session.kill", {"id": s["id"]})
    await events.status(s["id"], "exited")
    err = await _error(client, "worktree.remove", {"id": "maestro/w1"})
    assert err["code"] == errors.CONFLICT and "1 uncommitted change and 1 commit not in its base" in err["message"]
    err = await _error(client, "session.delete", {"id": s["id"]})
    assert err["code"] == errors.CONFLICT and "is kept" in err["message"]
    pruned = await client.call("session.prune", {})
    assert pruned["count"] == 0 and pruned["kept"][0]["id"] == s["id"]
    assert f"kept {s['id']}: its worktree" in await _ctl(env, "session", "prune")

    # Handed on: a new session continues in the same worktree and branch.
    nxt = await _spawn(client, ["sh", "-c", "git log --oneline -1; exec cat"], name="w2", worktree_of=s["id"])
    assert nxt["cwd"] == got["worktree"]["path"] and nxt["worktree"]["branch"] == "maestro/w1"
    err = await _error(client, "session.spawn", {"project": "p", "name": "w3", "agent": "command",
                                                 "argv": ["cat"], "worktree_of": s["id"]})
    assert err["code"] == errors.CONFLICT and f"in use by session {nxt['id']}" in err["message"]
    await client.call("session.kill", {"id": nxt["id"]})
    await events.status(nxt["id"], "exited")

    out = await _ctl(env, "worktree", "remove", "maestro/w1", "--force")
    assert "the branch maestro/w1 is kept" in out
    assert not Path(got["worktree"]["path"]).exists() and "maestro/w1" in _git(repo, "branch", "--list")
    assert (await client.call("session.delete", {"id": s["id"]}))["count"] == 1
    assert await client.call("worktree.list", {}) == []
    assert len(await client.call("worktree.list", {"all": True})) == 1


async def test_a_clean_merged_worktree_is_removed_with_its_branch(
    daemon: Daemon, client: RawClient, short_tmp: Path, repo: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    s = await _wt_spawn(client, repo, ["sh", "-c", "exit 0"], name="done")
    await events.status(s["id"], "exited")
    r = await client.call("worktree.remove", {"id": "done", "delete_branch": True})
    assert r["removed"] and r["branch_deleted"]
    assert "maestro/done" not in _git(repo, "branch", "--list")
    # Nothing left to keep: the session's record may go.
    assert (await client.call("session.prune", {}))["count"] == 1


async def test_cli_usage_errors(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    env = maestroctl_env(daemon.socket_path)
    err = await _ctl(env, "session", "spawn", "--project", "p", "--name", "x", "--branch", "b", "--", "cat",
                     code=2)
    assert "--branch and --base go with --worktree" in err
    with trio.fail_after(10):
        err = await _ctl(env, "worktree", "get", "nothing-here", code=1)
    assert "nothing-here" in err


async def test_coordinator_context_and_digests_name_each_workers_branch(
    daemon: Daemon, client: RawClient, short_tmp: Path, repo: Path, events: EventLog
) -> None:
    await _project(client, short_tmp)
    coord = await _spawn(client, ["cat"], name="boss", role="coordinator")
    work = ("echo x > x.txt && git add x.txt && git commit -qm x && echo '{\"tool_name\": \"Write\"}' | "
            + MAESTROCTL + " hook PostToolUse; exec cat")
    w = await _wt_spawn(client, repo, ["sh", "-c", work], name="w", parent=coord["id"])
    await events.wait_for(lambda e: e["topic"] == "worktree.changed" and e["data"]["session_id"] == w["id"])
    block = await client.call("context.coordinator", {"id": coord["id"]})
    assert f"## w ({w['id']}) · idle · branch maestro/w +1" in block["text"]
    digests = await client.call("session.digests", {"ids": [w["id"]]})
    assert digests["sessions"][0]["worktree"]["branch"] == "maestro/w"
    env = maestroctl_env(daemon.socket_path)
    assert "branch maestro/w +1" in await _ctl(env, "session", "digests", w["id"])
