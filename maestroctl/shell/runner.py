"""A typed line: parsed by maestroctl's own parser, then run off the event loop.

The line is checked in-process by the same argparse parser the command line uses (so a usage error, or
``-h``, prints at once and the shell goes on); a valid command runs in a child ``maestroctl`` whose output
is forwarded above the prompt while the toolbar keeps updating.  A child, not a thread: a long
``session wait`` or ``mail wait`` blocks only itself, Ctrl-C stops it for sure (SIGINT, then SIGKILL), and
whatever a command does to the process (``sys.exit``, writing to ``sys.stdout``) cannot reach the shell.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

#: What a line asks for: run (a maestroctl command), attach, prompt (the editor), help, exit, nothing.
Kind = str


@dataclass
class Line:
    kind: Kind
    argv: list[str] = field(default_factory=list)
    #: Why the line cannot run (a quoting mistake); printed instead.
    error: str | None = None


def classify(text: str) -> Line:
    """What a typed line is, before any parsing of its options (pure)."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:  # "No closing quotation"
        return Line("error", error=f"cannot split the line: {exc}")
    if not argv:
        return Line("empty")
    head = argv[0]
    if head in ("exit", "quit"):
        return Line("exit")
    if head == "help" or argv == ["?"]:
        return Line("help", argv[1:])
    if head == "attach":
        return Line("attach", ["session", "attach", *argv[1:]])
    if head == "prompt":
        return Line("prompt", ["session", "prompt", *argv[1:]])
    if head == "maestroctl":  # pasted from a script or the README: the same command
        return classify(shlex.join(argv[1:])) if len(argv) > 1 else Line("empty")
    command = [a for a in argv if not a.startswith("-")][:2]
    if command == ["session", "attach"]:
        return Line("attach", argv)
    if command == ["session", "prompt"] and not any(a == "--message" or a.startswith("--message=")
                                                    for a in argv):
        return Line("prompt", argv)
    if head == "shell":
        return Line("error", error="this is the shell already")
    return Line("run", argv)


def parse(argv: list[str]) -> Any:
    """maestroctl's argparse result for ``argv``, or None after argparse printed a usage error or the help
    it was asked for (its SystemExit stops here, not the shell)."""
    from maestroctl.main import _peek_group, build_parser

    try:
        return build_parser(_peek_group(argv)).parse_args(argv)
    except SystemExit:
        return None


def help_text(words: list[str]) -> str | None:
    """``help``: the shell's words and the groups; ``help GROUP [COMMAND]`` is argparse's help (printed by
    :func:`parse`, so this returns None)."""
    if words:
        parse([*words, "-h"])
        return None
    from maestroctl.main import GROUPS
    from maestroctl.shell.complete import HIDDEN_GROUPS, SHELL_WORDS

    width = max(len(w) for w in [*GROUPS, *SHELL_WORDS])
    lines = ["Type a maestroctl command without `maestroctl` (Tab completes, also ids and names):", ""]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in GROUPS.items() if name not in HIDDEN_GROUPS]
    lines += ["", "and the shell's own:", ""]
    lines += [f"  {word:<{width}}  {help_}" for word, help_ in SHELL_WORDS.items()]
    lines += ["", "`help GROUP` or `help GROUP COMMAND` for its options. Ctrl-C cancels the line or the running "
                  "command; Ctrl-D leaves."]
    return "\n".join(lines)


class Runner:
    """At most one command at a time, in a child maestroctl."""

    def __init__(self, socket: str, on_change: Any) -> None:
        self.socket = socket
        self.on_change = on_change
        #: The running command line (for the toolbar), None when idle.
        self.label: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[int] | None = None
        self._cancelled = False

    @property
    def busy(self) -> bool:
        return self.label is not None

    def start(self, argv: list[str], label: str) -> asyncio.Task[int]:
        self.label = label
        self._cancelled = False
        self._task = asyncio.get_running_loop().create_task(self._run(argv))
        self.on_change()
        return self._task

    async def wait(self) -> None:
        if self._task is not None:
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def cancel(self) -> None:
        """Ctrl-C: SIGINT to the command (it exits 130, as on the command line); SIGKILL if it lingers."""
        if self._proc is None or self._proc.returncode is not None:
            return
        self._cancelled = True
        try:
            self._proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return
        asyncio.get_running_loop().call_later(2.0, self._kill_if_running, self._proc)

    @staticmethod
    def _kill_if_running(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass

    async def _run(self, argv: list[str]) -> int:
        env = dict(os.environ, MAESTRO_SOCKET=self.socket)
        try:
            env["COLUMNS"] = str(os.get_terminal_size(sys.__stdout__.fileno() if sys.__stdout__ else 1).columns)
        except (OSError, ValueError):
            pass
        try:
            # -P: the current directory is not put on sys.path (a ./maestroctl there is not ours).
            # A new session: the terminal's own signals never reach it; Ctrl-C is ours to forward.
            try:
                proc = self._proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-P", "-m", "maestroctl", *argv, stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
                    start_new_session=True)
            except OSError as exc:  # out of processes or memory: say so, the shell goes on
                sys.stdout.write(f"maestroctl shell: cannot run the command: {exc}\n")
                return 1
            assert proc.stdout is not None and proc.stderr is not None
            await asyncio.gather(_forward(proc.stdout), _forward(proc.stderr))
            code = await proc.wait()
            if self._cancelled:
                sys.stdout.write("[cancelled]\n")
            return code
        finally:
            sys.stdout.flush()
            self._proc = None
            self.label = None
            self.on_change()


async def _forward(stream: asyncio.StreamReader) -> None:
    """The child's output, as it comes, above the prompt (the child already made agents' text safe)."""
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return
        sys.stdout.write(chunk.decode("utf-8", errors="replace"))
