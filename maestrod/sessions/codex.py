"""How a Codex CLI session is started: the binary, its own CODEX_HOME, its argv, the hooks.

Facts from Codex CLI 0.171.0 (``docs/codex.md``, and checked here):

* ``CODEX_HOME`` is where Codex reads ``config.toml`` (and ``auth.json``) and writes everything else: its
  SQLite state, logs, shell snapshots and the rollouts ``sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl``.
  Each maestro session gets its own, ``<data dir>/sessions/<id>/codex-home``: the user's ``~/.codex`` is
  never read or written;
* ``-c key=value`` overrides one config value for the run (the value is TOML; not TOML: a literal string);
  ``developer_instructions`` becomes a developer message of every turn (maestro's briefing; no
  ``AGENTS.md`` is written into the user's repository);
* hooks (``[[hooks.EVENT]]`` / ``[[hooks.EVENT.hooks]]`` in ``config.toml``) run only once a person has
  trusted them ("Hooks need review") unless they are managed (``/etc/codex/requirements.toml``, MDM, cloud:
  nothing a per-session CODEX_HOME or ``-c`` can supply) or Codex runs with
  ``--dangerously-bypass-hook-trust``, which maestrod passes: the only hooks in the session's CODEX_HOME are
  maestrod's; a trusted project's own ``.codex/`` hooks run too, as they would after the person trusted them;
* ``--no-daemon``: without it the TUI installs its shared app-server (~420 MB) into CODEX_HOME;
* a hook gets one JSON object on stdin with ``session_id``, ``transcript_path`` (the rollout, which exists
  only once its first item is written), ``cwd``, ``hook_event_name`` and the event's fields; the shell tool
  reports as ``tool_name`` ``Bash``. SessionStart fires with the first prompt, not at launch.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from maestrod.sessions import programs

#: The hook events maestrod listens to (Codex has more: PreCompact, PostCompact, SubagentStart, ...).
HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse", "Stop")
#: Seconds a hook may take (Codex's default is 600; ``maestroctl hook`` gives up after 3).
HOOK_TIMEOUT = 10
#: The session's own Codex home, inside its private session directory.
HOME_DIR = "codex-home"
#: ``rollout-<time>-<uuid>.jsonl``: a Codex rollout file name.
ROLLOUT_FILE = re.compile(r"rollout-[0-9T:-]{10,32}-[0-9a-fA-F-]{36}\.jsonl")
#: Variables a running Codex exports to the commands it runs; a nested ``codex`` must not inherit them.
NESTING_VARS = frozenset({"CODEX_HOME", "CODEX_SANDBOX", "CODEX_SANDBOX_NETWORK_DISABLED", "CODEX_SESSION_ID",
                          "CODEX_THREAD_ID", "CODEX_MANAGED_BY_NPM", "CODEX_MANAGED_PACKAGE_ROOT"})


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: JSON's escapes are TOML's, except that TOML has no surrogate pairs
    (so non-ASCII stays literal UTF-8) and wants DEL escaped too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def find_codex(configured: str | None, env: Mapping[str, str]) -> str | None:
    """The Codex binary: config ``[codex] bin``, then ``$MAESTRO_CODEX_BIN``, then ``codex`` on PATH."""
    return programs.CODEX.find(configured, env)


def hooks_toml(ctl: list[str]) -> str:
    """The ``config.toml`` of a session's CODEX_HOME: every hook event runs ``maestroctl hook EVENT``."""
    base = " ".join(shlex.quote(a) for a in ctl)
    lines = ["# Written by maestrod for this session only (its own CODEX_HOME); Codex may add settings below.", ""]
    for event in HOOK_EVENTS:
        lines += [f"[[hooks.{event}]]", f"[[hooks.{event}.hooks]]", 'type = "command"',
                  f"command = {toml_string(f'{base} hook {event}')}", f"timeout = {HOOK_TIMEOUT}", ""]
    return "\n".join(lines)


def prepare_home(home: Path, ctl: list[str], *, login_file: Path | None) -> None:
    """Create the session's CODEX_HOME with maestrod's hooks; with ``login_file`` (``use_login``) a private
    copy of the user's ``auth.json`` (Codex rewrites it when it refreshes a token: never the user's own)."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / "config.toml").write_text(hooks_toml(ctl))
    if login_file is not None:
        target = home / "auth.json"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(login_file.read_bytes())


def codex_argv(binary: str, cwd: str, *, provider: str | None, base_url: str | None, env_key: str | None,
               model: str | None, instructions: str, extra_args: list[str]) -> list[str]:
    """``provider`` None: Codex's built-in ``openai`` provider (a login); else a provider of that name at
    ``base_url`` (Responses API) whose key is in ``$env_key``. ``instructions`` is the whole
    ``developer_instructions=...`` argument (or its placeholder)."""
    argv = [binary, "--no-daemon", "--dangerously-bypass-hook-trust",
            "-c", "check_for_update_on_startup=false",
            "-c", f"projects.{toml_string(cwd)}.trust_level=\"trusted\""]
    if provider is not None:
        spec = (f"{{name={toml_string(provider)}, base_url={toml_string(base_url or '')}, wire_api=\"responses\", "
                f"env_key={toml_string(env_key or '')}}}")
        argv += ["-c", f"model_provider={toml_string(provider)}", "-c", f"model_providers.{provider}={spec}"]
    if model:
        argv += ["-c", f"model={toml_string(model)}"]
    return [*argv, "-c", instructions, *extra_args]


def scrub_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in NESTING_VARS}


def check_rollout(home: str, reported: str) -> str | None:
    """``reported`` (normalised) when it is a rollout file of this session's CODEX_HOME
    (``<home>/sessions/YYYY/MM/DD/rollout-*.jsonl``, no symbolic link on the way), else None."""
    if not reported or "\x00" in reported or not os.path.isabs(reported):
        return None
    path = os.path.normpath(reported)
    day = os.path.dirname(path)
    parts = os.path.relpath(day, os.path.join(home, "sessions")).split(os.sep)
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or not ROLLOUT_FILE.fullmatch(os.path.basename(path)):
        return None
    if os.path.realpath(day) != os.path.join(os.path.realpath(home), "sessions", *parts):
        return None
    return path


def find_rollout(home: str) -> str | None:
    """The newest rollout file under ``<home>/sessions`` (the session's own home holds only its own)."""
    root = os.path.join(home, "sessions")
    best: tuple[str, str] | None = None
    try:
        for year in sorted(os.listdir(root), reverse=True):
            for month in sorted(os.listdir(os.path.join(root, year)), reverse=True):
                for day in sorted(os.listdir(os.path.join(root, year, month)), reverse=True):
                    directory = os.path.join(root, year, month, day)
                    for name in os.listdir(directory):
                        if ROLLOUT_FILE.fullmatch(name) and (best is None or name > best[0]):
                            best = (name, os.path.join(directory, name))
                    if best is not None:
                        return check_rollout(home, best[1])
    except OSError:
        return None
    return None
