"""Files maestrod opens or writes where another process may have put something hostile.

* :func:`open_regular`: a regular file only, opened ``O_NOFOLLOW | O_NONBLOCK`` (a symbolic link or a FIFO is
  refused, and opening never waits for a writer) and checked with ``fstat``;
* :func:`write_private`: written whole under a temporary name and renamed over the file (a reader sees the old
  content or the new, never half), mode 0600, never through a symbolic link.

Stdlib only: the program's entry point (``maestrod/launch.py``, through the attrs code cache) uses it before
anything else of the daemon is imported.
"""

from __future__ import annotations

import errno
import os
import stat

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
#: What ``open(O_NOFOLLOW)`` of a symbolic link fails with (ELOOP; EMLINK on FreeBSD).
_SYMLINK_ERRNOS = (errno.ELOOP, errno.EMLINK)


class NotRegularFile(OSError):
    """The path names something else than a regular file (a FIFO, a socket, a device, a directory)."""


def file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str) -> int:
    """A read-only fd on ``path``, which must be a regular file: never follows a final symbolic link (OSError
    ELOOP), never waits (a FIFO opens at once, then :class:`NotRegularFile` is raised), never leaks the fd."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"{file_kind(mode)}, not a regular file", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def why_not_openable(exc: OSError) -> str:
    """A short reason for a failed :func:`open_regular` (for logs and timeline rows)."""
    if isinstance(exc, NotRegularFile):
        return str(exc.strerror)
    if exc.errno in _SYMLINK_ERRNOS:
        return "a symbolic link (only a regular file is read)"
    return f"cannot be opened: {exc.strerror or exc}"


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) atomically: a temporary file beside it, renamed over it."""
    path = os.fspath(path)
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # a temporary file left by a process of this pid kept its own mode
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
