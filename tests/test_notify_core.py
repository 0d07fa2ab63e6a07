"""The notification decider (maestrod.notify.core), pure: bus events and a clock in, notifications out."""

from __future__ import annotations

from typing import Any

import pytest

from maestrod.config import Config
from maestrod.notify.core import Notification, NotifyDecider
from maestrod.notify.runner import default_command
from shared.convert import structure_params
from shared.errors import RpcError


def status(sid: str, to: str, frm: str = "idle", **extra: Any) -> dict[str, Any]:
    return {"topic": "session.status",
            "data": {"session_id": sid, "name": f"n-{sid}", "project_id": "p-1", "from": frm, "to": to, **extra}}


def attention(sid: str, reason: str | None) -> dict[str, Any]:
    return {"topic": "session.needs_attention",
            "data": {"session_id": sid, "name": f"n-{sid}", "reason": reason, "needs_attention": reason is not None}}


def test_each_kind_of_change() -> None:
    d = NotifyDecider(debounce_seconds=0, long_turn_seconds=60)
    assert d.observe(status("s1", "waiting_input", "working", reason="trust this folder?"), 0) == Notification(
        "waiting_input", "s1", "n-s1", "p-1", "trust this folder?")
    got = d.observe(attention("s1", "Claude needs your permission"), 1)
    assert got is not None and (got.event, got.reason, got.project_id) == (
        "needs_attention", "Claude needs your permission", None)
    assert d.observe(attention("s1", None), 2) is None  # clearing says nothing
    got = d.observe(status("s1", "exited", "idle", exit_reason="failed", exit_code=3, reason="process exited"), 3)
    assert got is not None and got.event == "exited" and got.reason == "failed (code 3): process exited"
    # Unrelated topics and changes say nothing.
    assert d.observe({"topic": "task.created", "data": {"id": "t"}}, 4) is None
    assert d.observe(status("s2", "idle", "spawning"), 4) is None
    assert d.observe(status("s2", "hibernated", "idle"), 4) is None
    assert d.observe({"topic": "session.status", "data": {}}, 4) is None


def test_long_turn_is_a_stretch_of_working_that_ends_idle() -> None:
    d = NotifyDecider(debounce_seconds=0, long_turn_seconds=60)
    assert d.observe(status("s", "working"), 100) is None
    assert d.observe(status("s", "idle", "working", reason="hook:Stop"), 150) is None  # 50 s: short
    assert d.observe(status("s", "working"), 200) is None
    got = d.observe(status("s", "idle", "working"), 261)
    assert got is not None and got.event == "long_turn" and got.reason == "a turn of 61 s ended"
    # A stretch broken by a dialog starts again: the dialog itself was notified.
    d.observe(status("s", "working"), 300)
    assert d.observe(status("s", "waiting_input", "working"), 390) is not None
    d.observe(status("s", "working", "waiting_input"), 400)
    assert d.observe(status("s", "idle", "working"), 430) is None
    # An exit ends the stretch too (and is notified as an exit).
    d.observe(status("s2", "working"), 0)
    got = d.observe(status("s2", "exited", "working", exit_reason="completed", exit_code=0), 500)
    assert got is not None and got.event == "exited" and got.reason == "completed (code 0)"


def test_debounce_is_per_session_and_leading_edge() -> None:
    d = NotifyDecider(debounce_seconds=10, long_turn_seconds=60)
    first = d.observe(status("a", "waiting_input", "working", reason="dialog"), 0)
    assert first is not None and first.event == "waiting_input"  # at once, not after the window
    assert d.observe(attention("a", "dialog"), 0.01) is None  # the same burst
    assert d.observe(status("b", "waiting_input"), 1) is not None  # another session is not held back
    assert d.observe(status("a", "idle", "waiting_input"), 5) is None
    assert d.observe(status("a", "waiting_input"), 9.99) is None
    assert d.debounced == 2
    assert d.observe(status("a", "waiting_input"), 10.0) is not None  # the window is measured from the run
    assert d.observe(status("a", "exited", exit_reason="stopped"), 12) is None
    assert d.debounced == 3
    # An exited session is forgotten (its id will not come back).
    assert "a" not in d._notified_at


def test_events_filter_and_pruning() -> None:
    d = NotifyDecider(events=["exited"], debounce_seconds=1, long_turn_seconds=0)
    assert d.observe(status("s", "waiting_input"), 0) is None
    assert d.observe(attention("s", "x"), 0) is None
    d.observe(status("s", "working"), 0)
    assert d.observe(status("s", "idle", "working"), 5) is None
    assert d.observe(status("s", "exited"), 6) is not None
    for i in range(1100):
        d.observe(status(f"x{i}", "exited"), 100 + i)
    assert not d._notified_at  # exits forget at once
    d2 = NotifyDecider(debounce_seconds=1)
    for i in range(1100):
        d2.observe(status(f"y{i}", "waiting_input"), float(i))
    assert len(d2._notified_at) < 100  # sessions outside every window are dropped


def test_default_command_per_platform() -> None:
    found = default_command("linux", lambda name: "/usr/bin/notify-send" if name == "notify-send" else None)
    assert found is not None
    program, argv = found
    env = {"MAESTRO_SESSION_NAME": "w1", "MAESTRO_TITLE": "needs attention", "MAESTRO_REASON": "<b>&"}
    assert program == "/usr/bin/notify-send"
    assert argv(env) == ["/usr/bin/notify-send", "--app-name=maestro", "maestro: w1 needs attention",
                         "&lt;b&gt;&amp;"]
    found = default_command("darwin", lambda name: "/usr/bin/osascript" if name == "osascript" else None)
    assert found is not None and found[0] == "/usr/bin/osascript"
    script = found[1](env)[2]
    assert 'system attribute "MAESTRO_REASON"' in script  # agent text comes from the environment
    assert default_command("linux", lambda name: None) is None
    assert default_command("win32", lambda name: "x") is None


@pytest.mark.parametrize("section, error", [
    ({"command": [""]}, "notify.command[0]: the program must not be empty"),
    ({"command": "notify-send"}, "notify.command: expected array, got string"),
    ({"command": ["a\0b"]}, "notify.command[0]: must not contain NUL"),
    ({"timeout_seconds": 0}, "notify.timeout_seconds: must be more than 0 and at most 3600, got 0"),
    ({"debounce_seconds": -1}, "notify.debounce_seconds: must be at least 0 and at most 86400, got -1"),
    ({"events": ["nope"]}, 'notify.events[0]: expected one of waiting_input|needs_attention|long_turn|exited'),
    ({"events": ["exited", "exited"]}, "notify.events: lists an event twice"),
    ({"colour": "red"}, "notify.colour: unknown field"),
])
def test_config_is_validated(section: dict[str, Any], error: str) -> None:
    with pytest.raises(RpcError) as exc:
        structure_params({"notify": section}, Config)
    assert any(e.startswith(error) for e in exc.value.data["errors"]), exc.value.data


def test_config_defaults_and_off() -> None:
    cfg = structure_params({"notify": {"command": [], "long_turn_seconds": 30}}, Config).notify
    assert cfg.command == [] and cfg.long_turn_seconds == 30.0
    assert Config().notify.command is None and Config().notify.debounce_seconds == 10.0
