"""Hardening items 13 and 14: what agents write cannot forge log lines or drive a terminal; global flags may
follow the command.

13: a method name with a newline forged lines in the text log; session names, titles and messages with ESC
    sequences reached the terminal raw through maestroctl's tables.  Now text logs escape control
    characters (JSON logs were already safe) and human output spells them out (`\\x1b`); `--json` output is
    still exactly the daemon's bytes.
14: the README's `maestroctl digest FILE --json` failed ("unrecognized arguments"): `--json` and `--socket`
    are now taken after the command too, by argparse and by the compiled fast path alike.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from maestroctl import fastargs
from maestroctl.main import build_parser
from maestroctl.output import safe, table
from maestrod.logs import JsonFormatter, TextFormatter
from shared.jsonrpc import notification
from tests.conftest import MAESTROCTL, Daemon, RawClient, insert_session, maestroctl_env
from tests.test_digest_service_support import prompt, say
from tests.test_fastargs import argparse_vars, command_lines

EVIL = "w\x1b]0;pwned\x07\x1b[2J\r\x9b31m\u202egnp.exe\x7f"
SHOWN = "w\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x9b31m\\u202egnp.exe\\x7f"


# -- human output ------------------------------------------------------------------------------------------


def test_safe_spells_out_controls_and_keeps_text() -> None:
    assert safe(EVIL) == SHOWN
    plain = "12:00 Bash: npm test ✗ exit 1 — naïve\n\tindented"
    assert safe(plain) is plain  # the common case is returned as is
    assert safe("\x00\x1f\x80\x9f\u2066") == "\\x00\\x1f\\x80\\x9f\\u2066"
    assert safe(safe(EVIL)) == SHOWN


@given(st.text())
def test_safe_output_has_no_controls_but_newline_and_tab(text: str) -> None:
    out = safe(text)
    assert not [c for c in out if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0
                or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069]


def test_table_cells_are_escaped_before_the_columns_are_measured() -> None:
    out = table([{"name": EVIL, "status": "idle"}, {"name": "b", "status": "working"}],
                [("name", "NAME"), ("status", "STATUS")])
    lines = out.split("\n")
    assert "\x1b" not in out and SHOWN in lines[1]
    assert lines[1].index("idle") == lines[2].index("working")


async def ctl(daemon: Daemon, *args: str) -> Any:
    return await trio.run_process([MAESTROCTL, *args], capture_stdout=True, capture_stderr=True,
                                  env=maestroctl_env(daemon.socket_path), check=False)


async def test_agent_text_reaches_the_terminal_escaped_and_json_keeps_the_bytes(
        daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    project = await client.call("project.create", {"name": "p", "dir": str(short_tmp)})
    insert_session(daemon.app, "s-evil", project["id"], name=EVIL)
    await client.call("task.create", {"project": project["id"], "title": "title " + EVIL})

    r = await ctl(daemon, "session", "list")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert SHOWN in out and "\x1b" not in out and "\x9b" not in out and "\r" not in out

    r = await ctl(daemon, "task", "list", "--project", project["id"])
    assert ("title " + SHOWN)[:59] in r.stdout.decode() and b"\x1b" not in r.stdout

    r = await ctl(daemon, "events", "replay", "--since", "0")
    assert r.returncode == 0 and b"\x1b" not in r.stdout and b"\\\\x1b" not in r.stdout
    assert "\\u001b]0;pwned" in r.stdout.decode()  # the JSON in the line, with C1/bidi spelled out too
    assert b"\xc2\x9b" not in r.stdout

    # --json: the daemon's bytes, the control characters as JSON escapes, decoding to the very name
    r = await ctl(daemon, "--json", "session", "list")
    assert r.returncode == 0 and b"\x1b" not in r.stdout and b"\\u001b" in r.stdout
    assert [s["name"] for s in json.loads(r.stdout)] == [EVIL]

    # an error message quoting what was asked for
    r = await ctl(daemon, "task", "get", "t-\x1b[2Jx")
    assert r.returncode == 1 and b"\x1b" not in r.stderr and b"t-\\x1b[2Jx" in r.stderr


def test_digest_escapes_the_agents_words_but_not_its_json(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(prompt("go", 0) + say("done \x1b[2J\x1b]0;title\x07 here", 1))
    env = maestroctl_env(Path("/nonexistent/maestrod.sock"))
    human = subprocess.run([MAESTROCTL, "digest", str(path), "--mode", "text"], env=env, capture_output=True,
                           timeout=60, check=True)
    assert b"\x1b" not in human.stdout and b"done \\x1b[2J\\x1b]0;title\\x07 here" in human.stdout
    raw = subprocess.run([MAESTROCTL, "--json", "digest", str(path), "--mode", "text"], env=env,
                         capture_output=True, timeout=60, check=True)
    assert json.loads(raw.stdout)["entries"][-1]["summary"] == "done \x1b[2J\x1b]0;title\x07 here"


# -- the daemon's log --------------------------------------------------------------------------------------

FORGED = "x\n2026-01-01 00:00:00,000 WARNING maestrod.server: refused a connection\x1b[2J"


def test_text_log_escapes_the_message_and_indents_tracebacks() -> None:
    fmt = TextFormatter()
    record = logging.LogRecord("maestrod.dispatch", logging.INFO, __file__, 1, "notification %s failed: %s",
                               (FORGED, "Method not found: " + FORGED), None)
    line = fmt.format(record)
    assert "\n" not in line and "\x1b" not in line and "x\\n2026-01-01" in line and "\\x1b[2J" in line
    try:
        raise RuntimeError("bad\n" + FORGED)
    except RuntimeError:
        record = logging.LogRecord("maestrod.dispatch", logging.ERROR, __file__, 1, "internal error in %s",
                                   (FORGED,), sys.exc_info())
    text = fmt.format(record)
    lines = text.split("\n")
    assert lines[0].count("\\n") == 1 and all(line.startswith("  ") for line in lines[1:])
    assert "\x1b" not in text and "RuntimeError: bad" in text
    # JSON logs were already one object per line; unchanged
    assert json.loads(JsonFormatter().format(record))["message"] == "internal error in " + FORGED


async def test_a_method_name_cannot_forge_a_log_line(client: RawClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("maestrod")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await client.send(notification(FORGED, {}))  # a failing notification is logged with its method
        assert await client.call("system.ping") == "pong"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    logged = stream.getvalue().splitlines()
    assert len(logged) == 1 and "notification x\\n2026-01-01" in logged[0] and "\x1b" not in logged[0]


# -- item 14: global flags after the command --------------------------------------------------------------


def test_readme_digest_line_works(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(prompt("go", 0) + say("done", 1))
    env = maestroctl_env(Path("/nonexistent/maestrod.sock"))
    after = subprocess.run([MAESTROCTL, "digest", str(path), "--mode", "text", "--last", "5", "--json"], env=env,
                           capture_output=True, timeout=60, check=False)
    before = subprocess.run([MAESTROCTL, "--json", "digest", str(path), "--mode", "text", "--last", "5"], env=env,
                            capture_output=True, timeout=60, check=False)
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout and json.loads(after.stdout)["entries"][-1]["summary"] == "done"


def parsed(argv: list[str]) -> dict[str, Any] | None:
    fast = fastargs.parse(argv)
    slow = argparse_vars(argv)
    if fast is not None:
        assert vars(fast) == slow, argv
    return slow


@pytest.mark.parametrize("argv, json_, socket", [
    (["task", "list", "--project", "P", "--json"], True, None),
    (["--socket", "/a", "task", "list", "--project", "P", "--socket", "/b"], False, "/b"),
    (["--json", "task", "get", "t-1", "--socket=/c"], True, "/c"),
    (["digest", "f.jsonl", "--json", "--last", "3"], True, None),
    (["ping", "--json"], True, None),
    (["session", "wait", "s-1", "--timeout", "5", "--json"], True, None),
])
def test_json_and_socket_are_taken_after_the_command(argv: list[str], json_: bool, socket: str | None) -> None:
    assert fastargs.parse(argv) is not None, "the fast path should take this"
    got = parsed(argv)
    assert got is not None and got["json"] is json_ and got["socket"] == socket


def test_timeout_after_the_command_stays_the_commands_own() -> None:
    wait = parsed(["session", "wait", "s-1", "--timeout", "5"])
    assert wait is not None and wait["wait_timeout"] == 5.0 and wait["timeout"] is None
    assert parsed(["task", "get", "t-1", "--timeout", "5"]) is None  # a usage error, as before
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit):
        build_parser().parse_args(["task", "get", "--help"])
    assert "--json" in out.getvalue()


@settings(max_examples=300, deadline=None)
@given(command_lines(), st.lists(st.sampled_from([["--json"], ["--socket", "/t"], ["--socket=/u"]]), max_size=2))
def test_fast_path_agrees_with_argparse_on_trailing_globals(argv: list[str], tail: list[list[str]]) -> None:
    parsed(argv + [tok for part in tail for tok in part])
