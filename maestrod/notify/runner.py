"""Running the notification command: a bus listener, a bounded queue and one service task.

The listener (called for every committed event) asks the pure :class:`~maestrod.notify.core.NotifyDecider`
and puts what it decides on a bounded queue without waiting: when the queue is full the notification is
dropped and counted, so a slow or hung command never holds up the daemon. The service task (:meth:`run`,
in ``app.services``) takes notifications off the queue and runs at most :data:`CONCURRENT` commands at a
time, each in its own process group, killed (the whole group) after ``[notify] timeout_seconds``.
Failures are logged once per distinct failure (a missing program, an exit status, a timeout) and counted;
``system.version`` reports the counters under ``notify``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import trio

from maestrod.events import EventBus
from maestrod.notify.config import NotifyConfig
from maestrod.notify.core import Notification, NotifyDecider
from maestrod.sessions.store import SessionStore
from maestrod.store.projects import ProjectStore
from shared import errors

log = logging.getLogger("maestrod.notify")

#: Notifications waiting for a free runner before new ones are dropped.
QUEUE = 64
#: Commands running at once.
CONCURRENT = 4
#: Bytes of the command's stderr kept for the failure log.
STDERR_KEEP = 512
#: After the command exited, how long its stderr may stay open (a detached child can hold it).
STDERR_GRACE = 0.5

TITLES = {"waiting_input": "is waiting for input", "needs_attention": "needs attention",
          "long_turn": "finished a long turn", "exited": "exited"}

#: Shows the notification from the environment, so nothing an agent wrote is parsed as AppleScript.
_OSASCRIPT = ('display notification (system attribute "MAESTRO_REASON") with title "maestro" '
              'subtitle ((system attribute "MAESTRO_SESSION_NAME") & " " & (system attribute "MAESTRO_TITLE"))')


def _markup_escape(text: str) -> str:
    # notification servers may read the body as markup
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


ArgvBuilder = Callable[[dict[str, str]], list[str]]


def default_command(platform: str = sys.platform,
                    which: Callable[[str], str | None] = shutil.which) -> tuple[str, ArgvBuilder] | None:
    """The built-in command for this platform when its program is on PATH: the program and its argv
    for a notification's environment."""
    if platform.startswith("linux"):
        path = which("notify-send")
        if path is not None:
            return path, lambda env: [path, "--app-name=maestro",
                                      f"maestro: {env['MAESTRO_SESSION_NAME']} {env['MAESTRO_TITLE']}",
                                      _markup_escape(env["MAESTRO_REASON"])]
    elif platform == "darwin":
        path = which("osascript")
        if path is not None:
            return path, lambda env: [path, "-e", _OSASCRIPT]
    return None


class Notifier:
    """``app.notifier``: wired in ``app.py`` with the bus it follows and the stores it names things from."""

    def __init__(self, config: NotifyConfig, bus: EventBus, session_store: SessionStore,
                 projects: ProjectStore) -> None:
        self.config = config
        self.session_store = session_store
        self.projects = projects
        self.decider = NotifyDecider(events=config.events, long_turn_seconds=config.long_turn_seconds,
                                     debounce_seconds=config.debounce_seconds)
        command = config.command
        #: The command's argv for a notification's environment (None: notifications are off), and the
        #: program it runs.
        self.argv: ArgvBuilder | None = None
        self.program: str | None = None
        if command is None:
            found = default_command()
            if found is not None:
                self.program, self.argv = found
        elif command:
            self.program, self.argv = command[0], lambda env: list(command)
        self.sent = 0
        self.failed = 0
        self.timed_out = 0
        self.dropped = 0
        self._logged: set[str] = set()
        self._send, self._recv = trio.open_memory_channel[Notification](QUEUE)
        if self.argv is not None:
            bus.add_listener(self._on_event)

    def stats(self) -> dict[str, Any]:
        return {"program": self.program, "sent": self.sent, "failed": self.failed, "timed_out": self.timed_out,
                "dropped": self.dropped, "debounced": self.decider.debounced}

    def _on_event(self, event: dict[str, Any]) -> None:
        topic = event["topic"]
        if topic != "session.status" and topic != "session.needs_attention":
            return
        n = self.decider.observe(event, time.monotonic())
        if n is None:
            return
        try:
            self._send.send_nowait(n)
        except trio.WouldBlock:
            self.dropped += 1
            self._log_once("queue-full", "notification queue full (%d waiting): dropping notifications "
                           "(the command is too slow; see [notify] timeout_seconds)", QUEUE)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        limiter = trio.CapacityLimiter(CONCURRENT)
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for n in self._recv:
                # While CONCURRENT commands run, the queue fills and the listener drops.
                token = object()
                await limiter.acquire_on_behalf_of(token)
                nursery.start_soon(self._run_released, n, limiter, token)

    async def _run_released(self, n: Notification, limiter: trio.CapacityLimiter, token: object) -> None:
        try:
            await self.notify(n)
        except Exception:  # a notification must never take the daemon down
            self.failed += 1
            log.exception("notification for session %s failed", n.session_id)
        finally:
            limiter.release_on_behalf_of(token)

    def _project_name(self, n: Notification) -> str:
        pid = n.project_id
        if pid is None:
            row = self.session_store.find(n.session_id)
            pid = row["project_id"] if row is not None else None
        if pid is None:
            return ""
        try:
            return self.projects.get(str(pid)).name
        except errors.RpcError:
            return str(pid)

    async def notify(self, n: Notification) -> int | None:
        """Run the command for ``n``: its exit status, or None when it could not start or was killed."""
        assert self.argv is not None
        env = {**os.environ, **_env_for(n.event, n.session_id, n.session_name, self._project_name(n), n.reason)}
        argv = self.argv(env)
        try:
            proc = await trio.lowlevel.open_process(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True)
        except OSError as exc:
            self.failed += 1
            self._log_once(f"start:{argv[0]}:{exc.errno}", "notify command %s could not start: %s",
                           argv[0], exc.strerror or exc)
            return None
        stderr = bytearray()
        killed = False
        try:
            async with trio.open_nursery() as nursery:
                drained = trio.Event()
                nursery.start_soon(_drain, proc, stderr, drained)
                with trio.move_on_after(self.config.timeout_seconds):
                    await proc.wait()
                if proc.returncode is None:
                    killed = True
                    _kill_group(proc)
                    await proc.wait()
                with trio.move_on_after(STDERR_GRACE):
                    await drained.wait()
                nursery.cancel_scope.cancel()
        finally:
            if proc.returncode is None:  # cancelled (daemon stopping): leave nothing behind
                _kill_group(proc)
                with trio.CancelScope(shield=True):
                    await proc.wait()
            if proc.stderr is not None:
                await proc.stderr.aclose()
        said = stderr.decode(errors="replace").strip().splitlines()
        tail = f": {said[0][:200]!r}" if said else ""
        if killed:
            self.timed_out += 1
            self.failed += 1
            self._log_once(f"timeout:{argv[0]}", "notify command %s killed after %.1f s (timeout_seconds)%s",
                           argv[0], self.config.timeout_seconds, tail)
            return None
        code = proc.returncode
        if code != 0:
            self.failed += 1
            self._log_once(f"exit:{argv[0]}:{code}", "notify command %s failed with status %s%s",
                           argv[0], code, tail)
        else:
            self.sent += 1
        return code

    def _log_once(self, key: str, msg: str, *args: Any) -> None:
        text = msg % args
        if key in self._logged:
            log.debug("%s", text)
            return
        self._logged.add(key)
        log.warning("%s (logged once)", text)


def _env_for(event: str, sid: str, name: str, project: str, reason: str) -> dict[str, str]:
    # A process environment cannot carry NUL: what agents wrote is cut there.
    def clean(text: str) -> str:
        return text.replace("\0", "")

    return {"MAESTRO_EVENT": event, "MAESTRO_SESSION_ID": clean(sid), "MAESTRO_SESSION_NAME": clean(name),
            "MAESTRO_PROJECT": clean(project), "MAESTRO_REASON": clean(reason),
            "MAESTRO_TITLE": TITLES.get(event, event)}


async def _drain(proc: trio.Process, keep: bytearray, done: trio.Event) -> None:
    assert proc.stderr is not None
    try:
        while chunk := await proc.stderr.receive_some(4096):
            if len(keep) < STDERR_KEEP:
                keep += chunk[:STDERR_KEEP - len(keep)]
    except (trio.ClosedResourceError, trio.BrokenResourceError):
        pass
    done.set()


def _kill_group(proc: trio.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.kill()
