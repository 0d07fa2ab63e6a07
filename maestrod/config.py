"""``$XDG_CONFIG_HOME/maestro/config.toml``, read with stdlib tomllib and validated strictly.

Every key is optional; an unknown key or a wrong type stops the daemon at
start-up with the key's path, rather than being ignored.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Optional

import attrs

from maestrod.mail.config import MailConfig
from shared.convert import structure_params
from shared.messages.session import PROMPT_MAX_CHARS
from shared.errors import RpcError


@attrs.define
class EventsConfig:
    retention: int = 10_000
    subscriber_buffer: int = 1024


@attrs.define
class SessionsConfig:
    scrollback_bytes: int = 4 * 1024 * 1024
    prompt_max_chars: int = PROMPT_MAX_CHARS
    prompt_rate_per_minute: int = 10
    stop_timeout: float = 3.0


@attrs.define
class ClaudeConfig:
    bin: Optional[str] = None
    allowed_tools: Optional[str] = None
    permission_mode: Optional[str] = None
    extra_args: list[str] = attrs.Factory(list)


@attrs.define
class DigestSettings:
    """``[digest]``: transcript digests (issue 4) - window, escalation thresholds, tailing.

    ``window``: entries per session shown by default; ``retain``: entries kept per session and mode;
    escalation: ``failure_threshold`` consecutive failed tool calls, stuck after more than
    ``stuck_tool_calls`` calls and ``stuck_seconds`` without text, ``waiting_input_seconds`` unanswered;
    tailing: ``watcher`` (auto = inotify on Linux, else watchfiles), the stat-poll fallback
    ``poll_interval``, watchfiles ``debounce_ms``/``step_ms``, and ``checkpoint_interval`` (seconds between
    checkpoint writes per session)."""

    window: int = 20
    retain: int = 500
    failure_threshold: int = 3
    stuck_tool_calls: int = 25
    stuck_seconds: float = 600.0
    waiting_input_seconds: float = 300.0
    idle_after_seconds: float = 5.0
    include_subagents: bool = True
    watcher: Literal["auto", "inotify", "watchfiles", "poll"] = "auto"
    poll_interval: float = 0.5
    debounce_ms: int = 30
    step_ms: int = 10
    checkpoint_interval: float = 1.0


@attrs.define
class ContextSettings:
    """``[context]``: what the hooks inject.  Coordinators get their ``<coordinator_context>`` (task board
    and workers' digests, within ``budget_tokens``) on every prompt, and after a tool call when workers did
    something new (``post_tool_use``); workers get nothing unless ``inject_workers``."""

    budget_tokens: int = 1500
    inject_workers: bool = False
    post_tool_use: bool = True


@attrs.define
class Config:
    events: EventsConfig = attrs.Factory(EventsConfig)
    sessions: SessionsConfig = attrs.Factory(SessionsConfig)
    claude: ClaudeConfig = attrs.Factory(ClaudeConfig)
    digest: DigestSettings = attrs.Factory(DigestSettings)
    context: ContextSettings = attrs.Factory(ContextSettings)
    mail: MailConfig = attrs.Factory(MailConfig)


class ConfigError(Exception):
    pass


def load_config(path: Path) -> Config:
    if not path.exists():
        return Config()
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return structure_params(raw, Config)
    except RpcError as exc:
        raise ConfigError(f"{path}: " + "; ".join(exc.data["errors"])) from None
