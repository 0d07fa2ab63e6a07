"""How a Claude Code session is started: the binary, its argv, the hooks, the environment.

Facts from Claude Code 2.1.328 (``docs/claude-code.md``, and checked here):

* ``--session-id <uuid>`` names the transcript before the first byte is written:
  ``<config dir>/projects/<slug of cwd>/<uuid>.jsonl``, the config dir being
  ``$CLAUDE_CONFIG_DIR`` or ``$HOME/.claude``;
* ``--settings <file>`` adds hooks for this run only; each hook gets one JSON object on stdin;
* a Claude Code process exports variables to its children (``CLAUDECODE``,
  ``CLAUDE_CODE_SESSION_ID``, ``CLAUDE_CODE_CHILD_SESSION``, ``CLAUDE_CODE_MESSAGING_SOCKET``,
  ...) that make a nested ``claude`` behave as a part of the outer one: they are scrubbed
  (:data:`NESTING_VARS`), while user settings such as ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``
  are kept.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maestrod.sessions import programs
from shared.paths import claude_project_slug

HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "Stop",
    "Notification",
    "SessionEnd",
)
#: Events whose hook configuration takes a tool matcher.
TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse", "PostToolUseFailure"})
#: Hooks Claude Code runs in the background (``"async": true``): maestro only witnesses them and never
#: answers (nothing is printed), so the agent need not wait for them -- before every tool call, at exit.
#: The others stay synchronous: SessionStart must be seen before the first prompt is confirmed,
#: UserPromptSubmit and PostToolUse may answer with context, Stop with a block decision. Async reports may
#: arrive out of order; ``maestroctl hook`` sends its start time, by which the daemon orders them.
ASYNC_EVENTS = frozenset({"PreToolUse", "PostToolUseFailure", "Notification", "SessionEnd"})

#: Variables a running Claude Code exports to its children (seen in 2.1.328 hooks and Bash tool
#: calls) that break a nested ``claude``; never inherited by a session.
NESTING_VARS = frozenset(
    {
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_EXPERIMENTAL_AGENT_TEAMS",
        "CLAUDE_CODE_SESSION_ID",
        "CLAUDE_CODE_CHILD_SESSION",
        "CLAUDE_CODE_CHILD_NOTES_DIR",
        "CLAUDE_CODE_MESSAGING_SOCKET",
        "CLAUDE_CODE_MESSAGING_TOKEN",
        "CLAUDE_CODE_SESSION_ATTENDED",
        "CLAUDE_CODE_EXECPATH",
        "CLAUDE_CODE_SSE_PORT",
        "CLAUDE_ENV_FILE",
        "CLAUDE_PID",
        "CLAUDE_PROJECT_DIR",
        "CLAUDE_EFFORT",
        "AI_AGENT",
    }
)
#: The daemon's own identity variables: a daemon started from inside an agent must not pass
#: that agent's identity on.
MAESTRO_VARS = frozenset(
    {
        "MAESTRO_SESSION_ID",
        "MAESTRO_SESSION_TOKEN",
        "MAESTRO_PROJECT_ID",
        "MAESTRO_TASK_IDS",
        "MAESTRO_COORDINATOR_SESSION_ID",
        "MAESTRO_ROOT_SESSION_ID",
    }
)


def maestroctl_command() -> list[str]:
    """``maestroctl`` by absolute path: the one installed beside this interpreter (and maestrod)."""
    beside = Path(sys.executable).parent / "maestroctl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("maestroctl")
    if found:
        return [os.path.abspath(found)]
    return [sys.executable, "-m", "maestroctl"]


def hook_settings(ctl: list[str] | None = None) -> dict[str, Any]:
    """``--settings`` content: every hook event runs ``maestroctl hook EVENT`` (in the background for
    :data:`ASYNC_EVENTS`)."""
    base = " ".join(shlex.quote(a) for a in (ctl or maestroctl_command()))
    hooks: dict[str, Any] = {}
    for event in HOOK_EVENTS:
        command: dict[str, Any] = {"type": "command", "command": f"{base} hook {event}", "timeout": 10}
        if event in ASYNC_EVENTS:
            command["async"] = True
        entry: dict[str, Any] = {"hooks": [command]}
        if event in TOOL_EVENTS:
            entry["matcher"] = "*"
        hooks[event] = [entry]
    return {"hooks": hooks}


def find_claude(configured: str | None, env: Mapping[str, str]) -> str | None:
    """The Claude Code binary: config ``[claude] bin``, then ``$MAESTRO_CLAUDE_BIN``, then PATH."""
    return programs.CLAUDE.find(configured, env)


def claude_argv(
    binary: str,
    claude_session_id: str,
    settings_path: str,
    *,
    allowed_tools: str | None,
    permission_mode: str | None,
    extra_args: list[str],
    append_system_prompt: str | None = None,
) -> list[str]:
    argv = [binary, "--session-id", claude_session_id, "--settings", settings_path]
    if append_system_prompt is not None:
        argv += ["--append-system-prompt", append_system_prompt]
    if allowed_tools:
        argv += ["--allowedTools", allowed_tools]
    if permission_mode:
        argv += ["--permission-mode", permission_mode]
    return argv + list(extra_args)


def scrub_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the variables that would make the child part of another agent or session."""
    return {k: v for k, v in env.items() if k not in NESTING_VARS and k not in MAESTRO_VARS}


def transcript_path(env: Mapping[str, str], cwd: str, claude_session_id: str) -> str:
    config_dir = env.get("CLAUDE_CONFIG_DIR") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".claude"
    )
    return os.path.join(
        config_dir, "projects", claude_project_slug(os.path.abspath(cwd)), f"{claude_session_id}.jsonl"
    )
