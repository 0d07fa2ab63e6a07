"""``$XDG_CONFIG_HOME/maestro/config.toml``, read with stdlib tomllib and validated strictly.

Every key is optional; an unknown key or a wrong type stops the daemon at
start-up with the key's path, rather than being ignored.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Optional

import attrs

from shared.convert import structure_params
from shared.errors import RpcError


@attrs.define
class EventsConfig:
    retention: int = 10_000
    subscriber_buffer: int = 1024


@attrs.define
class SessionsConfig:
    scrollback_bytes: int = 4 * 1024 * 1024
    prompt_max_chars: int = 10_000
    prompt_rate_per_minute: int = 10
    stop_timeout: float = 3.0


@attrs.define
class ClaudeConfig:
    bin: Optional[str] = None
    allowed_tools: Optional[str] = None
    permission_mode: Optional[str] = None
    extra_args: list[str] = attrs.Factory(list)


@attrs.define
class Config:
    events: EventsConfig = attrs.Factory(EventsConfig)
    sessions: SessionsConfig = attrs.Factory(SessionsConfig)
    claude: ClaudeConfig = attrs.Factory(ClaudeConfig)


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
