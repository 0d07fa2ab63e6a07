"""Where an agent's program is: the config's ``bin``, then a ``MAESTRO_<AGENT>_BIN`` variable, then PATH.

One rule for every agent kind, used when a session is spawned and when it is relaunched (resume, wake)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

import attrs

from shared import errors


@attrs.frozen
class Program:
    #: For people: "Claude Code".
    title: str
    #: The command on PATH, also the config section's name: "claude".
    command: str
    env_var: str
    #: How to get it, said when it is missing (may be empty).
    install: str = ""

    def find(self, configured: str | None, env: Mapping[str, str]) -> str | None:
        """The binary: ``configured`` (a path, or a name looked up on PATH), then ``$env_var``, then PATH."""
        for candidate in (configured, env.get(self.env_var)):
            if candidate:
                path = os.path.expanduser(candidate)
                if os.sep not in path:
                    return shutil.which(path, path=env.get("PATH"))
                return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
        return shutil.which(self.command, path=env.get("PATH"))

    def require(self, configured: str | None, env: Mapping[str, str], purpose: str = "") -> str:
        """:meth:`find`, or -32006 saying where it was looked for (``purpose``: e.g. " to resume the session")."""
        found = self.find(configured, env)
        if found is None:
            raise errors.RpcError(
                errors.UNAVAILABLE,
                f"{self.title} not found{purpose}: set `bin` in the [{self.command}] section of the config, or "
                f"{self.env_var}, or put `{self.command}` on the daemon's PATH"
                + (f" ({self.install})" if self.install else ""))
        return found


CLAUDE = Program("Claude Code", "claude", "MAESTRO_CLAUDE_BIN")
CODEX = Program("Codex CLI", "codex", "MAESTRO_CODEX_BIN", "npm install -g @openai/codex")
