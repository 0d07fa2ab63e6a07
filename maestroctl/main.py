"""``maestroctl [--socket PATH] [--json] GROUP COMMAND ...``

Exit codes: 0 ok; 1 the daemon answered an error (message on stderr);
2 usage error; 3 the daemon is unreachable.

Only the module of the group being run is imported, so a call costs one
small module and a socket round trip on top of the interpreter's start-up.
"""

from __future__ import annotations

import argparse
import os
import sys

from shared import paths

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    from typing import Any

EXIT_OK, EXIT_REMOTE, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

#: group name -> (module under maestroctl.commands, one-line help)
GROUPS: dict[str, tuple[str, str]] = {
    "ping": ("ping", "check that maestrod answers"),
    "project": ("project", "create, list, change and delete projects"),
    "task": ("task", "tasks: hierarchy, dependencies, status"),
    "daemon": ("daemon", "the daemon itself: status"),
    "rpc": ("rpc", "call any JSON-RPC method with raw JSON params"),
    "events": ("events", "watch or replay change events"),
    "completion": ("completion", "print a shell completion script (bash|zsh)"),
}

#: Global options that take a value (so the group peek can skip them).
_VALUE_OPTS = {"--socket", "--timeout"}


class Runtime:
    """What every command needs: where the daemon is, how to print, how to call."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.socket = args.socket or paths.default_socket()
        self.json = bool(args.json)
        self.timeout = args.timeout
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from maestroctl.client import Client

            self._client = Client(self.socket, timeout=self.timeout)
            self._client.connect()
        return self._client

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.client().call(method, params)

    def emit(self, result: Any, human: Any = None) -> None:
        """Print ``result``: raw JSON with --json, else ``human(result)`` (a str or None)."""
        if self.json or human is None:
            from maestroctl.output import print_json

            print_json(result)
            return
        text = human(result) if callable(human) else human
        if text:
            sys.stdout.write(text.rstrip("\n") + "\n")


def _terminal_width() -> int:
    try:
        return int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(2).columns
    except (ValueError, OSError):
        return 100


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter imports shutil (and zlib, bz2, lzma) just to read the terminal
    width, on every add_argument; asking os directly saves ~2 ms per invocation."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or _terminal_width() - 2)


class Parser(argparse.ArgumentParser):
    """Sub-parsers inherit the class (argparse uses ``type(self)``), hence the formatter too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    ap = Parser(prog="maestroctl", description="Talk to maestrod.",
                                 epilog="exit codes: 0 ok, 1 daemon error, 2 usage, 3 daemon unreachable")
    ap.add_argument("--socket", help=f"daemon socket (default: ${paths.SOCKET_ENV} or "
                                     "$XDG_RUNTIME_DIR/maestro/maestrod.sock)")
    ap.add_argument("--json", action="store_true", help="print the raw JSON result")
    ap.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    sub = ap.add_subparsers(dest="group", metavar="GROUP", required=True)
    for name, (module, help_) in GROUPS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_, add_help=False)
            continue
        __import__(f"maestroctl.commands.{module}")
        sys.modules[f"maestroctl.commands.{module}"].register(sub, name, help_)
    return ap


def _peek_group(argv: list[str]) -> str | None:
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _VALUE_OPTS:
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
    parser = build_parser(_peek_group(argv))
    args = parser.parse_args(argv)
    rt = Runtime(args)
    from maestroctl.client import RemoteError, Unreachable

    try:
        code = args.func(rt, args)
    except Unreachable as exc:
        sys.stderr.write(f"maestroctl: {exc}\n")
        return EXIT_UNREACHABLE
    except RemoteError as exc:
        sys.stderr.write(f"maestroctl: error {exc.code}: {exc.message}\n")
        return EXIT_REMOTE
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
