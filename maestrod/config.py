"""``$XDG_CONFIG_HOME/maestro/config.toml``, read with stdlib tomllib and validated strictly.

Every key is optional; an unknown key or a wrong type stops the daemon at
start-up with the key's path, rather than being ignored.
"""

from __future__ import annotations

import tomllib
import typing
from pathlib import Path
from typing import Literal, Optional

import attrs

from maestrod.mail.config import MailConfig
from maestrod.notify.config import NotifyConfig
from maestrod.scheduler.config import GovernorConfig, HandoffConfig
from shared.convert import structure_params
from shared.digest import DigestConfig
from shared.messages.session import PROMPT_MAX_CHARS
from shared.messages.spec import between
from shared.errors import RpcError


@attrs.define
class EventsConfig:
    """``[events]``: ``retention`` events kept for replay. A subscriber is dropped only when it stops reading:
    more than ``subscriber_max_bytes`` of its output pending, or none of it taken by its connection for
    ``subscriber_stall_seconds`` (it is told first, with the seq to resume from)."""

    retention: int = 10_000
    subscriber_max_bytes: int = attrs.field(default=8 * 1024 * 1024, validator=between(65536, 1 << 40))
    subscriber_stall_seconds: float = 10.0


@attrs.define
class ConnectionsConfig:
    """``[connections]``: input memory. One request line may be ``line_max_bytes`` long (longer: -32005 and
    the connection is closed). Input buffered across every connection is bounded by ``input_total_bytes``:
    past it, a line that grows beyond 64 KiB is refused with -32005 (the connection stays usable)."""

    line_max_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=between(1024, 1 << 40))
    input_total_bytes: int = attrs.field(default=256 * 1024 * 1024, validator=between(65536, 1 << 40))


@attrs.define
class SessionsConfig:
    scrollback_bytes: int = 4 * 1024 * 1024
    prompt_max_chars: int = PROMPT_MAX_CHARS
    prompt_rate_per_minute: int = 10
    stop_timeout: float = 3.0
    #: On start, relaunch each Claude session the previous daemon left live (its terminal was not recovered)
    #: with ``claude --resume``, keeping its identity; false: they end ``exited (lost)`` like other sessions.
    auto_resume: bool = True


@attrs.define
class ClaudeConfig:
    bin: Optional[str] = None
    allowed_tools: Optional[str] = None
    permission_mode: Optional[str] = None
    extra_args: list[str] = attrs.Factory(list)
    #: Spawned Claude Code gets ``DISABLE_AUTOUPDATER=1`` unless this is true: an agent must not replace
    #: the user's Claude Code installation in the middle of a run.
    autoupdate: bool = False


@attrs.define
class CodexConfig:
    """``[codex]``: Codex CLI sessions (``session spawn --agent codex``, docs/codex.md). The model provider
    maestrod defines for each session: ``base_url`` (an OpenAI Responses API), ``env_key`` (the name of the
    variable holding the key; the variable itself passes through the environment), ``model``; ``provider``
    names it. ``use_login = true`` uses the user's ``~/.codex/auth.json`` (a copy in the session's own
    CODEX_HOME) with Codex's built-in ``openai`` provider instead."""

    bin: Optional[str] = None
    provider: str = attrs.field(default="maestro", validator=attrs.validators.matches_re(r"[A-Za-z0-9_-]{1,64}"))
    base_url: str = "https://api.openai.com/v1"
    env_key: str = attrs.field(default="OPENAI_API_KEY",
                               validator=attrs.validators.matches_re(r"[A-Za-z_][A-Za-z0-9_]{0,127}"))
    model: Optional[str] = None
    use_login: bool = False
    extra_args: list[str] = attrs.Factory(list)


# An instance rather than a dict of attrs.fields() defaults, so each default keeps its field's type.
_DIGEST_DEFAULTS = DigestConfig()


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
    # The pure digest's tunables: their defaults live once, in shared.digest.DigestConfig.
    failure_threshold: int = _DIGEST_DEFAULTS.failure_threshold
    stuck_tool_calls: int = _DIGEST_DEFAULTS.stuck_tool_calls
    stuck_seconds: float = _DIGEST_DEFAULTS.stuck_seconds
    waiting_input_seconds: float = _DIGEST_DEFAULTS.waiting_input_seconds
    idle_after_seconds: float = _DIGEST_DEFAULTS.idle_after_seconds
    include_subagents: bool = _DIGEST_DEFAULTS.include_subagents
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


#: ``[web] port``'s default: fixed, so the dashboard's address can be bookmarked (docs/web.md).
WEB_DEFAULT_PORT = 7733


@attrs.define
class WebConfig:
    """``[web]``: the WebSocket feed and dashboard on 127.0.0.1 (docs/web.md). ``port = 0`` picks a free one."""

    enabled: bool = True
    port: int = attrs.field(default=WEB_DEFAULT_PORT, validator=between(0, 65535))


@attrs.define
class WorktreeConfig:
    """``[worktree]``: where ``spawn --worktree`` puts worktrees (``root``, default ``<data dir>/worktrees``:
    outside the repository, so tools that scan it do not see them), the ``setup`` argv run in a new worktree
    before the agent starts (default: the repository's executable ``.maestro/worktree-setup``, if any), and
    time limits for git and for the setup."""

    root: Optional[str] = None
    setup: list[str] = attrs.Factory(list)
    setup_timeout_seconds: float = attrs.field(default=600.0, validator=attrs.validators.gt(0))
    git_timeout_seconds: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))


@attrs.define
class PolicyGrant:
    """One ``[[policy.grants]]`` entry: agents of project ``agents_of`` (a name or id) may ``allow`` in
    ``projects`` (names or ids; ``"*"``: every project, also creating new ones)."""

    agents_of: str
    projects: list[str]
    allow: list[Literal["read", "write", "mail"]]


@attrs.define
class PolicyConfig:
    """``[policy]``: what agents may do outside their own project (docs/security.md). ``cross_project``
    grants every agent ``read``, ``write`` and/or ``mail`` in every project; ``grants`` per project."""

    cross_project: list[Literal["read", "write", "mail"]] = attrs.Factory(list)
    grants: list[PolicyGrant] = attrs.Factory(list)


@attrs.define
class Config:
    events: EventsConfig = attrs.Factory(EventsConfig)
    connections: ConnectionsConfig = attrs.Factory(ConnectionsConfig)
    sessions: SessionsConfig = attrs.Factory(SessionsConfig)
    claude: ClaudeConfig = attrs.Factory(ClaudeConfig)
    codex: CodexConfig = attrs.Factory(CodexConfig)
    digest: DigestSettings = attrs.Factory(DigestSettings)
    context: ContextSettings = attrs.Factory(ContextSettings)
    mail: MailConfig = attrs.Factory(MailConfig)
    worktree: WorktreeConfig = attrs.Factory(WorktreeConfig)
    notify: NotifyConfig = attrs.Factory(NotifyConfig)
    web: WebConfig = attrs.Factory(WebConfig)
    policy: PolicyConfig = attrs.Factory(PolicyConfig)
    governor: GovernorConfig = attrs.Factory(GovernorConfig)
    handoff: HandoffConfig = attrs.Factory(HandoffConfig)


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
        return _by_section(raw) or structure_params(raw, Config)
    except RpcError as exc:
        raise ConfigError(f"{path}: " + "; ".join(exc.data["errors"])) from None


def _by_section(raw: dict[str, object]) -> Config | None:
    """The sections the file has, each structured alone (None: let the whole structuring name the problem).

    Structuring the whole :class:`Config` makes cattrs generate the code for every section on first use,
    ~9 ms of each start (and of a graceful restart's pause) when a file sets one or two sections; the
    sections it leaves out are their defaults either way."""
    sections = _section_types()
    if not all(name in sections and isinstance(value, dict) for name, value in raw.items()):
        return None
    try:
        return Config(**{name: structure_params(value, sections[name]) for name, value in raw.items()})
    except RpcError:
        return None  # the whole structuring says it with each key's full path


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in attrs.fields(Config)}
