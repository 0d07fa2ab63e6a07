"""The interactive shell: the prompt, the live toolbar, attach and the prompt editor.

One asyncio loop runs three things: the prompt (prompt_toolkit), the feed (:mod:`.feed`, its own
connection to the daemon, which redraws the toolbar with ``app.invalidate()`` whenever an event changes
it, without a keypress) and at most one command (:mod:`.runner`, in a child process, its output printed
above the prompt).  While a command runs the prompt stays up, but Enter waits for it (Ctrl-C cancels it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import sys
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.buffer import ValidationState
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.input.vt100 import Vt100Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style
from prompt_toolkit.validation import ValidationError, Validator

from maestroctl.shell.complete import ShellCompleter
from maestroctl.shell.feed import Feed
from maestroctl.shell.live import Live
from maestroctl.shell.runner import Runner, classify, help_text, parse

PROMPT = "maestro> "
STYLE = Style.from_dict({
    "bottom-toolbar": "noreverse bg:#262626 #d0d0d0",
    "toolbar.attention": "bg:ansired ansiwhite bold",
    "toolbar.down": "bg:ansiyellow ansiblack",
    "toolbar.running": "bg:ansiblue ansiwhite",
    "toolbar.status.working": "ansigreen",
    "toolbar.status.waiting_input": "ansiyellow bold",
    "toolbar.status.hibernated": "ansibrightblack",
    "prompt": "bold",
})


class StaysRawInput(Vt100Input):
    """The terminal stays in raw mode while a command's output is printed above the prompt.

    prompt_toolkit prints above a running prompt through ``run_in_terminal``, which puts the terminal back in
    cooked mode for the write.  A key typed in that moment then belongs to the kernel's line discipline, not
    to the shell: Ctrl-D is swallowed as end-of-file, Ctrl-C becomes a SIGINT to the shell itself, and other
    keys are echoed into the output.  Our writes need none of cooked mode (raw mode here leaves output
    processing on, so newlines still return the cursor), so it is skipped: the keys wait in the terminal
    and reach the prompt when it is drawn again.  Attach and the prompt editor run after the prompt ended,
    with the terminal's own modes, and are not affected."""

    def cooked_mode(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def _input() -> Input | None:
    """Our input on a terminal; otherwise prompt_toolkit's own choice."""
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            return StaysRawInput(sys.stdin)
    except (OSError, ValueError):
        pass
    return None


def history_path(env: Any = None) -> str:
    """``$XDG_STATE_HOME/maestro/shell_history`` (``~/.local/state`` when unset).  (os.path, not pathlib:
    pathlib's imports are a few ms of start-up.)"""
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "maestro", "shell_history")


def _history() -> History:
    path = history_path()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    except OSError as exc:  # a read-only home: the shell still works, for this run only
        sys.stderr.write(f"maestroctl shell: history not kept ({exc})\n")
        return InMemoryHistory()
    return FileHistory(path)


def wrap(fragments: list[tuple[str, str]], width: int, max_lines: int = 4) -> StyleAndTextTuples:
    """Break the toolbar between sessions rather than cut it at the terminal's edge (a segment longer than
    a line, a long attention reason, is cut there with an ellipsis).  At most ``max_lines`` lines, the last
    saying how many sessions did not fit (those needing attention come first, so they are shown)."""
    out: StyleAndTextTuples = []
    used, lines = 0, 1
    for n, (style, text) in enumerate(fragments):
        if len(text) > width:
            text = text[: max(width - 1, 0)] + "…"
        if used and used + len(text) > width:
            if lines == max_lines:
                hidden = sum(1 for s, t in fragments[n:] if t.strip())
                more = f" +{hidden} more"
                while out and used + len(more) > width:
                    used -= len(out.pop()[1])
                out.append(("class:toolbar.more", more))
                return out
            out.append(("", "\n"))
            used, lines = 0, lines + 1
            if not text.strip():
                continue
        out.append((style, text))
        used += len(text)
    return out


class _AfterTheCommand(Validator):
    """Enter while a command runs keeps the prompt up (for the toolbar) and runs the line as soon as the
    command ends: type-ahead, as in a shell.  Editing the line again takes that back."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.queued = False

    def validate(self, document: Any) -> None:
        if self.runner.busy and document.text.strip():
            self.queued = True
            raise ValidationError(message=f"runs when `{self.runner.label}` ends (Ctrl-C cancels that)")


class Shell:
    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.live = Live()
        self.runner = Runner(socket, self._command_changed)
        self.feed = Feed(socket, self.live, self.redraw)
        self.after = _AfterTheCommand(self.runner)
        #: The prompt editor while it is open (its toolbar follows the events too).
        self.editor: PromptSession[str] | None = None
        self.input = _input()
        keys = KeyBindings()
        keys.add("c-c")(self._ctrl_c)
        self.session: PromptSession[str] = PromptSession(
            history=_history(), completer=ShellCompleter(self.live), complete_while_typing=False,
            bottom_toolbar=self.toolbar, key_bindings=keys, validator=self.after,
            validate_while_typing=False, style=STYLE, input=self.input)
        self.session.default_buffer.on_text_changed += self._edited

    def toolbar(self) -> StyleAndTextTuples:
        width = self.session.app.output.get_size().columns
        return wrap(self.live.toolbar(self.socket, self.runner.label), width)

    def redraw(self) -> None:
        """From the feed or the runner: the toolbar changed (a no-op while no prompt is up)."""
        self.session.app.invalidate()
        if self.editor is not None:
            self.editor.app.invalidate()

    def _command_changed(self) -> None:
        if not self.runner.busy and self.after.queued:
            self.after.queued = False
            if self.session.app.is_running:
                buffer = self.session.default_buffer
                # The buffer remembers its last verdict until the text changes: judge it again.
                buffer.validation_state, buffer.validation_error = ValidationState.UNKNOWN, None
                buffer.validate_and_handle()
        self.redraw()

    def _edited(self, _buffer: Any) -> None:
        self.after.queued = False

    def _ctrl_c(self, event: KeyPressEvent) -> None:
        if self.runner.busy:
            self.after.queued = False
            self.runner.cancel()
            return
        event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    async def run(self) -> int:
        feed = asyncio.get_running_loop().create_task(self.feed.run())
        try:
            with patch_stdout(raw=True):
                await self._loop()
        finally:
            if self.runner.busy:
                self.runner.cancel()
                await self.runner.wait()
            feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed
        return 0

    async def _loop(self) -> None:
        while True:
            try:
                text = await self.session.prompt_async([("class:prompt", PROMPT)])
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            line = classify(text)
            if line.kind == "exit":
                return
            if line.kind == "error":
                print(f"maestroctl: {line.error}")
            elif line.kind == "help":
                text_ = help_text(line.argv)
                if text_:
                    print(text_)
            elif line.kind == "attach":
                self._attach(line.argv)
            elif line.kind == "prompt":
                await self._prompt(line.argv)
            elif line.kind == "run" and parse(line.argv) is not None:
                self.runner.start(line.argv, shlex.join(line.argv))
            sys.stdout.flush()

    def _attach(self, argv: list[str]) -> None:
        """The terminal goes to the session until Ctrl-] (the prompt is down meanwhile; events queue on the
        feed's connection and are applied after)."""
        args = parse(argv)
        if args is None:
            return
        from maestroctl.attach import attach
        from maestroctl.client import RemoteError, Unreachable
        from maestroctl.output import safe

        sys.stdout.flush()
        try:
            attach(self.socket, args.id, stdin_fd=sys.__stdin__.fileno() if sys.__stdin__ else 0,
                   stdout_fd=sys.__stdout__.fileno() if sys.__stdout__ else 1)
        except Unreachable as exc:
            print(f"maestroctl: {exc}")
        except RemoteError as exc:
            print(f"maestroctl: error {exc.code}: {safe(str(exc.message))}")

    async def _prompt(self, argv: list[str]) -> None:
        """``prompt ID``: a multi-line editor, then ``session prompt ID --message TEXT`` with the line's flags."""
        if parse([*argv, "--message", "-"]) is None:  # a bad id or flag shows before anyone writes
            return
        self.editor = PromptSession(multiline=True, bottom_toolbar=self.toolbar, style=STYLE,
                                    history=InMemoryHistory(), input=self.input)
        ident = argv[2] if len(argv) > 2 else "?"
        try:
            text = await self.editor.prompt_async(
                f"prompt for {ident} (Alt-Enter or Esc Enter sends, Ctrl-C cancels):\n",
                prompt_continuation=lambda width, line, wrapped: "")
        except (KeyboardInterrupt, EOFError):
            print("[not sent]")
            return
        finally:
            self.editor = None
        if not text.strip():
            print("[empty: not sent]")
            return
        self.runner.start([*argv, "--message", text], f"session prompt {ident}")


def run_shell(socket: str) -> int:
    return asyncio.run(Shell(socket).run())
