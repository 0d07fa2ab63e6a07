"""session.* (agents in PTYs the daemon owns) and hook.* (Claude Code hooks reporting in)."""

import json
from typing import Any, Literal, Optional

import attrs

from shared.messages.paging import cursor_field, limit_field
from shared.messages.spec import MethodSpec, between, doc

Role = Literal["worker", "coordinator"]
#: Every status the status machine (maestrod/sessions/status.py) can decide.
Status = Literal["queued", "spawning", "working", "waiting_input", "idle", "hibernated", "exited", "unknown"]
PromptMode = Literal["send", "paste"]
PROMPT_MAX_CHARS = 10_000


def _positive(_inst: object, a: "attrs.Attribute[int]", v: int) -> None:
    if not 1 <= v <= 10_000:
        raise ValueError(f"{a.name}: must be between 1 and 10000, got {v}")


# What reaches a process's argv or environment must be representable there (execve takes C strings, and an
# environment key cannot hold "="): refused before anything is stored, naming the field.
_NUL = "must not contain a NUL character"


def _no_nul(_inst: object, a: "attrs.Attribute[Optional[str]]", v: Optional[str]) -> None:
    if v is not None and "\x00" in v:
        raise ValueError(f"{a.name}: {_NUL}")


def _argv(_inst: object, a: "attrs.Attribute[list[str]]", v: list[str]) -> None:
    for i, arg in enumerate(v):
        if "\x00" in arg:
            raise ValueError(f"{a.name}[{i}]: {_NUL}")


def _env(_inst: object, a: "attrs.Attribute[dict[str, str]]", v: dict[str, str]) -> None:
    for key, value in v.items():
        shown = json.dumps(key, ensure_ascii=False)
        if not key:
            raise ValueError(f"{a.name}: a key must not be empty")
        if "=" in key:
            raise ValueError(f'{a.name}: key {shown} must not contain "="')
        if "\x00" in key:
            raise ValueError(f"{a.name}: key {shown} {_NUL}")
        if "\x00" in value:
            raise ValueError(f"{a.name}: the value of {shown} {_NUL}")


@attrs.define
class Session:
    id: str
    project_id: str
    name: str
    role: str
    parent_id: Optional[str]
    root_id: str
    agent: str
    argv: list[str]
    cwd: str
    status: str
    exit_reason: Optional[str]
    exit_code: Optional[int]
    pid: Optional[int]
    rows: int
    cols: int
    needs_attention: Optional[str]
    claude_session_id: Optional[str]
    transcript_path: Optional[str]
    task_ids: list[str]
    created_at: str
    updated_at: str
    exited_at: Optional[str]
    #: Live facts (not stored): prompts waiting for the agent to be idle, attached viewers,
    #: whether the program enabled bracketed paste (DECSET 2004).
    queued_prompts: int = 0
    viewers: int = 0
    bracketed_paste: bool = False
    #: The git worktree it works in (``spawn --worktree``): path, branch, base, ahead/behind, changes.
    worktree: Optional[dict[str, Any]] = None
    #: The whole process tree's resident memory and CPU (percent of one core since the previous look), from
    #: /proc, sampled at most once a second; None when it holds no process.
    rss_bytes: Optional[int] = None
    cpu_percent: Optional[float] = None


@attrs.define
class SessionSpawn:
    project: str = attrs.field(metadata=doc("project id, prefix or name"))
    name: str = attrs.field(metadata=doc("a name for people and `session list`"))
    cwd: Optional[str] = attrs.field(
        default=None, metadata=doc("working directory (must exist; default: the project's dir)")
    )
    role: Role = "worker"
    parent: Optional[str] = attrs.field(
        default=None, metadata=doc("parent (coordinator) session; default: the calling session, if any")
    )
    task_ids: list[str] = attrs.field(factory=list, metadata=doc("tasks this session works on"))
    prompt: Optional[str] = attrs.field(
        default=None, metadata=doc("first prompt, delivered (and confirmed) as soon as the agent is ready")
    )
    rows: int = attrs.field(default=40, validator=_positive)
    cols: int = attrs.field(default=120, validator=_positive)
    env: dict[str, str] = attrs.field(
        factory=dict, validator=_env, metadata=doc("extra environment for the process")
    )
    agent: Literal["claude", "codex", "command"] = attrs.field(
        default="claude",
        metadata=doc("claude: Claude Code with hooks; codex: Codex CLI with hooks; command: run `argv` as is"),
    )
    argv: list[str] = attrs.field(
        factory=list, validator=_argv,
        metadata=doc("command: the program and its args; claude/codex: extra args for the agent"),
    )
    allowed_tools: Optional[str] = attrs.field(
        default=None, validator=_no_nul, metadata=doc('claude --allowedTools, e.g. "Bash Read Edit"')
    )
    permission_mode: Optional[str] = attrs.field(
        default=None, validator=_no_nul, metadata=doc("claude --permission-mode")
    )
    template: Optional[str] = attrs.field(
        default=None,
        metadata=doc(
            "the workflow template in the agent's system prompt (default: execute-simple for a worker, "
            "coordinate-default for a coordinator; `none`: no workflow)"
        ),
    )
    subject: Optional[str] = attrs.field(
        default=None, validator=_no_nul,
        metadata=doc("directive subject: <coordinator_directive>, and the first mail"),
    )
    message: Optional[str] = attrs.field(
        default=None, validator=_no_nul,
        metadata=doc("directive text (without subject: its first line is the subject)"),
    )
    worktree: bool = attrs.field(
        default=False,
        metadata=doc("start the agent in a new git worktree of cwd's repository, on a new branch"),
    )
    branch: Optional[str] = attrs.field(
        default=None, validator=_no_nul,
        metadata=doc("the worktree's new branch (default: maestro/<name>, with a suffix when taken)"),
    )
    base: Optional[str] = attrs.field(
        default=None, validator=_no_nul, metadata=doc("the commit or branch the worktree starts from (default: HEAD)")
    )
    worktree_of: Optional[str] = attrs.field(
        default=None, validator=_no_nul,
        metadata=doc("start the agent in the worktree of this exited session (its branch, its work)"),
    )

    def __attrs_post_init__(self) -> None:
        if (self.branch is not None or self.base is not None) and not self.worktree:
            raise ValueError(f"{'branch' if self.branch is not None else 'base'}: only with worktree")
        if self.worktree and self.worktree_of is not None:
            raise ValueError("worktree_of: either a new worktree or an existing one, not both")

    @name.validator
    def _name(self, _a: object, v: str) -> None:
        if not v.strip():
            raise ValueError("name: must not be empty")
        if "\x00" in v:  # the name is in the composed system prompt: claude's argv, $MAESTRO_SYSTEM_PROMPT
            raise ValueError(f"name: {_NUL}")


@attrs.define
class SessionList:
    project: Optional[str] = None
    status: Optional[list[Status]] = attrs.field(default=None, metadata=doc("any of these statuses"))
    active: bool = attrs.field(default=False, metadata=doc("leave out exited sessions"))
    parent: Optional[str] = attrs.field(default=None, metadata=doc("sessions spawned by this one"))
    my_workers: bool = attrs.field(default=False, metadata=doc("sessions the calling session spawned"))
    siblings: bool = attrs.field(
        default=False, metadata=doc("sessions spawned by the calling session's coordinator (not itself)")
    )
    limit: Optional[int] = limit_field()
    cursor: Optional[str] = cursor_field()


@attrs.define
class SessionRef:
    id: str = attrs.field(metadata=doc("session id, unique prefix, or name"))


@attrs.define
class SessionOutput:
    id: str
    offset: int = attrs.field(default=0, metadata=doc("absolute byte offset in the session's output"))
    limit: int = attrs.field(default=65536, validator=between(1, 1 << 20),
                             metadata=doc("at most this many bytes (1..1048576)"))


@attrs.define
class SessionInput:
    id: str
    text: Optional[str] = attrs.field(default=None, metadata=doc("keys to type, as is (UTF-8)"))
    data: Optional[str] = attrs.field(default=None, metadata=doc("raw bytes, base64"))


@attrs.define
class SessionResize:
    id: str
    rows: int = attrs.field(validator=_positive)
    cols: int = attrs.field(validator=_positive)


@attrs.define
class SessionPrompt:
    id: str
    message: str = attrs.field(metadata=doc(f"at most {PROMPT_MAX_CHARS} characters"))
    mode: PromptMode = attrs.field(default="send", metadata=doc("send: paste then Enter; paste: no Enter"))
    now: bool = attrs.field(default=False, metadata=doc("deliver even while the agent is working"))


@attrs.define
class SessionStop:
    id: str
    wait: bool = attrs.field(default=True, metadata=doc("answer once the process has exited"))


@attrs.define
class SessionAttach:
    id: str
    rows: Optional[int] = attrs.field(
        default=None, validator=attrs.validators.optional(_positive),
        metadata=doc("the viewer's terminal size: the session follows the most recent attacher"),
    )
    cols: Optional[int] = attrs.field(default=None, validator=attrs.validators.optional(_positive))
    since: Optional[int] = attrs.field(
        default=None, validator=attrs.validators.optional(between(0, (1 << 63) - 1)),
        metadata=doc("resume a stream cut off (e.g. by a daemon restart): the output after this offset (the "
                     "last session.output's) instead of a repaint, when the scrollback still holds it"),
    )


WaitUntil = Literal["exited", "idle"]


@attrs.define
class SessionWait:
    ids: list[str] = attrs.field(metadata=doc("sessions (ids, unique prefixes or names): all must get there"))
    until: WaitUntil = attrs.field(
        default="exited",
        metadata=doc(
            "exited; or idle: not working any more (idle, or waiting for input, with no prompt queued or "
            "unconfirmed) -- an exited session counts as idle too"
        ),
    )
    timeout: Optional[float] = attrs.field(
        default=None, metadata=doc("seconds; then the answer lists the sessions not there yet (no limit: wait)")
    )


@attrs.define
class HookEvent:
    event: str = attrs.field(metadata=doc("the hook event name, e.g. Stop"))
    payload: dict[str, Any] = attrs.field(factory=dict, metadata=doc("the JSON Claude Code gave the hook"))
    started_monotonic: Optional[float] = attrs.field(default=None, metadata=doc(
        "when the hook's process started, in seconds of the system-wide monotonic clock (Python's "
        "time.monotonic()): hooks that run in the background may report out of order, and the daemon "
        "orders them by this (moved back at most a few seconds); absent: when the report arrives"))

    @started_monotonic.validator
    def _check_started(self, a: "attrs.Attribute[Optional[float]]", v: Optional[float]) -> None:
        if v is not None and not 0 <= v < float("inf"):  # NaN compares false too
            raise ValueError(f"{a.name}: must be a finite number, not negative, got {v}")


METHODS = [
    MethodSpec(
        "session.spawn",
        SessionSpawn,
        "Start Claude Code (or any argv) in a PTY the daemon owns; answers the new session.",
    ),
    MethodSpec("session.list", SessionList, "List sessions (by project, status, family)."),
    MethodSpec("session.get", SessionRef, "Get one session."),
    MethodSpec("session.screen", SessionRef, "The session's visible screen as text, with the cursor."),
    MethodSpec("session.output", SessionOutput, "Raw output bytes (base64) from an absolute offset."),
    MethodSpec("session.input", SessionInput, "Type raw keys into the session's terminal."),
    MethodSpec("session.resize", SessionResize, "Change the session's terminal size."),
    MethodSpec("session.interrupt", SessionRef, "Interrupt the agent: Escape for Claude, Ctrl-C otherwise."),
    MethodSpec(
        "session.prompt",
        SessionPrompt,
        "Send a prompt (bracketed paste + Enter); queued while the agent is working unless `now`.",
    ),
    # Answered in order like every call but the long waits: with `wait` they take at most about twice
    # `[sessions] stop_timeout`; `wait: false` answers at once.
    MethodSpec("session.stop", SessionStop, "Stop: SIGHUP, then SIGTERM, then SIGKILL."),
    MethodSpec("session.kill", SessionStop, "Kill at once (SIGKILL)."),
    MethodSpec("session.hibernate", SessionRef,
               "Stop an idle Claude session's process and keep its identity (status hibernated); answers once "
               "the process has exited."),
    MethodSpec("session.wake", SessionRef,
               "Resume a hibernated Claude session (claude --resume): same id, name, tasks and mail, a fresh "
               "token; answers once the process has started."),
    MethodSpec(
        "session.attach",
        SessionAttach,
        "Stream the terminal: a repaint, then `session.output` notifications until detached or "
        "exited; the answer comes at the end.",
        concurrent=True,
    ),
    MethodSpec("session.detach", SessionRef, "End this connection's attach streams for the session."),
    MethodSpec(
        "session.wait",
        SessionWait,
        "Block until every listed session is exited (or idle); those already there count at once. "
        "Answers {until, done, reached, pending, sessions}; done is false when the timeout passed.",
        concurrent=True,
    ),
    MethodSpec(
        "hook.event",
        HookEvent,
        "A Claude Code hook reporting (needs the session token); answers what the hook prints.",
    ),
]


# -- housekeeping and inspection: delete, prune, history, explain --------------------------------------

#: ``session prune --older-than``: a number and a unit, or several (``1d12h``).
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The longest ``older_than`` taken (about 100 years): beyond that, dates overflow.
DURATION_MAX_S = 5200 * 7 * 86400


def parse_duration(text: str) -> int:
    """Seconds in ``30m``, ``2h``, ``7d``, ``1w`` or a sum of them (``1d12h``); ValueError saying why."""
    import re

    spec = text.strip().lower()
    parts = re.findall(r"(\d+)\s*([smhdw])\s*", spec)
    if not spec or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", spec):
        raise ValueError(f"expected a duration such as 30m, 2h, 7d or 1w (units s, m, h, d, w), got {text!r}")
    seconds = sum(int(n) * DURATION_UNITS[u] for n, u in parts)
    if seconds > DURATION_MAX_S:
        raise ValueError(f"at most {DURATION_MAX_S // (7 * 86400)}w, got {text!r}")
    return seconds


def _duration(_inst: object, a: "attrs.Attribute[Optional[str]]", v: Optional[str]) -> None:
    if v is not None:
        try:
            parse_duration(v)
        except ValueError as exc:
            raise ValueError(f"{a.name}: {exc}") from None


@attrs.define
class SessionPrune:
    project: Optional[str] = attrs.field(
        default=None, metadata=doc("only this project's sessions (id, prefix or name); default: all of them")
    )
    older_than: Optional[str] = attrs.field(
        default=None, validator=_duration,
        metadata=doc("only sessions that exited longer ago than this: 30m, 2h, 7d, 1w (or 1d12h)"),
    )


@attrs.define
class SessionHistory:
    id: str = attrs.field(metadata=doc("session id, unique prefix, or name"))
    limit: int = attrs.field(
        default=200, validator=_positive, metadata=doc("the latest this many timeline rows and prompts")
    )


METHODS += [
    MethodSpec(
        "session.delete",
        SessionRef,
        "Remove an exited session with its rows (prompts, task links, timeline); a live one is refused.",
    ),
    MethodSpec(
        "session.prune",
        SessionPrune,
        "Remove exited sessions (of a project, exited longer ago than older_than); answers what went.",
    ),
    MethodSpec(
        "session.history",
        SessionHistory,
        "A session's timeline (status changes with reason and source, prompts, attention, hooks, input, "
        "attach) and its prompts with their state.",
    ),
    MethodSpec(
        "session.explain",
        SessionRef,
        "Why the session has its status: the deciding source, each source's latest observation, the "
        "screen rule, whether a prompt may be typed now, queued prompts.",
    ),
]


# -- the screen model for viewers that draw it themselves (the dashboard) ------------------------------

#: ``session.watch_screen``: frames a second, at most.
WATCH_RATE_MAX = 30.0


@attrs.define
class SessionWatchScreen:
    id: str = attrs.field(metadata=doc("session id, unique prefix, or name"))
    max_rate: float = attrs.field(default=10.0, metadata=doc(f"frames a second at most (0.1..{WATCH_RATE_MAX:g})"))

    @max_rate.validator
    def _max_rate(self, _a: object, v: float) -> None:
        if not 0.1 <= v <= WATCH_RATE_MAX:  # NaN fails too
            raise ValueError(f"max_rate: must be between 0.1 and {WATCH_RATE_MAX:g}, got {v}")


METHODS += [
    MethodSpec(
        "session.screen_model",
        SessionRef,
        "The screen as rows of styled runs [text, style] with a style table (fg/bg as palette index or "
        "#rrggbb, bold, italic, ...) and the cursor; `revision` is the output byte count it shows.",
    ),
    MethodSpec(
        "session.watch_screen",
        SessionWatchScreen,
        "Stream `session.screen_model` notifications: one at once, then one whenever the screen changed "
        "(at most max_rate a second), until unwatched, exited or disconnected; the answer comes at the end.",
        concurrent=True,
    ),
    MethodSpec("session.unwatch_screen", SessionRef, "End this connection's screen watches of the session."),
]
