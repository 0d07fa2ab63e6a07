"""The Stop-hook decision: block while urgent mail is unread, summarise it, cap consecutive blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maestrod.app import App
from maestrod.config import Config
from maestrod.mail import MailConfig, install_hooks, note_turn_start, stop_hook_decision
from maestrod.mail.wake import MAIL_NOT_ERROR
from tests.test_mail_support import (
    call,
    family_app,  # noqa: F401  (the `app` fixture)
)


def send(app: App, frm: str, to: str, subject: str, priority: str = "high", type_: str = "query") -> Any:
    return app.mail.send(frm, [to], type_=type_, subject=subject, body="...", priority=priority)


def test_no_mail_lets_the_agent_stop(app: App) -> None:
    assert stop_hook_decision(app.mail, "s-coord", False) is None
    send(app, "s-w1", "s-coord", "fyi", priority="normal")
    assert stop_hook_decision(app.mail, "s-coord", False) is None  # below the threshold


def test_urgent_mail_blocks_with_a_summary(app: App) -> None:
    send(app, "s-w1", "s-coord", "schema question")
    send(app, "s-w2", "s-coord", "db is down", priority="critical", type_="blocked")
    send(app, "s-w2", "s-coord", "minor", priority="low")
    d = stop_hook_decision(app.mail, "s-coord", False)
    assert d is not None and d["decision"] == "block"
    reason = d["reason"]
    assert reason.startswith(MAIL_NOT_ERROR + " 2 unread: ")
    # most urgent first, sender by name, subject quoted, and how to read them
    assert "blocked from worker-2 'db is down' [critical], query from worker-1 'schema question'" in reason
    assert "minor" not in reason
    assert "`maestroctl mail wait --timeout 0`" in reason and "`maestroctl mail inbox --unread`" in reason


def test_summary_is_bounded(app: App) -> None:
    for i in range(7):
        send(app, "s-w1", "s-coord", f"question {i} " + "x" * 100)
    reason = stop_hook_decision(app.mail, "s-coord", False)["reason"]  # type: ignore[index]
    assert reason.startswith(MAIL_NOT_ERROR + " 7 unread: ") and "and 4 more" in reason
    assert "question 3" not in reason and "…'" in reason and len(reason) < 600


def test_consecutive_blocks_are_capped(app: App) -> None:
    send(app, "s-w1", "s-coord", "urgent")
    assert stop_hook_decision(app.mail, "s-coord", False) is not None       # 1: the turn ended
    assert stop_hook_decision(app.mail, "s-coord", True) is not None        # 2: it ignored the mail
    assert stop_hook_decision(app.mail, "s-coord", True) is not None        # 3
    assert stop_hook_decision(app.mail, "s-coord", True) is None            # capped: it may stop
    assert stop_hook_decision(app.mail, "s-coord", True) is None
    # a new turn (a Stop that is not a forced continuation) starts counting again
    assert stop_hook_decision(app.mail, "s-coord", False) is not None


def test_cap_is_per_session(app: App) -> None:
    send(app, "s-w1", "s-coord", "a")
    send(app, "s-coord", "s-w1", "b")
    for _ in range(3):
        assert stop_hook_decision(app.mail, "s-coord", True) is not None
    assert stop_hook_decision(app.mail, "s-coord", True) is None
    assert stop_hook_decision(app.mail, "s-w1", True) is not None


async def test_reading_mail_restarts_the_count(app: App) -> None:
    m = send(app, "s-w1", "s-coord", "first")
    send(app, "s-w2", "s-coord", "second")
    for _ in range(3):
        assert stop_hook_decision(app.mail, "s-coord", True) is not None
    assert stop_hook_decision(app.mail, "s-coord", True) is None
    await call(app, "s-coord", "mail.read", {"id": m["id"]})  # it acted on its mail
    d = stop_hook_decision(app.mail, "s-coord", True)
    assert d is not None and d["reason"].startswith(MAIL_NOT_ERROR + " 1 unread: ")
    await call(app, "s-coord", "mail.wait", {"timeout": 0})
    assert stop_hook_decision(app.mail, "s-coord", True) is None  # nothing urgent left


def test_user_prompt_restarts_the_count(app: App) -> None:
    send(app, "s-w1", "s-coord", "urgent")
    for _ in range(3):
        stop_hook_decision(app.mail, "s-coord", True)
    assert stop_hook_decision(app.mail, "s-coord", True) is None
    note_turn_start(app.mail, "s-coord")
    assert stop_hook_decision(app.mail, "s-coord", True) is not None


def test_a_stop_without_urgent_mail_breaks_the_streak(app: App) -> None:
    m = send(app, "s-w1", "s-coord", "urgent")
    stop_hook_decision(app.mail, "s-coord", True)
    stop_hook_decision(app.mail, "s-coord", True)
    app.mail.store.mark_read("s-coord", [m["id"]])  # read without an event (e.g. another path)
    assert stop_hook_decision(app.mail, "s-coord", True) is None
    send(app, "s-w1", "s-coord", "again")
    for _ in range(3):
        assert stop_hook_decision(app.mail, "s-coord", True) is not None


@pytest.mark.parametrize(("threshold", "blocking"), [
    ("critical", {"critical"}),
    ("high", {"critical", "high"}),
    ("normal", {"critical", "high", "normal"}),
    ("low", {"critical", "high", "normal", "low"}),
])
def test_threshold_is_configurable(app: App, threshold: str, blocking: set[str]) -> None:
    app.mail.config = MailConfig(wake_priority=threshold)
    for prio in ("critical", "high", "normal", "low"):
        m = send(app, "s-w1", "s-coord", prio, priority=prio)
        d = stop_hook_decision(app.mail, "s-coord", False)
        assert (d is not None) == (prio in blocking), prio
        app.mail.store.mark_read("s-coord", [m["id"]])


def test_cap_is_configurable(app: App) -> None:
    app.mail.config = MailConfig(wake_max_blocks=1)
    send(app, "s-w1", "s-coord", "urgent")
    assert stop_hook_decision(app.mail, "s-coord", False) is not None
    assert stop_hook_decision(app.mail, "s-coord", True) is None
    app.mail.config = MailConfig(wake_max_blocks=0)
    assert stop_hook_decision(app.mail, "s-coord", False) is None  # waking disabled


def test_config_section_is_read_from_the_app_config(tmp_path: Path) -> None:
    config = Config()
    config.mail = MailConfig(wake_priority="critical")
    app = App(tmp_path / "data", tmp_path / "d.sock", config)  # the app hands Mail its [mail] section
    assert app.mail.config.wake_priority == "critical"
    app.close()


async def test_hook_extension_adapters(app: App) -> None:
    ext = app.hook_extensions
    install_hooks(ext, app.mail)
    send(app, "s-w1", "s-coord", "urgent")
    d = await ext.stop_decision("s-coord", {"hook_event_name": "Stop", "stop_hook_active": False})
    assert d is not None and d["decision"] == "block"
    for _ in range(2):
        assert await ext.stop_decision("s-coord", {"stop_hook_active": True})
    assert await ext.stop_decision("s-coord", {"stop_hook_active": True}) is None  # capped
    await ext.notify("s-coord", "UserPromptSubmit", {"prompt": "go on"})
    assert await ext.stop_decision("s-coord", {"stop_hook_active": True})  # a new turn
