"""``maestroctl [--socket PATH] [--json] GROUP COMMAND ...``

Exit codes: 0 ok; 1 the daemon answered an error, closed the connection before answering, or
answered more than maestroctl reads (message on stderr); 2 usage error; 3 the daemon is unreachable.

Start-up is a feature (agents call this hundreds of times): common command
lines are parsed by the compiled fast path (:mod:`maestroctl.fastargs`) without
importing argparse; otherwise only the group being run is built.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any

EXIT_OK, EXIT_REMOTE, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
#: JSON-RPC's invalid params (shared.errors.INVALID_PARAMS; not imported: start-up).
INVALID_PARAMS = -32602

#: group name -> (module under maestroctl.commands, one-line help)
GROUPS: dict[str, tuple[str, str]] = {
    "ping": ("ping", "check that maestrod answers"),
    "project": ("project", "create, list, change and delete projects"),
    "task": ("task", "tasks: hierarchy, dependencies, status"),
    "daemon": ("daemon", "the daemon itself: status"),
    "rpc": ("rpc", "call any JSON-RPC method with raw JSON params"),
    "events": ("events", "watch or replay change events"),
    "mail": ("mail", "messages between sessions and the human: send, inbox, wait"),
    "template": ("template", "workflow templates given to spawned agents"),
    "worktree": ("worktree", "git worktrees sessions work in: list, diff, remove"),
    "session": ("session", "agents in terminals maestrod owns: spawn, list, screen, prompt, attach, stop"),
    "hook": ("hook", "Claude Code hook entry point (used by spawned agents): hook EVENT < payload"),
    "digest": ("digest", "digest a Claude Code transcript file offline (no daemon): steps, state, tokens"),
    "completion": ("completion", "print a shell completion script (bash|zsh)"),
    "web": ("web", "the WebSocket feed and dashboard: token, url (for the person)"),
    "dashboard": ("dashboard", "open the live dashboard in a browser (--print: its URL)"),
    "shell": ("shell", "interactive shell: commands with completion, a live session toolbar, attach"),
}


class Runtime:
    """What every command needs: where the daemon is, how to print, how to call."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # An agent has $MAESTRO_SOCKET (shared.paths.SOCKET_ENV): then shared.paths is not even imported.
        self.socket = args.socket or os.environ.get("MAESTRO_SOCKET") or _default_socket()
        self.json = bool(args.json)
        self.timeout = args.timeout
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from maestroctl.client import Client

            self._client = Client(self.socket, timeout=self.timeout)
            self._client.connect()
        return self._client

    def reconnecting(self) -> Any:
        """A :class:`maestroctl.reconnect.ReconnectingClient` (for commands that wait or follow): it
        reconnects after a restart or a drop and resumes without gap or repeat."""
        if self._client is None:
            from maestroctl.reconnect import ReconnectingClient

            self._client = ReconnectingClient(self.socket, timeout=self.timeout)
        return self._client

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.client().call(method, params)

    def show(self, method: str, params: dict[str, Any] | None, human: Any) -> Any:
        """Call and print. With --json the result's bytes go out exactly as the daemon sent
        them, never decoded (the hot path for agents). Returns the decoded result or None."""
        value, raw = self.client().call_raw(method, params)
        return self.show_answer(value, raw, human)

    def show_answer(self, value: Any, raw: bytes | None, human: Any) -> Any:
        """Print what ``call_raw`` answered (see :meth:`show`)."""
        if raw is not None and self.json:
            out = sys.stdout.buffer
            out.write(raw + b"\n")
            out.flush()
            return None
        if raw is not None:
            from maestroctl import wire

            value = wire.loads(raw)
        self.emit(value, human)
        return value

    def emit(self, result: Any, human: Any = None) -> None:
        """Print ``result``: compact JSON with --json, else ``human(result)`` (a str or None)."""
        if self.json or human is None:
            from maestroctl.output import print_json

            print_json(result)
            return
        text = human(result) if callable(human) else human
        if text:
            from maestroctl.output import safe  # agents' names and words: never terminal commands

            sys.stdout.write(safe(text.rstrip("\n")) + "\n")


def _default_socket() -> str:
    from shared import paths

    return paths.default_socket()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The real argparse parser (all groups, or only ``only`` fully built)."""
    from maestroctl.parser import build

    return build(GROUPS, only)


def _peek_group(argv: list[str]) -> str | None:
    from maestroctl.fastargs import GLOBAL_DESTS  # the global options that take a value

    i = 0
    while i < len(argv):
        a = argv[i]
        if a in GLOBAL_DESTS:
            i += 2
            continue
        if a.startswith("-"):
            if a in ("-h", "--help"):
                return None
            i += 1
            continue
        return a if a in GROUPS else None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:  # without building the parser (argparse also knows it, for --help)
        import shared

        sys.stdout.write(f"maestroctl {shared.__version__}\n")
        return EXIT_OK
    if not argv and os.isatty(0) and os.isatty(1):  # a person at a terminal: the interactive shell
        argv = ["shell"]
    from maestroctl import fastargs

    args = fastargs.parse(argv)
    if args is None:  # anything the compiled fast path is not sure about: the real parser
        args = build_parser(_peek_group(argv)).parse_args(argv)
    rt = Runtime(args)
    from maestroctl.client import ConnectionLost, RemoteError, Unreachable

    try:
        code = args.func(rt, args)
    except Unreachable as exc:
        sys.stderr.write(f"maestroctl: {exc}\n")
        return EXIT_UNREACHABLE
    except ConnectionLost as exc:
        # Reached, but no whole answer: not "unreachable" (the request may even have run).
        sys.stderr.write(f"maestroctl: {exc}\n")
        return EXIT_REMOTE
    except RemoteError as exc:
        from maestroctl.output import safe  # the message may quote what an agent named

        message = str(exc.message)
        if args.group != "rpc":  # `rpc` speaks in params; every other command in its flags
            from maestroctl.usage import flag_names, speak_in_flags

            message = speak_in_flags(message, flag_names(args))
        sys.stderr.write(f"maestroctl: error {exc.code}: {safe(message)}\n")
        # Invalid params from a command's arguments: the person's usage, not the daemon's failure.
        return EXIT_USAGE if exc.code == INVALID_PARAMS and args.group != "rpc" else EXIT_REMOTE
    except SystemExit as exc:
        if isinstance(exc.code, str):  # a command's own usage check: `raise SystemExit("maestroctl ...")`
            sys.stderr.write(exc.code + "\n")
            return EXIT_USAGE
        raise
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `maestroctl ... | head`: the reader left; that is not our failure.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    finally:
        if rt._client is not None:
            rt._client.close()
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
