"""The shell's pure parts: the live state the toolbar shows (events in seq order, replays), completion from
the real parser, line classification; and that no other maestroctl command pays for prompt_toolkit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from maestroctl.shell.complete import shell_tree, split_line, wanted
from maestroctl.shell.live import Live, items
from maestroctl.shell.runner import classify
from tests.test_shell_support import Daemon, maestro  # noqa: F401


def _ev(seq: int, topic: str, **data: object) -> dict[str, object]:
    return {"seq": seq, "topic": topic, "at": "2026-01-01T00:00:00.000Z", "data": data}


def _text(live: Live) -> str:
    return "".join(text for _, text in live.toolbar("/s.sock"))


def test_events_drive_the_toolbar_in_seq_order_and_a_replayed_event_counts_once() -> None:
    live = Live()
    live.load_sessions([{"id": "s-1", "name": "alpha", "status": "idle", "needs_attention": None},
                        {"id": "s-0", "name": "gone", "status": "exited"}])
    live.seq = 10
    live.up()
    assert _text(live).split() == ["alpha", "idle"]
    live.apply(_ev(11, "session.status", session_id="s-1", name="alpha", to="working"))
    live.apply(_ev(12, "session.spawned", session={"id": "s-2", "name": "beta", "status": "spawning"}))
    live.apply(_ev(13, "session.needs_attention", session_id="s-1", reason="asks to trust /w", needs_attention=True))
    # Seen again (pushed and replayed): ignored, so an older status cannot come back.
    live.apply(_ev(11, "session.status", session_id="s-1", name="alpha", to="idle"))
    frags = live.toolbar("/s.sock")
    attention = [text for style, text in frags if style == "class:toolbar.attention"]
    assert attention == [" alpha working: asks to trust /w "]
    assert "beta spawning" in _text(live)
    assert _text(live).index("alpha") < _text(live).index("beta")  # attention first
    live.apply(_ev(14, "session.needs_attention", session_id="s-1", reason=None, needs_attention=False))
    live.apply(_ev(15, "session.status", session_id="s-2", name="beta", to="exited"))
    assert _text(live).split() == ["alpha", "working"] and live.seq == 15
    # A session the snapshot did not know (spawned while disconnected, its spawn event pruned).
    live.apply(_ev(16, "session.status", session_id="s-3", name="gamma", to="hibernated"))
    assert "gamma hibernated" in _text(live) and "gamma" in live.words["sessions"]


def test_the_toolbar_says_when_the_daemon_is_gone_and_escapes_agents_text() -> None:
    live = Live()
    assert "connecting to maestrod at /s.sock" in _text(live)
    live.load_sessions([{"id": "s-1", "name": "evil\x1b[2J", "status": "waiting_input",
                         "needs_attention": "bell\x07"}])
    live.up()
    assert "\x1b" not in _text(live) and "\x07" not in _text(live) and "evil\\x1b[2J" in _text(live)
    live.down("no socket")
    assert "maestrod unreachable (no socket): reconnecting" in _text(live) and "last known" in _text(live)
    assert "reconnecting" in "".join(t for _, t in Live(down_reason="x").toolbar("/s", running="mail wait"))


def test_events_name_the_completion_lists_to_fetch_again() -> None:
    live = Live(seq=0)
    assert live.apply(_ev(1, "task.created", task_id="t-1")) == {"tasks"}
    assert live.apply(_ev(2, "project.updated")) == {"projects"}
    assert live.apply(_ev(3, "mail.received")) == {"mail"}
    assert live.apply(_ev(4, "session.deleted")) == {"sessions"}
    live.load("projects", [{"id": "p-1", "name": "demo"}])
    assert set(live.words["projects"]) == {"p-1", "demo"}
    assert items({"items": [{"id": 1}], "next_cursor": None}) == [{"id": 1}] and items([{"id": 2}]) == [{"id": 2}]


@pytest.fixture(scope="module")
def tree() -> object:
    return shell_tree()


@pytest.mark.parametrize(("line", "kind", "has"), [
    ("", None, "session"),                                     # groups and the shell's words
    ("at", None, "attach"),
    ("session ", None, "spawn"),
    ("session stop ", "sessions", None),
    ("session wait a ", "sessions", None),                     # nargs="+": more ids
    ("attach ", "sessions", None),
    ("task update t-1 --depends-on ", "tasks", None),
    ("task update t-1 --depends-on t-2 ", "tasks", None),       # still --depends-on's values
    ("task create --project ", "projects", None),
    ("session spawn --template ", "templates", None),
    ("mail read ", "mail", None),
    ("mail send --to ", "sessions", None),
    ("task list --parent ", "tasks", None),
    ("session list --parent ", "sessions", None),
    ("template get ", "templates", None),
    ("task list --status ", None, "in_progress"),             # choices from the parser
    ("session list --st", None, "--status"),
])
def test_completion_follows_the_real_parser(tree: object, line: str, kind: str | None, has: str | None) -> None:
    words, current = split_line(line)
    want = wanted(tree, words, current)  # type: ignore[arg-type]
    assert want.kind == kind
    if has is not None:
        assert has in [*want.commands, *want.options, *(want.choices or [])]


@pytest.mark.parametrize(("text", "kind", "argv"), [
    ("", "empty", []), ("exit", "exit", []), ("help task", "help", ["task"]),
    ("attach s-1", "attach", ["session", "attach", "s-1"]), ("session attach s-1", "attach", ["session", "attach", "s-1"]),
    ("prompt s-1 --now", "prompt", ["session", "prompt", "s-1", "--now"]),
    ("session prompt s-1 --message hi", "run", ["session", "prompt", "s-1", "--message", "hi"]),
    ("maestroctl task list", "run", ["task", "list"]), ("task create --title 'a b'", "run",
                                                         ["task", "create", "--title", "a b"]),
])
def test_lines_are_classified(text: str, kind: str, argv: list[str]) -> None:
    line = classify(text)
    assert (line.kind, line.argv) == (kind, argv)
    assert classify('rpc "x').kind == "error" and classify("shell").kind == "error"


def test_other_commands_never_import_the_shell(maestro: Daemon) -> None:  # noqa: F811
    """prompt_toolkit (~100 ms) and asyncio are the shell's alone: every other command starts as before."""
    code = ("import sys; from maestroctl.main import main; rc = main(['task', 'list']); "
            "bad = [m for m in ('prompt_toolkit', 'asyncio', 'maestroctl.shell') if m in sys.modules]; "
            "print(repr(bad)); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], env=maestro.env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    # Without a terminal the shell says what it needs instead of starting.
    r = maestro.ctl("shell", check=False)
    assert r.returncode == 2 and "needs a terminal" in r.stderr


def test_the_toolbar_wraps_between_sessions_and_cuts_only_what_is_longer_than_a_line() -> None:
    from maestroctl.shell.app import wrap

    frags = [("", " "), ("a", " alpha idle "), ("", " "), ("b", " beta working "), ("", " "), ("c", "x" * 50)]
    lines = "".join(text for _, text in wrap(frags, 20)).split("\n")
    assert [line.strip() for line in lines[:2]] == ["alpha idle", "beta working"]
    assert all(len(line) <= 20 for line in lines) and len(lines[2]) == 20
    assert lines[2].endswith("…")


def test_a_crowded_toolbar_keeps_to_its_lines_and_says_how_many_more() -> None:
    from maestroctl.shell.app import wrap

    frags = [f for i in range(100) for f in (("", " "), ("s", f" agent-{i:02d} idle "))]
    lines = "".join(text for _, text in wrap(frags, 40, max_lines=3)).split("\n")
    assert len(lines) == 3 and all(len(line) <= 40 for line in lines)
    shown = sum(line.count("agent-") for line in lines)
    assert lines[-1].endswith(f" +{100 - shown} more")


def test_printing_above_the_prompt_keeps_the_terminal_raw() -> None:
    """prompt_toolkit switches to cooked mode to print above the prompt; a Ctrl-D typed then would be the
    kernel's end-of-file and a Ctrl-C a SIGINT to the shell.  The shell's input stays raw instead."""
    import os
    import pty
    import termios

    from maestroctl.shell.app import StaysRawInput

    master, slave = pty.openpty()
    try:
        with os.fdopen(os.dup(slave), "r") as tty_in:
            inp = StaysRawInput(tty_in)
            with inp.raw_mode():
                with inp.cooked_mode():
                    lflag = termios.tcgetattr(slave)[3]
                    assert not lflag & (termios.ICANON | termios.ISIG | termios.ECHO)
            # Leaving raw mode still gives the terminal back as it was.
            assert termios.tcgetattr(slave)[3] & termios.ICANON
    finally:
        os.close(master)
        os.close(slave)
