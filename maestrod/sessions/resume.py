"""Relaunching an agent session whose process is gone: the argv, the environment, and "is the old one gone".

A Claude session keeps its conversation in its transcript, a Codex session in its rollout, so a new process
can take it up:
after a daemon restart that did not get the session's terminal back (a crash without systemd, a clean stop,
a reboot), and on ``session wake`` of a hibernated session. Facts from Claude Code 2.1.328
(``docs/claude-code.md``):

* ``--resume <uuid>`` continues that conversation *in the same transcript file* (SessionStart hook
  ``source: resume``, same ``transcript_path``): the transcript tailer goes on from its checkpoint;
* ``--session-id`` cannot be combined with ``--resume`` ("--session-id with --continue or --resume also
  needs --fork-session"); with ``--fork-session`` a new file is written that starts with a copy of the old
  records (same record uuids), which is why maestro does not fork: one file per conversation, no copies;
* ``--settings`` and ``--append-system-prompt`` combine with ``--resume`` (they are per process, so each
  relaunch passes them again).

Codex CLI 0.171.0 (``docs/codex.md``, checked against tests/fake_openai.py):

* ``codex resume <thread id> [the spawn's flags]`` continues that thread *appending to the same rollout
  file*, in the same ``CODEX_HOME`` (where the thread's rollout and state are); the subcommand takes the
  same flags and ``-c`` overrides as the TUI (they are per process, so each relaunch passes them again:
  the provider, trust, ``developer_instructions``). The id goes right after ``resume``: a flag taking
  several values (``--image``) given after ``--`` at spawn cannot swallow it there;
* a Codex session that never got a prompt has no rollout and no thread: it starts afresh, same CODEX_HOME.

Two processes must never write one conversation, so a relaunch waits until the old process is gone:
the pid *and* its start time (``sessions.pid_start``, field 22 of ``/proc/<pid>/stat``) must no longer
name a live process (a recycled pid has another start time).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs
import trio
import trio.lowlevel

from maestrod.config import ClaudeConfig, CodexConfig
from maestrod.identity import read_stat
from maestrod.sessions import briefing, claude, codex, launch, programs
from shared.messages.session import SessionSpawn

log = logging.getLogger("maestrod.sessions")

#: The ``--env`` values a session was spawned with (unredacted: a relaunch needs its API key), beside its
#: hook settings in the private session directory, readable by the user only.
SPAWN_ENV_FILE = "spawn-env.json"
#: How often a process that is not our child is looked at when no pidfd can be had.
POLL_GONE = 0.05


def save_spawn_env(session_dir: Path, env: Mapping[str, str]) -> None:
    session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = session_dir / SPAWN_ENV_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dict(env), f)


def load_spawn_env(session_dir: Path) -> dict[str, str] | None:
    """The saved ``--env`` values; None if the file is missing or unreadable (the session was spawned by
    an older maestrod: the stored, redacted copy is all there is)."""
    try:
        data = json.loads((session_dir / SPAWN_ENV_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        return None
    return data


def resumable(row: sqlite3.Row) -> bool:
    """Whether a relaunch can take the session's conversation up: a Claude session (its id is chosen at
    spawn), or a Codex session (its thread once it has one; before that it starts afresh, losing nothing)."""
    return (row["agent"] == "claude" and bool(row["claude_session_id"])) or row["agent"] == "codex"


def codex_thread(row: sqlite3.Row, home: Path) -> tuple[str, str] | None:
    """A Codex session's thread id and rollout file, if it wrote one: the rollout the store knows (named by
    a hook or found), else the newest in its own CODEX_HOME (it died before anybody looked); the id is the
    one a hook reported, else the uuid of the rollout's name (``rollout-<time>-<uuid>.jsonl``)."""
    path = row["transcript_path"] or codex.find_rollout(str(home))
    if not path or not os.path.isfile(path):
        return None
    match = codex.ROLLOUT_FILE.fullmatch(os.path.basename(path))
    thread = row["claude_session_id"] or (os.path.basename(path)[-42:-6] if match else None)
    return (thread, path) if thread else None


def codex_resume_argv(argv: list[str], thread_id: str) -> list[str]:
    """The spawn's argv as ``codex resume <thread id> <the same flags>``."""
    return [argv[0], "resume", thread_id, *argv[1:]]


def resume_argv(argv: list[str], claude_session_id: str) -> list[str]:
    """The spawn's argv with ``--session-id <id>`` turned into ``--resume <id>`` (everything else kept)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--session-id" and i + 1 < len(argv):
            out += ["--resume", claude_session_id]
            i += 2
            continue
        out.append(argv[i])
        i += 1
    if "--resume" not in out:
        out[1:1] = ["--resume", claude_session_id]
    return out


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot), None if it is gone -- or dead and not reaped yet
    (a zombie: a process that outlived the daemon has a new parent, which may reap it late)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if raw[raw.rfind(b")") + 2:][:1] in (b"Z", b"X"):  # field 3, the state, after the command name
        return None
    st = read_stat(pid)
    return None if st is None else st.start


def same_process(pid: int | None, start: int | None) -> bool:
    """Whether ``pid`` still names the process that started at ``start`` (None: unknown, an older row --
    then any live process with that pid counts, erring on the side of waiting)."""
    if not pid:
        return False
    now = start_time(pid)
    if now is None:
        return False
    return start is None or now == start


async def wait_gone(pid: int, start: int | None, timeout: float) -> bool:
    """Wait up to ``timeout`` for the process to end; whether it did. Not our child (it belonged to a
    previous daemon): a pidfd says when it ends, else ``/proc`` is looked at every :data:`POLL_GONE`."""
    if not same_process(pid, start):
        return True
    pidfd: int | None = None
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        if pidfd is not None and not same_process(pid, start):
            return True  # the pid was recycled between the check and the open: ours is gone
        with trio.move_on_after(timeout):
            if pidfd is not None:
                await trio.lowlevel.wait_readable(pidfd)
                return True
            while same_process(pid, start):
                await trio.sleep(POLL_GONE)
            return True
        return not same_process(pid, start)
    finally:
        if pidfd is not None:
            os.close(pidfd)


async def end_process(pid: int, start: int | None, grace: float) -> str:
    """Make sure the old process is gone: wait ``grace`` (it lost its terminal, so it normally ends by
    itself), then SIGTERM, then SIGKILL, ``grace`` apart, each sent only while the pid is still that
    process. Says how it ended (for the timeline)."""
    if await wait_gone(pid, start, grace):
        return "gone"
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGKILL, "SIGKILL")):
        if not same_process(pid, start):
            return "gone"
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return "gone"
        except PermissionError:
            return "not ours"
        log.warning("pid %d outlived its terminal; sent %s before resuming its conversation", pid, name)
        if await wait_gone(pid, start, grace):
            return f"ended by {name}"
    return "still running"


@attrs.frozen
class Relaunch:
    """What an agent session's new process is started with."""

    exec_argv: list[str]
    env: dict[str, str]
    token: str
    #: ``--resume`` / ``codex resume`` (its transcript exists); False: it never wrote one, so it starts
    #: afresh (Claude: under the same ``--session-id``).
    resumed: bool
    #: For the timeline: how it was relaunched.
    how: str
    #: Codex: the thread taken up and its rollout (known now even if no hook named them).
    thread_id: str | None = None
    transcript_path: str | None = None


def plan(row: sqlite3.Row, task_ids: list[str], *, data_dir: Path, socket_path: Path,
         claude_cfg: ClaudeConfig, codex_cfg: CodexConfig | None = None) -> Relaunch:
    """The argv and environment of a relaunch (or of the first start of a spawn that was queued when the daemon
    restarted: a command session's argv is kept as it is): the spawn's, with a fresh token, the session's tasks as they
    are now, the hook settings written again (the maestroctl path may have moved with an upgrade), the
    composed system prompt read back from its file, and ``--resume`` (Codex: ``resume <thread id>``)."""
    sid = row["id"]
    session_dir = data_dir / "sessions" / sid
    prompt_file = session_dir / briefing.SYSTEM_PROMPT_FILE
    saved = load_spawn_env(session_dir)
    if saved is None:  # spawned by an older maestrod: the stored copy, without its redacted values
        stored = json.loads(row["env"] or "{}")
        saved = {k: v for k, v in stored.items() if v != "<redacted>"}
    token = secrets.token_urlsafe(32)
    identity = {
        "MAESTRO_SESSION_ID": sid, "MAESTRO_SESSION_TOKEN": token, "MAESTRO_SOCKET": str(socket_path),
        "MAESTRO_PROJECT_ID": row["project_id"], "MAESTRO_TASK_IDS": ",".join(task_ids),
        "MAESTRO_COORDINATOR_SESSION_ID": row["parent_id"] or "", "MAESTRO_ROOT_SESSION_ID": row["root_id"],
        "MAESTRO_SYSTEM_PROMPT_FILE": str(prompt_file)}
    agent: Literal["claude", "codex", "command"] = ("codex" if row["agent"] == "codex"
                                                    else "command" if row["agent"] == "command" else "claude")
    spawn = SessionSpawn(project=row["project_id"], name=row["name"], agent=agent, env=saved)
    env = launch.session_env(spawn, identity, claude_cfg)
    argv: list[str] = json.loads(row["argv"])
    if agent == "command":  # only a queued spawn that never started: a command cannot be resumed
        try:
            env["MAESTRO_SYSTEM_PROMPT"] = prompt_file.read_text()
        except OSError:
            pass
        return Relaunch(argv, env, token, False, "as spawned (it had not started)")
    if spawn.agent == "codex":
        return _codex_plan(row, argv, env, token, session_dir, prompt_file, codex_cfg or CodexConfig())
    if not argv or not (os.path.isfile(argv[0]) and os.access(argv[0], os.X_OK)):
        argv = [programs.CLAUDE.require(claude_cfg.bin, env, " to resume the session"), *argv[1:]]
    session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (session_dir / "settings.json").write_text(json.dumps(claude.hook_settings(), indent=2))
    try:
        text = prompt_file.read_text()
    except OSError:
        text = ""
    placeholder = briefing.ARGV_PLACEHOLDER.format(path=prompt_file)
    argv = [text if a == placeholder else a for a in argv]
    path = row["transcript_path"]
    resumed = bool(path) and os.path.isfile(path)
    if resumed:
        argv = resume_argv(argv, row["claude_session_id"])
    return Relaunch(argv, env, token, resumed,
                    "--resume" if resumed else "--session-id (it had written no transcript yet)")


def _codex_plan(row: sqlite3.Row, argv: list[str], env: dict[str, str], token: str, session_dir: Path,
                prompt_file: Path, cfg: CodexConfig) -> Relaunch:
    """Codex in the same CODEX_HOME with the same flags and ``-c`` overrides, ``resume <thread id>`` once
    it has a thread. The hooks in its config.toml are written again only if they changed (Codex keeps its
    own settings in that file too)."""
    home = session_dir / codex.HOME_DIR
    env["CODEX_HOME"] = str(home)
    if not argv or not (os.path.isfile(argv[0]) and os.access(argv[0], os.X_OK)):
        argv = [programs.CODEX.require(cfg.bin, env, " to resume the session"), *argv[1:]]
    hooks = codex.hooks_toml(claude.maestroctl_command())
    try:
        current = (home / "config.toml").read_text()
    except OSError:
        current = ""
    if hooks not in current:
        codex.prepare_home(home, claude.maestroctl_command(), login_file=None)
    try:
        text = prompt_file.read_text()
    except OSError:
        text = ""
    key = "developer_instructions="
    placeholder = key + briefing.ARGV_PLACEHOLDER.format(path=prompt_file)
    argv = [key + codex.toml_string(text) if a == placeholder else a for a in argv]
    thread = codex_thread(row, home)
    if thread is None:
        return Relaunch(argv, env, token, False, "afresh (it had written no rollout yet)")
    return Relaunch(codex_resume_argv(argv, thread[0]), env, token, True, "codex resume", *thread)
