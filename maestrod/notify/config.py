"""The ``[notify]`` section of config.toml (``maestrod.config.Config.notify``)."""

from __future__ import annotations

from typing import Any, Literal, Optional

import attrs

#: What a person is told about, in the order a single change prefers them (see ``core``).
NotifyEvent = Literal["waiting_input", "needs_attention", "long_turn", "exited"]
EVENTS: tuple[NotifyEvent, ...] = ("waiting_input", "needs_attention", "long_turn", "exited")


def _command(_inst: Any, a: "attrs.Attribute[Optional[list[str]]]", v: Optional[list[str]]) -> None:
    if v is None:
        return
    for i, arg in enumerate(v):
        if "\0" in arg:
            raise ValueError(f"{a.name}[{i}]: must not contain NUL")
    if v and not v[0]:
        raise ValueError(f"{a.name}[0]: the program must not be empty")


def _seconds(low: float, high: float, *, low_open: bool = False) -> Any:
    def check(_inst: Any, a: "attrs.Attribute[float]", v: float) -> None:
        if not (low < v if low_open else low <= v) or v > high:
            lower = f"more than {low}" if low_open else f"at least {low}"
            raise ValueError(f"{a.name}: must be {lower} and at most {high}, got {v}")

    return check


def _events(_inst: Any, a: "attrs.Attribute[Any]", v: list[str]) -> None:
    if len(set(v)) != len(v):
        raise ValueError(f"{a.name}: lists an event twice")


@attrs.define
class NotifyConfig:
    #: The program to run, as argv (no shell), with MAESTRO_EVENT, MAESTRO_SESSION_ID, MAESTRO_SESSION_NAME,
    #: MAESTRO_PROJECT and MAESTRO_REASON in its environment. Unset: ``notify-send`` (Linux) or
    #: ``osascript`` (macOS) when on PATH, else nothing; ``[]`` turns notifications off.
    command: Optional[list[str]] = attrs.field(default=None, validator=_command)
    #: Which changes notify.
    events: list[NotifyEvent] = attrs.field(factory=lambda: list(EVENTS), validator=_events)
    #: A turn (a stretch of ``working``) that ends idle after more than this notifies ``long_turn``.
    long_turn_seconds: float = attrs.field(default=120.0, validator=_seconds(0, 86400 * 7))
    #: After a notification for a session, its next changes within this window are not notified.
    debounce_seconds: float = attrs.field(default=10.0, validator=_seconds(0, 86400))
    #: The command is killed (its whole process group) if it runs longer than this.
    timeout_seconds: float = attrs.field(default=10.0, validator=_seconds(0, 3600, low_open=True))
