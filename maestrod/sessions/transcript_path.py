"""Which file a session's transcript may be, and how a transcript file is opened without ever blocking.

maestrod computes a Claude session's transcript path at spawn (``<config dir>/projects/<slug>/<uuid>.jsonl``,
``sessions.transcript_path``). Claude Code legitimately moves to another file of the same project directory
on ``/clear``, ``/branch`` and ``--fork-session`` and says so in its SessionStart hook; but a hook is only a
report from the agent's side, so a path it names is accepted (:func:`check_reported`) only when it is

* a ``<uuid>.jsonl`` directly in the session's own Claude project directory (the directory of the path
  computed at spawn, or the one Claude Code names after the cwd with symbolic links resolved: :func:`physical`),
  or one of that directory's subagent files ``<uuid>/subagents/agent-<id>.jsonl``;
* not there yet (Claude Code creates the file with its first record), or a regular file: opened with
  ``O_NOFOLLOW | O_NONBLOCK`` (a symbolic link or a FIFO is refused, and opening never waits for a writer)
  and checked with ``fstat``.

:func:`maestrod.private_files.open_regular` is that open, also used by the tailer for every transcript file it
reads (the path computed at spawn included: a hostile process may put a FIFO there).
"""

from __future__ import annotations

import os
import re

import attrs

from maestrod.private_files import open_regular, why_not_openable
from shared.paths import claude_project_slug

#: ``<uuid>.jsonl``: a Claude Code session's transcript.
SESSION_FILE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\.jsonl")
#: ``agent-<id>.jsonl``: a subagent's transcript, in ``<uuid>/subagents/``.
SUBAGENT_FILE = re.compile(r"agent-[A-Za-z0-9_-]{1,128}\.jsonl")


@attrs.frozen
class Refused:
    """Why a reported transcript path is not taken."""

    reason: str


def project_dir(expected: str) -> str:
    """The Claude project directory of a transcript path (of a subagent file too)."""
    path = os.path.abspath(os.path.expanduser(expected))  # as the transcript service reads it
    parent = os.path.dirname(path)
    if SUBAGENT_FILE.fullmatch(os.path.basename(path)) and os.path.basename(parent) == "subagents":
        return os.path.dirname(os.path.dirname(parent))
    return parent


def physical(expected: str, cwd: str) -> str:
    """``expected`` in the project directory Claude Code really uses: it names it after the cwd with symbolic
    links resolved, which the path computed at spawn does not (a cwd reached through a link)."""
    root = os.path.dirname(project_dir(expected))
    return os.path.join(root, claude_project_slug(os.path.realpath(cwd)), os.path.basename(expected))


def check_reported(expected: str, reported: str) -> str | Refused:
    """``reported`` (normalised) if a session whose transcript is ``expected`` may switch to it, else why not.

    Reads the file system (an ``open`` that cannot block), nothing else."""
    if not reported:
        return Refused("empty path")
    if "\x00" in reported:
        return Refused("the path contains a NUL character")
    if not os.path.isabs(reported):
        return Refused("not an absolute path")
    path = os.path.normpath(reported)
    home = project_dir(expected)
    name, parent = os.path.basename(path), os.path.dirname(path)
    if parent == home:
        if not SESSION_FILE.fullmatch(name) and name != os.path.basename(expected):
            return Refused(f"the file name {name!r} is not <uuid>.jsonl")
    elif os.path.dirname(os.path.dirname(parent)) == home and os.path.basename(parent) == "subagents":
        owner = os.path.basename(os.path.dirname(parent))
        if not SESSION_FILE.fullmatch(owner + ".jsonl") or not SUBAGENT_FILE.fullmatch(name):
            return Refused(f"not a subagent transcript <uuid>/subagents/agent-<id>.jsonl of {home}")
        # <uuid>/ and subagents/ must be real directories under the project directory, not links elsewhere
        if os.path.realpath(parent) != os.path.join(os.path.realpath(home), owner, "subagents"):
            return Refused(f"{parent} leads out of the session's Claude project directory {home}")
    else:
        return Refused(f"not in the session's Claude project directory {home}")
    try:
        fd = open_regular(path)
    except (FileNotFoundError, NotADirectoryError):
        return path  # not written yet: Claude Code creates it with its first record
    except OSError as exc:
        return Refused(why_not_openable(exc))
    os.close(fd)
    return path
