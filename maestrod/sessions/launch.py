"""What a new session's process is started with: its environment and its argv, per agent kind.

Nothing here starts a process or touches the store; the per-session files maestrod owns (the hook
settings, the composed system prompt) live in ``<data dir>/sessions/<id>/`` and are the only files written.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import attrs

from maestrod.config import ClaudeConfig, CodexConfig
from maestrod.sessions import briefing, claude, codex, programs
from shared import errors
from shared.messages.session import SessionSpawn

_SECRET_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")


@attrs.define
class Launch:
    #: As stored and shown: the composed system prompt replaced by a placeholder naming its file.
    argv: list[str]
    env: dict[str, str]
    claude_session_id: str | None = None
    transcript_path: str | None = None
    placeholder: str | None = None
    #: What precedes the text in the argument the placeholder stands for (Codex: ``developer_instructions=``,
    #: the text then written as a TOML string).
    placeholder_key: str | None = None

    def real_argv(self, system_prompt: str) -> list[str]:
        """The argv to exec: the placeholder replaced by the text itself."""
        real = (system_prompt if self.placeholder_key is None
                else self.placeholder_key + codex.toml_string(system_prompt))
        return [real if a is self.placeholder else a for a in self.argv]


def stored_env(env: Mapping[str, str]) -> dict[str, str]:
    """The ``--env`` values as stored: anything that looks like a secret is redacted."""
    return {k: ("<redacted>" if any(h in k.upper() for h in _SECRET_HINTS) else v) for k, v in env.items()}


def session_env(p: SessionSpawn, identity: Mapping[str, str], claude_cfg: ClaudeConfig) -> dict[str, str]:
    """The daemon's environment without other agents' identities, plus the spawn's ``--env``, the
    terminal, maestroctl on PATH, and the session's identity (``MAESTRO_*``)."""
    env = codex.scrub_env(claude.scrub_env(os.environ))
    if p.agent == "claude" and not claude_cfg.autoupdate:
        # A spawned Claude Code must not update itself machine-wide in the middle of a run.
        env["DISABLE_AUTOUPDATER"] = "1"
    env.update(p.env)
    env["TERM"] = p.env.get("TERM", "xterm-256color")
    env.setdefault("COLORTERM", "truecolor")
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", os.defpath)
    if bindir not in path.split(os.pathsep):  # last: maestroctl found, the project's tools still win
        env["PATH"] = path + os.pathsep + bindir if path else bindir
    env.update(identity)
    return env


def claude_launch(p: SessionSpawn, env: dict[str, str], cwd: str, session_dir: Path, prompt_file: Path,
                  cfg: ClaudeConfig) -> Launch:
    binary = programs.CLAUDE.require(cfg.bin, env)
    claude_sid = str(uuid.uuid4())
    session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings = session_dir / "settings.json"
    settings.write_text(json.dumps(claude.hook_settings(), indent=2))
    placeholder = briefing.ARGV_PLACEHOLDER.format(path=prompt_file)
    argv = claude.claude_argv(binary, claude_sid, str(settings),
                              allowed_tools=p.allowed_tools or cfg.allowed_tools,
                              permission_mode=p.permission_mode or cfg.permission_mode,
                              extra_args=[*cfg.extra_args, *p.argv], append_system_prompt=placeholder)
    return Launch(argv, env, claude_sid, claude.transcript_path(env, cwd, claude_sid), placeholder)


def codex_launch(p: SessionSpawn, env: dict[str, str], cwd: str, session_dir: Path, prompt_file: Path,
                 cfg: CodexConfig) -> Launch:
    """Codex CLI in the session's own CODEX_HOME (``<session dir>/codex-home``): hooks in its config.toml,
    the provider, the folder's trust and the briefing as ``-c`` overrides. Nothing else is written."""
    binary = programs.CODEX.require(cfg.bin, env)
    if p.allowed_tools or p.permission_mode:
        raise errors.invalid_params(["allowed_tools: Claude Code options; for Codex pass its own flags after "
                                     "`--` (e.g. -- --sandbox workspace-write --ask-for-approval on-request)"])
    login_file: Path | None = None
    if cfg.use_login:
        user_home = Path(env.get("HOME") or os.path.expanduser("~"))
        login_file = user_home / ".codex" / "auth.json"
        if not login_file.is_file():
            raise errors.RpcError(errors.UNAVAILABLE, f"[codex] use_login = true, but there is no {login_file} "
                                  "(run `codex login` first)")
    home = session_dir / codex.HOME_DIR
    session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    codex.prepare_home(home, claude.maestroctl_command(), login_file=login_file)
    env["CODEX_HOME"] = str(home)
    key = "developer_instructions="
    placeholder = key + briefing.ARGV_PLACEHOLDER.format(path=prompt_file)
    argv = codex.codex_argv(binary, cwd, provider=None if cfg.use_login else cfg.provider,
                            base_url=cfg.base_url, env_key=cfg.env_key, model=cfg.model, instructions=placeholder,
                            extra_args=[*cfg.extra_args, *p.argv])
    return Launch(argv, env, placeholder=placeholder, placeholder_key=key)


def command_launch(p: SessionSpawn, env: dict[str, str], cwd: str, session_dir: Path) -> Launch:
    if not p.argv:
        raise errors.invalid_params(["argv: a command is needed (e.g. `session spawn ... -- bash -i`)"])
    argv = list(p.argv)
    prog = argv[0]
    found = (shutil.which(prog, path=env.get("PATH")) if os.sep not in prog
             else (prog if os.access(os.path.join(cwd, prog), os.X_OK) else None))
    if found is None:
        raise errors.invalid_params([f"argv: no such program: {prog}"])
    session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Launch(argv, env)
