#!/usr/bin/env python3
"""Capture the screens of the real Codex CLI that maestrod's Codex screen rules are written from.

Runs the real binary offline in a PTY, the way maestrod starts it (its own ``CODEX_HOME``, ``--no-daemon``,
the ``-c`` overrides of :func:`maestrod.sessions.codex.codex_argv`), against the scripted Responses API of
``tests/fake_openai.py``, once per scenario, each in a throw-away directory
(``$TMPDIR/maestro-codex-capture/<scenario>``; the user's HOME and ``~/.codex`` are never used). The output
goes through maestrod's own :class:`~maestrod.sessions.terminal.Terminal`, so every fixture is what
maestrod's screen model shows. The driving machinery is ``scripts/capture_claude_screens.py``'s.

For each capture it writes ``<out>/<name>.txt`` (the visible screen, docs/screens.md) and ``<out>/<name>.raw``
(the PTY bytes that painted it) and checks the screen against the built-in ``codex`` rule table::

    python scripts/capture_codex_screens.py [--codex PATH] [--out DIR] [--only NAME ...] [--list]

Exit status: 0 when every selected scenario was captured and matched its rule, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from capture_claude_screens import RAW_MAX, Capture, Screen, Send, Timeout, Until, has  # noqa: E402

from maestrod.sessions import codex  # noqa: E402
from maestrod.sessions.screens import load_rules  # noqa: E402
from tests.fake_openai import FakeOpenAI, Item, after_outputs, function_call, text  # noqa: E402

DEFAULT_CODEX = REPO / ".ci" / "cache" / "codex" / "node_modules" / ".bin" / "codex"
DEFAULT_OUT = REPO / "tests" / "fixtures" / "screens" / "codex"
CAPTURE_ROOT = Path(tempfile.gettempdir()) / "maestro-codex-capture"
ROWS, COLS = 40, 120
KEY_VAR = "MAESTRO_TEST_OPENAI_KEY"

Step = Send | Capture | Until


def prompt_empty(screen: str) -> bool:
    return re.search(r"^› .*\n(?:.*\n){0,3}\s*(?:← for agents · )?\? for shortcuts", screen, re.M) is not None


def typed(prompt: str) -> list[Step]:
    """A prompt pasted (bracketed paste, as maestrod types one) and submitted, once the composer is there."""
    return [Until("the empty composer", prompt_empty), Send(b"\x1b[200~" + prompt.encode() + b"\x1b[201~"),
            Send(b"\r", pause=0.3)]


def held(release: threading.Event, answer: str) -> Callable[[dict[str, Any]], list[Item]]:
    """A turn that does not answer until ``release`` is set: the TUI shows its working line meanwhile."""

    def script(body: dict[str, Any]) -> list[Item]:
        release.wait(120)
        return [text(answer)]

    return script


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    steps: tuple[Step, ...]
    model: Callable[[], FakeOpenAI] = lambda: FakeOpenAI()
    #: The folder's trust, the provider and the hooks' trust bypass, as maestrod passes them.
    trusted: bool = True
    provider: bool = True
    bypass_hook_trust: bool = True
    #: The working folder is a git repository (Codex asks about trust only there).
    git: bool = False
    hooks: bool = True
    args: tuple[str, ...] = ()
    rows: int = ROWS
    cols: int = COLS

    def captures(self) -> list[Capture]:
        return [s for s in self.steps if isinstance(s, Capture)]


def scenarios() -> list[Scenario]:
    release = threading.Event()
    quoted = ("Codex asks before it runs such a command:\n\n  Would you like to run the following command?\n"
              "  › 1. Yes, proceed (y)\n    2. No, and tell Codex what to do differently (esc)\n\n"
              "Nothing needs your approval right now.")
    escalated = {"cmd": "touch /etc/maestro-capture", "sandbox_permissions": "require_escalated",
                 "justification": "to write outside the workspace"}
    return [
        Scenario("start", "a normal start: the empty composer, then text typed but not sent", (
            Capture("empty-prompt", "empty-prompt", prompt_empty, "the composer, nothing typed (its placeholder)"),
            Send(b"\x1b[200~half a thought\x1b[201~"),
            Capture("prompt-with-text", None, has("› half a thought"),
                    "text typed into the composer but not sent: not an empty prompt"),
        )),
        Scenario("working", "a turn in progress: the working line above the composer", (
            *typed("Please think about it."),
            Capture("working", "busy-prompt", has("esc to interrupt"),
                    "a turn waiting for the model: the composer is drawn, the turn runs", settle=0),
        ), model=lambda: FakeOpenAI(held(release, "Thought about it."))),
        Scenario("answer", "a finished turn whose answer quotes an approval dialog", (
            *typed("How does Codex ask for approval?"),
            Capture("answer-on-screen", "empty-prompt", lambda s: "right now" in s and prompt_empty(s),
                    "an answer quoting a dialog's text, the empty composer below it"),
        ), model=lambda: FakeOpenAI(lambda body: [text(quoted)])),
        Scenario("approval", "a command asks to run outside the sandbox (on-request): the approval dialog", (
            *typed("Please touch the file."),
            Capture("approve-command", "approve-command", has("Would you like to run the following command?"),
                    "a shell command waiting for approval"),
        ), model=lambda: FakeOpenAI(after_outputs([function_call("exec_command", escalated)], "Done.")),
            args=("--ask-for-approval", "on-request", "--sandbox", "workspace-write")),
        Scenario("untrusted", "a git repository not trusted yet: the trust dialog", (
            Capture("trust-folder", "trust-folder", has("trust"), "Codex asks whether to trust the working folder"),
        ), trusted=False, git=True),
        Scenario("hooks-review", "hooks without --dangerously-bypass-hook-trust: the review dialog", (
            Capture("hooks-review", "hooks-review", has("Hooks need review"),
                    "Codex asks a person to review maestrod's hooks before they run"),
        ), bypass_hook_trust=False),
        Scenario("not-logged-in", "no provider of maestrod's and no login: the sign-in screen", (
            Capture("sign-in", "sign-in", has("Sign in with ChatGPT"), "no auth.json, no API key"),
        ), provider=False),
    ]


def codex_home(root: Path, hooks: bool) -> Path:
    home = root / "codex-home"
    home.mkdir(parents=True)
    if hooks:  # maestrod's hooks, each running `true` instead of maestroctl (no daemon here)
        (home / "config.toml").write_text(codex.hooks_toml(["true"]))
    return home


def argv_for(binary: str, work: Path, scenario: Scenario, url: str) -> list[str]:
    argv = codex.codex_argv(binary, str(work), provider="maestro" if scenario.provider else None,
                            base_url=url, env_key=KEY_VAR, model="gpt-5",
                            instructions="developer_instructions=\"You are captured by maestro.\"",
                            extra_args=list(scenario.args))
    if not scenario.trusted:
        at = next(i for i, a in enumerate(argv) if a.startswith("projects."))
        del argv[at - 1:at + 1]
    if not scenario.bypass_hook_trust:
        argv.remove("--dangerously-bypass-hook-trust")
    return argv


def child_env(root: Path, home: Path) -> dict[str, str]:
    user = root / "user"
    user.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(user), "CODEX_HOME": str(home),
            KEY_VAR: "sk-test-capture", "LANG": "C.UTF-8", "TERM": "xterm-256color", "COLORTERM": "truecolor"}


@contextmanager
def scenario_dirs(name: str) -> Iterator[tuple[Path, Path]]:
    root = CAPTURE_ROOT / name
    shutil.rmtree(root, ignore_errors=True)
    work = root / "work"
    work.mkdir(parents=True)
    try:
        yield root, work
    finally:
        shutil.rmtree(root, ignore_errors=True)


def codex_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    match = re.search(r"\d+\.\d+\.\d+\S*", out.stdout)
    return match.group(0) if match else out.stdout.strip() or "unknown"


def fixture_text(capture: Capture, scenario: Scenario, version: str, lines: Sequence[str]) -> str:
    header = [f"# source: Codex CLI {version}, captured by scripts/capture_codex_screens.py",
              f"# scenario: {scenario.name} ({scenario.what})", f"# size: {scenario.rows}x{scenario.cols}",
              f"# expect: {capture.expect or 'none'}", f"# note: {capture.note}"]
    return "\n".join([*header, *lines]) + "\n"


def run_scenario(scenario: Scenario, binary: str, out: Path, version: str, only: set[str]) -> list[str]:
    rules = load_rules("codex")
    problems: list[str] = []
    with scenario_dirs(scenario.name) as (root, work):
        home = codex_home(root, scenario.hooks)
        if scenario.git:
            subprocess.run(["git", "init", "-q", str(work)], check=True)
        model = scenario.model().start()
        screen = Screen(argv_for(binary, work, scenario, model.base_url), work, child_env(root, home),
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
                text_ = fixture_text(step, scenario, version, lines).replace(str(root), "/tmp/maestro-codex-capture/x")
                (out / f"{step.name}.txt").write_text(text_)
                (out / f"{step.name}.raw").write_bytes(bytes(screen.raw[screen.mark:][-RAW_MAX:]))
                found = rules.match(lines) if rules is not None else None
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
    ap.add_argument("--codex", default=os.environ.get("MAESTRO_TEST_CODEX_BIN") or str(DEFAULT_CODEX),
                    help="the Codex binary (default: .ci/cache's, or $MAESTRO_TEST_CODEX_BIN)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"fixture directory (default: {DEFAULT_OUT})")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="only this scenario or fixture")
    ap.add_argument("--list", action="store_true", help="list the scenarios and their fixtures, run nothing")
    args = ap.parse_args(argv)
    chosen = scenarios()
    if args.list:
        for s in chosen:
            print(f"{s.name}: {s.what}\n    " + ", ".join(c.name for c in s.captures()))
        return 0
    only = set(args.only)
    if only:
        chosen = [s for s in chosen if s.name in only or any(c.name in only for c in s.captures())]
    if not (os.path.isfile(args.codex) and os.access(args.codex, os.X_OK)):
        ap.error(f"no Codex binary at {args.codex} (give --codex PATH)")
    version = codex_version(args.codex)
    print(f"Codex CLI {version} ({args.codex}); fixtures to {args.out}")
    args.out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for scenario in chosen:
        print(f"{scenario.name}: {scenario.what}")
        problems += run_scenario(scenario, args.codex, args.out, version, only)
    if problems:
        print(f"\n{len(problems)} problem(s):\n  " + "\n  ".join(p.splitlines()[0] for p in problems))
        return 1
    print(f"\nall {len(chosen)} scenario(s) captured; every fixture matched its rule")
    return 0


if __name__ == "__main__":
    sys.exit(main())
