"""Change hints for the transcript tailers: "something in directory D (entry N) changed".

Why hints and not data: correctness never depends on them.  Every tailer also polls ``stat`` on a slow
interval (docs/transcripts.md, 'The tailer'), so a missed, coalesced or overflowed notification costs
latency, never an entry.  The hints only make the common case fast (an appended line reaches the digest in
about a millisecond with inotify, 10-30 ms with watchfiles, instead of up to the poll interval).

Backends, all with the same small interface (:class:`DirWatcher`):

* :class:`InotifyWatcher` (Linux): ``inotify(7)`` through ctypes, one non-blocking fd awaited with
  ``trio.lowlevel.wait_readable``.  No thread; watches are added and removed one directory at a time.
* :class:`WatchfilesWatcher` (macOS, BSD, or when chosen): ``watchfiles.awatch`` (Rust ``notify``), which
  runs under trio through anyio.  Its default debounce of 1600 ms is replaced by a few tens of ms.  The
  directory set is fixed per ``awatch`` call, so a change of the set restarts it (and wakes every tailer once,
  in case something happened in between).
* :class:`PollWatcher`: no hints at all; the stat poll alone.

Directories are reference-counted: several sessions of one project share the project's transcript
directory, and the last one to leave removes the watch.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import struct
import sys
from collections.abc import Callable

import trio

log = logging.getLogger("maestrod.transcripts.watch")

#: ``on_change(directory, name)``; ``name`` is ``None`` when "anything may have changed" (overflow, restart).
OnChange = Callable[[str, "str | None"], None]


class DirWatcher:
    """Reference-counted directory watches delivering hints to ``on_change``.  The base class is the
    no-op backend: subclasses arm real watches in :meth:`_arm` / :meth:`_disarm`."""

    name = "poll"

    def __init__(self, on_change: OnChange) -> None:
        self.on_change = on_change
        self._refs: dict[str, int] = {}

    @property
    def directories(self) -> list[str]:
        return sorted(self._refs)

    def add(self, directory: str) -> bool:
        """Watch ``directory`` (one more reference); False if it cannot be watched (yet): the caller keeps
        relying on its stat poll and may try again later."""
        directory = os.path.normpath(directory)
        if directory in self._refs:
            self._refs[directory] += 1
            return True
        if not self._arm(directory):
            return False
        self._refs[directory] = 1
        return True

    def discard(self, directory: str) -> None:
        """Drop one reference; the watch goes with the last one."""
        directory = os.path.normpath(directory)
        count = self._refs.get(directory)
        if count is None:
            return
        if count > 1:
            self._refs[directory] = count - 1
            return
        del self._refs[directory]
        self._disarm(directory)

    def _arm(self, directory: str) -> bool:
        return os.path.isdir(directory)

    def _disarm(self, directory: str) -> None:
        pass

    def _forget(self, directory: str) -> None:
        """The kernel dropped the watch (directory deleted): forget it so a later ``add`` re-arms."""
        self._refs.pop(directory, None)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()


PollWatcher = DirWatcher


# --------------------------------------------------------------------------------------------------------
# inotify

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)

#: What makes a transcript tailer look again: appends, truncation (MODIFY), metadata, new / moved /
#: deleted entries (rotation, a new subagent file, the subagents directory appearing).
WATCH_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
              | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
_EVENT = struct.Struct("iIII")


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The process's own symbols, libc's among them: find_library would run `ldconfig -p` (~2 ms of a
        # daemon's start, before its socket answers).
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


class InotifyWatcher(DirWatcher):
    """One inotify fd for every watched directory; wakes in well under a millisecond."""

    name = "inotify"

    def __init__(self, on_change: OnChange) -> None:
        super().__init__(on_change)
        libc = _libc()
        if libc is None:
            raise OSError(errno.ENOSYS, "inotify is not available")
        self._libc = libc
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd = fd
        self._wd_dirs: dict[int, set[str]] = {}
        self._dir_wd: dict[str, int] = {}
        self._closed = False

    def _arm(self, directory: str) -> bool:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), WATCH_MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err not in (errno.ENOENT, errno.ENOTDIR):
                # ENOSPC: fs.inotify.max_user_watches is exhausted; the stat poll still covers it.
                log.warning("cannot watch %s (%s); relying on polling", directory, os.strerror(err))
            return False
        self._wd_dirs.setdefault(wd, set()).add(directory)
        self._dir_wd[directory] = wd
        return True

    def _disarm(self, directory: str) -> None:
        wd = self._dir_wd.pop(directory, None)
        if wd is None:
            return
        dirs = self._wd_dirs.get(wd)
        if dirs is not None:
            dirs.discard(directory)
            if dirs:
                return  # another path (a symlink) still needs this inode's watch
            del self._wd_dirs[wd]
        if not self._closed:
            self._libc.inotify_rm_watch(self.fd, wd)  # EINVAL if the kernel already dropped it: harmless

    def _dispatch(self, data: bytes) -> None:
        offset = 0
        end = len(data)
        while offset + _EVENT.size <= end:
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            raw = data[offset + _EVENT.size: offset + _EVENT.size + length]
            offset += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                for directory in list(self._refs):
                    self.on_change(directory, None)
                continue
            dirs = self._wd_dirs.get(wd)
            if not dirs:
                continue
            name = os.fsdecode(raw.rstrip(b"\0")) or None
            for directory in list(dirs):
                self.on_change(directory, name)
            if mask & IN_IGNORED:
                # The directory went away (or was unmounted): the kernel removed the watch.
                self._wd_dirs.pop(wd, None)
                for directory in dirs:
                    self._dir_wd.pop(directory, None)
                    self._forget(directory)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await trio.lowlevel.wait_readable(self.fd)
                while True:
                    try:
                        data = os.read(self.fd, 64 * 1024)
                    except BlockingIOError:
                        break
                    except InterruptedError:
                        continue
                    if not data:
                        break
                    self._dispatch(data)
        finally:
            self._closed = True
            trio.lowlevel.notify_closing(self.fd)
            os.close(self.fd)


# --------------------------------------------------------------------------------------------------------
# watchfiles


class WatchfilesWatcher(DirWatcher):
    """``watchfiles.awatch`` on the current directory set, restarted whenever the set changes."""

    name = "watchfiles"

    def __init__(self, on_change: OnChange, *, debounce_ms: int = 30, step_ms: int = 10) -> None:
        super().__init__(on_change)
        import watchfiles  # noqa: F401  (fail here, at construction, if it is missing)

        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self._changed = trio.Event()

    def _arm(self, directory: str) -> bool:
        if not os.path.isdir(directory):
            return False
        self._kick()
        return True

    def _disarm(self, directory: str) -> None:
        self._kick()

    def _kick(self) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        import anyio
        from watchfiles import awatch

        task_status.started()
        while True:
            changed = self._changed
            dirs = [d for d in self.directories if os.path.isdir(d)]
            if not dirs:
                await changed.wait()
                continue
            stop = anyio.Event()

            async def stopper(stop: anyio.Event = stop, changed: trio.Event = changed) -> None:
                # Set on a change of the directory set *and on cancellation*: the Rust watcher polls
                # the event every `step` ms, so a daemon shutdown is not held up by its thread.
                try:
                    await changed.wait()
                finally:
                    stop.set()

            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(stopper)
                    # Whatever happened while no watcher ran is picked up by one look at everything.
                    for directory in dirs:
                        self.on_change(directory, None)
                    async for changes in awatch(*dirs, watch_filter=None, debounce=self.debounce_ms,
                                                step=self.step_ms, stop_event=stop, recursive=False,
                                                rust_timeout=60_000):
                        for _change, path in changes:
                            self.on_change(os.path.dirname(path), os.path.basename(path))
                    nursery.cancel_scope.cancel()
            except FileNotFoundError:
                # A directory vanished between the check and the watch: try again after the next change.
                log.debug("a watched directory vanished; waiting for the next change of the set")
                for directory in dirs:
                    if not os.path.isdir(directory):
                        self._forget(directory)
                with trio.move_on_after(1.0):
                    await self._changed.wait()


def make_watcher(kind: str, on_change: OnChange, *, debounce_ms: int = 30, step_ms: int = 10) -> DirWatcher:
    """``auto`` picks inotify on Linux, else watchfiles, else polling only."""
    if kind in ("auto", "inotify"):
        try:
            return InotifyWatcher(on_change)
        except OSError as exc:
            if kind == "inotify":
                log.warning("inotify unavailable (%s); using watchfiles", exc)
    if kind in ("auto", "inotify", "watchfiles"):
        try:
            return WatchfilesWatcher(on_change, debounce_ms=debounce_ms, step_ms=step_ms)
        except ImportError:
            log.warning("watchfiles is not installed; transcripts are polled only")
    return PollWatcher(on_change)
