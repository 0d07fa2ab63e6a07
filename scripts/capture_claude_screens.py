#!/usr/bin/env python3
"""Capture the screens of the real Claude Code that maestrod's screen rules are written from.

Runs the real binary offline, in a PTY, against a scripted model server on 127.0.0.1, once per
scenario, each in its own throw-away HOME (``$TMPDIR/maestro-screen-capture/<scenario>``; the
user's own HOME and ``~/.claude.json`` are never read or written). The PTY's output goes through
maestrod's own :class:`~maestrod.sessions.terminal.Terminal`, which answers the terminal queries
Claude Code waits for at start-up (DA1, cursor position), so every fixture is exactly what
maestrod's screen model shows.

For each capture it writes ``<out>/<name>.txt`` (the visible screen, see docs/screens.md for the
format) and ``<out>/<name>.raw`` (the PTY bytes that painted it), then checks the screen against the
built-in rule table and prints whether the rule the fixture is meant for still matches. Run it
against a newer Claude Code (``--claude PATH``) to see which rules need work::

    python scripts/capture_claude_screens.py [--claude PATH] [--out DIR] [--only NAME ...] [--list]

Exit status: 0 when every selected scenario was captured and matched its rule, 1 otherwise.
Some scenarios take minutes (Claude Code retries a refused API key ten times before giving up).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ptyprocess import PtyProcess  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from maestrod.sessions.screens import load_rules  # noqa: E402
from maestrod.sessions.terminal import Terminal  # noqa: E402
from tests.fake_anthropic import Block, ErrorAPI, FakeAnthropic, bash_then_text  # noqa: E402

DEFAULT_CLAUDE = REPO / ".ci" / "cache" / "claude" / "node_modules" / ".bin" / "claude"
DEFAULT_OUT = REPO / "tests" / "fixtures" / "screens" / "claude"
#: A fixed place (not a random temp name), so the paths Claude Code prints are the same in every
#: capture and a re-capture only differs where Claude Code's screens did.
CAPTURE_ROOT = Path(tempfile.gettempdir()) / "maestro-screen-capture"

API_KEY = "sk-ant-test-0123456789abcdefghij"
#: The most PTY output kept beside a fixture (its tail: the paint that made the screen match).
RAW_MAX = 48 * 1024
#: maestrod's default session size.
ROWS, COLS = 40, 120


# -- model servers ---------------------------------------------------------------------------------


class ModelServer(Protocol):
    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


def text_answer(text: str) -> Callable[[dict[str, Any]], list[Block]]:
    return lambda body: [{"type": "text", "text": text}]


def held_answer(release: threading.Event, text: str) -> Callable[[dict[str, Any]], list[Block]]:
    """An agent turn that does not answer until ``release`` is set: the TUI shows its spinner meanwhile."""

    def script(body: dict[str, Any]) -> list[Block]:
        release.wait(120)
        return [{"type": "text", "text": text}]

    return script


def one_tool_call(name: str, tool_input: dict[str, Any]) -> Callable[[dict[str, Any]], list[Block]]:
    """An agent turn that calls one tool; after its result, a short answer."""
    then_answer = bash_then_text("true", "Done.")

    def script(body: dict[str, Any]) -> list[Block]:
        first = then_answer(body)
        if first[0]["type"] == "text":
            return first
        return [{"type": "tool_use", "name": name, "input": tool_input}]

    return script


# -- scenarios -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Bytes written to the PTY as if typed, then a pause so the TUI takes them as separate keys."""

    data: bytes
    pause: float = 0.4


@dataclass(frozen=True)
class Capture:
    """Wait until ``ready(screen text)`` holds, then write fixture ``name`` that rule ``expect`` must
    match (``None``: no rule may match; that makes a negative fixture)."""

    name: str
    expect: str | None
    ready: Callable[[str], bool]
    note: str
    timeout: float = 45.0
    #: The screen must stay unchanged this long before it is taken (0 for screens that animate).
    settle: float = 1.0


@dataclass(frozen=True)
class Until:
    """Wait until ``ready(screen text)`` holds (and the screen has settled), capturing nothing."""

    what: str
    ready: Callable[[str], bool]
    timeout: float = 45.0
    settle: float = 0.5


Step = Send | Capture | Until


def typed(text: str) -> list[Step]:
    """A prompt typed and submitted the way a person does, once the input box is there (keys sent
    earlier are lost): the text, a pause, Enter."""
    return [Until("the empty input prompt", prompt_box_empty), Send(text.encode()), Send(b"\r", pause=0.2)]


def has(*needles: str) -> Callable[[str], bool]:
    return lambda screen: all(n in screen for n in needles)


def prompt_box_empty(screen: str) -> bool:
    return re.search(r"^─{20,}\n❯ *\n─{20,}$", screen, re.M) is not None


def in_prompt_box(text: str) -> Callable[[str], bool]:
    """Whether ``text`` is typed into the input box (where a no-break space follows the "❯")."""
    return lambda screen: re.search(rf"^─{{20,}}\n❯[ \xa0]{re.escape(text)} *$", screen, re.M) is not None


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    steps: tuple[Step, ...]
    model: Callable[[Path], ModelServer] = lambda work: FakeAnthropic().start()
    trusted: bool = True  # the work folder is marked trusted in ~/.claude.json
    key_approved: bool = True  # the API key is in ~/.claude.json's approved list
    with_key: bool = True  # ANTHROPIC_API_KEY is set
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    rows: int = ROWS
    cols: int = COLS

    def captures(self) -> list[Capture]:
        return [s for s in self.steps if isinstance(s, Capture)]


def scenarios() -> list[Scenario]:
    release = threading.Event()
    quoted_dialog = (
        "Claude Code asks before it runs a command, like this:\n\n"
        "    Do you want to proceed?\n    ❯ 1. Yes\n      2. No\n\n"
        "Nothing needs your approval right now."
    )
    return [
        Scenario(
            "start", "a normal start: the empty prompt, then a prompt typed but not sent",
            (
                Capture("empty-prompt", "empty-prompt", prompt_box_empty, "the input prompt, nothing typed"),
                Send(b"half a thought"),  # not sent: no Enter
                Capture("prompt-with-text", None, in_prompt_box("half a thought"),
                        "text typed into the prompt but not sent: not an empty prompt"),
            ),
        ),
        Scenario(
            "first-run", "neither the folder trusted nor the key approved: which dialog comes first",
            (
                Capture("trust-folder", "trust-folder", has("Yes, I trust this folder"),
                        "the folder is not trusted yet (shown before the API-key question)"),
                Send(b"\x1b[B"),  # Down: to "Yes, I trust this folder"
                Send(b"\r"),
                Capture("api-key", "api-key", has("Do you want to use this API key?"),
                        "the API key from the environment is not approved yet"),
            ),
            trusted=False, key_approved=False,
        ),
        Scenario(
            "narrow", "the trust dialog at 80x24",
            (Capture("trust-folder-80x24", "trust-folder", has("Yes, I trust this folder"),
                     "the trust dialog on a narrow terminal"),),
            trusted=False, rows=24, cols=80,
        ),
        Scenario(
            "auto-mode", "default permission mode (auto) offline: a Bash call cannot be checked",
            (
                *typed("Please list the root folder."),
                Capture("auto-mode-cannot-check", "auto-mode-cannot-check",
                        has("Auto mode can't check actions", "Enter to stay in auto mode"),
                        "auto mode's server-side check is unreachable through the local gateway"),
            ),
            model=lambda work: FakeAnthropic(bash_then_text("ls /", "The root folder is listed.")).start(),
        ),
        Scenario(
            "permission-bash", "default permission mode: a Bash command asks for approval",
            (
                *typed("Please probe the port."),
                Capture("permission-bash", "permission-bash", has("Do you want to proceed?", "1. Yes"),
                        "a Bash command waiting for approval"),
            ),
            model=lambda work: FakeAnthropic(bash_then_text("curl -s http://127.0.0.1:9", "Probed.")).start(),
            args=("--permission-mode", "default"),
        ),
        Scenario(
            "permission-variable", "acceptEdits: a Bash command with a shell variable cannot be checked",
            (
                *typed("Please create the two files."),
                Capture("permission-bash-unverifiable", "permission-bash-unverifiable",
                        has("can't be checked before it runs", "Do you want to proceed?"),
                        "a Bash command with a loop variable waiting for approval"),
            ),
            model=lambda work: FakeAnthropic(bash_then_text("for f in a b; do touch $f; done", "Done.")).start(),
            args=("--permission-mode", "acceptEdits"),
        ),
        Scenario(
            "permission-file", "default permission mode: creating a file asks for approval",
            (
                *typed("Please write the notes file."),
                Capture("permission-file", "permission", has("Do you want to", "1. Yes"),
                        "a file write waiting for approval (the generic permission question)"),
            ),
            model=lambda work: FakeAnthropic(
                one_tool_call("Write", {"file_path": str(work / "notes.txt"), "content": "hello\n"})).start(),
            args=("--permission-mode", "default"),
        ),
        Scenario(
            "ask-user-question", "the model asks the user a multiple-choice question (AskUserQuestion)",
            (
                *typed("Set up the service."),
                Capture("ask-user-question", "ask-user-question", has("Enter to select"),
                        "Claude's own question to the user, waiting for a choice"),
            ),
            model=lambda work: FakeAnthropic(one_tool_call("AskUserQuestion", {"questions": [{
                "question": "Which database should the service use?", "header": "Database", "multiSelect": False,
                "options": [{"label": "PostgreSQL", "description": "a server"},
                            {"label": "SQLite", "description": "one file"}],
            }]})).start(),
        ),
        Scenario(
            "working", "a turn in progress: the spinner, the prompt box below it",
            (
                *typed("Please think about it."),
                Capture("working", "busy-prompt", has("esc to interrupt"),
                        "a working turn (spinner): the input box is drawn, but the turn runs", settle=0),
            ),
            model=lambda work: FakeAnthropic(held_answer(release, "Thought about it.")).start(),
        ),
        Scenario(
            "answer", "a finished turn whose answer quotes a permission dialog",
            (
                *typed("How does Claude Code ask for permission?"),
                Capture("answer-on-screen", "empty-prompt", lambda s: "right now" in s and prompt_box_empty(s),
                        "an answer quoting a dialog's text, the empty prompt below it"),
            ),
            model=lambda work: FakeAnthropic(text_answer(quoted_dialog)).start(),
        ),
        Scenario(
            "not-logged-in", "no ANTHROPIC_API_KEY and no login: the first prompt fails",
            (
                *typed("hello"),
                Capture("not-logged-in", "not-logged-in", has("Not logged in"),
                        "no key, no login: the failed prompt, the resend hint"),
                Capture("not-logged-in-status", "not-logged-in", has("Not logged in · run /login"),
                        "seconds later: the status line's notice too", timeout=30),
            ),
            with_key=False,
        ),
        Scenario(
            "api-key-refused", "the model API answers 401: Claude Code retries the refused key",
            (
                *typed("hello"),
                Capture("api-key-refused-retrying", "api-key-refused-retrying",
                        lambda s: re.search(r"^\S 401 .*retrying", s, re.M) is not None,
                        "HTTP 401 from the model API while Claude Code still retries", settle=0),
            ),
            model=lambda work: ErrorAPI(401, "authentication_error", "invalid x-api-key"),
        ),
        Scenario(
            # CLAUDE_CODE_MAX_RETRIES=1: the same end screen in seconds instead of the ~3 minutes
            # that ten retries with back-off take.
            "invalid-api-key", "the model API answers 401 until Claude Code gives up",
            (
                *typed("hello"),
                Capture("invalid-api-key", "invalid-api-key", has("Invalid API key"),
                        "HTTP 401 from the model API after the last retry (CLAUDE_CODE_MAX_RETRIES=1)"),
            ),
            model=lambda work: ErrorAPI(401, "authentication_error", "invalid x-api-key"),
            env={"CLAUDE_CODE_MAX_RETRIES": "1"},
        ),
        Scenario(
            # Without IS_SANDBOX, Claude Code on a custom ANTHROPIC_BASE_URL gives up after three
            # 529s in a row ("Repeated 529 Overloaded errors", the next scenario); with it, it
            # retries ten times, as it does against Anthropic's own API.
            "api-retrying", "the model API answers 529 overloaded: Claude Code retries",
            (
                *typed("hello"),
                Capture("api-retrying", "api-retrying",
                        lambda s: re.search(r"^\S 529 .*retrying", s, re.M) is not None,
                        "HTTP 529 overloaded_error while Claude Code retries (IS_SANDBOX=1)", settle=0),
            ),
            model=lambda work: ErrorAPI(529, "overloaded_error", "Overloaded"),
            env={"IS_SANDBOX": "1"},
        ),
        Scenario(
            "api-overloaded", "the model API answers 529 three times in a row: the turn fails",
            (
                *typed("hello"),
                Capture("turn-failed", "turn-failed", has("API Error", "Resend your message"),
                        "a turn that failed on repeated 529s, the resend hint in the prompt"),
            ),
            model=lambda work: ErrorAPI(529, "overloaded_error", "Overloaded"),
        ),
        Scenario(
            "rate-limited", "the model API answers 429 until Claude Code gives up",
            (
                *typed("hello"),
                Capture("rate-limited", "rate-limited", has("Request rejected (429)"),
                        "HTTP 429 rate_limit_error after the last retry (CLAUDE_CODE_MAX_RETRIES=1)"),
            ),
            model=lambda work: ErrorAPI(
                429, "rate_limit_error", "This request would exceed your account's rate limit."),
            env={"CLAUDE_CODE_MAX_RETRIES": "1"},
        ),
    ]


# -- driving the binary ----------------------------------------------------------------------------


class Timeout(Exception):
    pass


_BULLET = re.compile(r"^●", re.M)


class Screen:
    """A Claude Code process in a PTY, its output going through maestrod's Terminal."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], rows: int, cols: int) -> None:
        self.proc = PtyProcess.spawn(argv, cwd=str(cwd), env=env, dimensions=(rows, cols))
        self.terminal = Terminal(rows, cols)
        self.raw = bytearray()
        #: Where in ``raw`` the output after the last keys sent starts.
        self.mark = 0
        self.exited = False

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.exited:
            left = end - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.proc.fd], [], [], min(left, 0.05))
            if not ready:
                continue
            try:
                data = os.read(self.proc.fd, 65536)
            except OSError:  # EIO: the child is gone
                data = b""
            if not data:
                self.exited = True
                return
            self.raw += data
            _, replies = self.terminal.process(data)
            for reply in replies:
                os.write(self.proc.fd, reply)

    def lines(self) -> list[str]:
        self.terminal.sync_now(full=True)
        return self.terminal.lines()

    def send(self, data: bytes) -> None:
        self.mark = len(self.raw)
        os.write(self.proc.fd, data)

    def wait(self, capture: Capture | Until) -> list[str]:
        deadline = time.monotonic() + capture.timeout
        stable_since, last = time.monotonic(), None
        while True:
            self.pump(0.1)
            lines = self.lines()
            text = "\n".join(lines)
            # A pending tool call's bullet blinks ("●" / " ") for as long as a dialog waits: not a change.
            steady = _BULLET.sub(" ", text)
            if steady != last:
                stable_since, last = time.monotonic(), steady
            if capture.ready(text) and time.monotonic() - stable_since >= capture.settle:
                return lines
            if self.exited or time.monotonic() > deadline:
                state = "Claude Code exited" if self.exited else f"timed out after {capture.timeout:.0f}s"
                what = capture.name if isinstance(capture, Capture) else capture.what
                raise Timeout(f"{state} waiting for {what}; the screen was:\n{text.rstrip()}")

    def close(self) -> None:
        try:
            self.proc.terminate(force=True)
        except OSError:
            pass


def claude_json(work: Path, *, trusted: bool, key_approved: bool) -> dict[str, Any]:
    """What ~/.claude.json needs for the TUI to start without its first-run dialogs."""
    return {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "customApiKeyResponses": {"approved": [API_KEY[-20:]] if key_approved else [], "rejected": []},
        "projects": {str(work): {"hasTrustDialogAccepted": True}} if trusted else {},
    }


def child_env(home: Path, url: str, *, with_key: bool, extra: dict[str, str]) -> dict[str, str]:
    """A clean environment: nothing of the caller's (no real HOME, no CLAUDECODE of an outer agent)."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",  # what maestrod gives a session
        "COLORTERM": "truecolor",
        "ANTHROPIC_BASE_URL": url,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    if with_key:
        env["ANTHROPIC_API_KEY"] = API_KEY
    env.update(extra)
    return env


@contextmanager
def scenario_dirs(name: str) -> Iterator[tuple[Path, Path]]:
    root = CAPTURE_ROOT / name
    shutil.rmtree(root, ignore_errors=True)
    home, work = root / "home", root / "work"
    home.mkdir(parents=True)
    work.mkdir()
    try:
        yield home, work
    finally:
        shutil.rmtree(root, ignore_errors=True)


def claude_version(claude: str) -> str:
    with tempfile.TemporaryDirectory(prefix="maestro-screen-capture-") as tmp:
        env = child_env(Path(tmp), "http://127.0.0.1:9", with_key=False, extra={})
        out = subprocess.run([claude, "--version"], env=env, cwd=tmp, capture_output=True, text=True, timeout=60)
    match = re.search(r"\d+\.\d+\.\d+\S*", out.stdout)
    return match.group(0) if match else out.stdout.strip() or "unknown"


def fixture_text(capture: Capture, scenario: Scenario, version: str, lines: Sequence[str]) -> str:
    header = [
        f"# source: Claude Code {version}, captured by scripts/capture_claude_screens.py",
        f"# scenario: {scenario.name} ({scenario.what})",
        f"# size: {scenario.rows}x{scenario.cols}",
        f"# expect: {capture.expect or 'none'}",
        f"# note: {capture.note}",
    ]
    return "\n".join([*header, *lines]) + "\n"


def run_scenario(scenario: Scenario, claude: str, out: Path, version: str, only: set[str]) -> list[str]:
    """Run one scenario; the problems found (empty: all captured and matched)."""
    rules = load_rules("claude")
    assert rules is not None
    problems: list[str] = []
    with scenario_dirs(scenario.name) as (home, work):
        (home / ".claude.json").write_text(
            json.dumps(claude_json(work, trusted=scenario.trusted, key_approved=scenario.key_approved)))
        model = scenario.model(work)
        screen = Screen([claude, *scenario.args], work,
                        child_env(home, model.url, with_key=scenario.with_key, extra=scenario.env),
                        scenario.rows, scenario.cols)
        try:
            for step in scenario.steps:
                if isinstance(step, Send):
                    screen.send(step.data)
                    screen.pump(step.pause)
                    continue
                if isinstance(step, Until):
                    screen.wait(step)
                    continue
                started = time.monotonic()
                lines = screen.wait(step)
                if only and step.name not in only and scenario.name not in only:
                    continue
                (out / f"{step.name}.txt").write_text(fixture_text(step, scenario, version, lines))
                (out / f"{step.name}.raw").write_bytes(bytes(screen.raw[screen.mark :][-RAW_MAX:]))
                found = rules.match(lines)
                got = found.rule if found else None
                verdict = "ok" if got == step.expect else f"MISMATCH: expected {step.expect}, matched {got}"
                if got != step.expect:
                    problems.append(f"{step.name}: {verdict}")
                reason = f" -- {found.reason}" if found else ""
                print(f"  {step.name}: captured in {time.monotonic() - started:.1f}s, {verdict}{reason}")
        except Timeout as e:
            problems.append(f"{scenario.name}: {e}")
            print(f"  FAILED: {e}")
        finally:
            screen.close()
            model.stop()
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--claude", default=os.environ.get("MAESTRO_TEST_CLAUDE_BIN") or str(DEFAULT_CLAUDE),
                    help="the Claude Code binary (default: .ci/cache's, or $MAESTRO_TEST_CLAUDE_BIN)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"fixture directory (default: {DEFAULT_OUT})")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="only this scenario or fixture (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and their fixtures, run nothing")
    args = ap.parse_args(argv)

    chosen = scenarios()
    if args.list:
        for s in chosen:
            print(f"{s.name}: {s.what}\n    " + ", ".join(c.name for c in s.captures()))
        return 0
    only = set(args.only)
    if only:
        known = {s.name for s in chosen} | {c.name for s in chosen for c in s.captures()}
        unknown = sorted(only - known)
        if unknown:
            ap.error(f"unknown scenario or fixture: {', '.join(unknown)} (see --list)")
        chosen = [s for s in chosen if s.name in only or any(c.name in only for c in s.captures())]
    if not (os.path.isfile(args.claude) and os.access(args.claude, os.X_OK)):
        ap.error(f"no Claude Code binary at {args.claude} (give --claude PATH)")

    version = claude_version(args.claude)
    print(f"Claude Code {version} ({args.claude}); fixtures to {args.out}")
    args.out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for scenario in chosen:
        print(f"{scenario.name}: {scenario.what}")
        problems += run_scenario(scenario, args.claude, args.out, version, only)
    if problems:
        print(f"\n{len(problems)} problem(s):\n  " + "\n  ".join(p.splitlines()[0] for p in problems))
        return 1
    print(f"\nall {len(chosen)} scenario(s) captured; every fixture matched its rule")
    return 0


if __name__ == "__main__":
    sys.exit(main())
