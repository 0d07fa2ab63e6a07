"""``maestroctl shell`` (also plain ``maestroctl`` on a terminal): the interactive shell.

Only ``run`` imports the shell (prompt_toolkit): registering the command costs every other command nothing.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=(
        "An interactive shell: every maestroctl command without the `maestroctl` prefix, Tab completion "
        "of commands, flags and live ids and names, a toolbar with every live session's status, `attach ID`, "
        "`prompt ID` (a multi-line editor), `help`, `exit`. History: $XDG_STATE_HOME/maestro/shell_history."))
    p.set_defaults(func=run)


def run(rt: Any, args: argparse.Namespace) -> int:
    if not (os.isatty(0) and os.isatty(1)):
        sys.stderr.write("maestroctl shell: needs a terminal on stdin and stdout "
                         "(run the commands themselves in scripts)\n")
        return 2
    from maestroctl.shell.app import run_shell

    return run_shell(rt.socket)
