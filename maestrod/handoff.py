"""Graceful restart and upgrade: maestrod re-executes itself in place and its successor adopts everything.

``maestroctl daemon restart`` (``daemon.restart``) or SIGHUP:

1. **Check.** The state is written to the handoff file and the *installed* code checks it in a child process
   (``maestrod --check-state FILE``: it imports everything the daemon needs, and reads the file with its own
   reader, which refuses a version it does not read, :data:`READS`). If that fails, the daemon keeps serving and says why
   (the answer of ``daemon restart``, and the log). The daemon imported everything at start, so it never
   mixes the old modules in memory with new ones on disk.
2. **Quiesce.** New requests get -32006 ``{retry: true}`` (they never started; clients send them again to
   the successor); long waits end the same way; requests already running are answered first (bounded);
   no prompt or keystroke is left half-typed (each session's typing locks are held from here).
3. **Hand over, then exec** (one synchronous step, so nothing changes in between): every live session's
   state (:func:`maestrod.sessions.adopt.snapshot`: pid, PTY master fd, size, screen, status witnesses,
   prompt gate, scrollback into one memfd), the prompt rate-limit windows, the web token, the listening
   sockets and lock fds go to a versioned JSON file in the runtime directory; those fds are made inheritable
   and the process ``execve``s the installed ``maestrod`` with the same arguments. Same pid: the agents stay
   its children and notice nothing. What an agent writes meanwhile waits in its PTY.
4. **Adopt.** The new image finds ``MAESTRO_HANDOFF_STATE``, reads the file (and deletes it), takes the
   sockets back (connections that arrived meanwhile wait in the listen backlog) and adopts each session
   (:mod:`maestrod.sessions.adopt`) before it answers anything. The transcript tailers go on from their
   checkpoints in the store, the prompt queues are in the store, and the events clients missed are replayed
   by ``seq`` (``events.replay``).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import trio

import shared
from maestrod.app import App
from maestrod.config import ConfigError, load_config
from maestrod.reload import apply_config
from maestrod.private_files import write_private
from maestrod.service import sd_notify
from maestrod.sessions.status import AGENT_KINDS
from shared import errors

log = logging.getLogger("maestrod.handoff")

#: The state file's format version this build writes. A daemon refuses (at its check) a file of a version it
#: does not read, so an upgrade that changes the format beyond :data:`READS` is refused by the old daemon,
#: which keeps serving. 2: a screen is the emulator's own dump where it has one (version 1: a repaint).
STATE_VERSION = 2
#: The versions this build adopts: its own, and the one before (an upgrade from it works).
READS = (1, STATE_VERSION)
STATE_FORMAT = "maestrod-handoff"
#: Names the state file to the successor (popped at once: agents must not inherit it).
STATE_ENV = "MAESTRO_HANDOFF_STATE"
#: Requests running when the handoff starts are answered first, for at most this long.
ANSWER_TIMEOUT = 10.0
#: Prompts being typed are finished first, for at most this long.
TYPING_TIMEOUT = 5.0
#: ``maestrod --check-state`` must answer within this.
CHECK_TIMEOUT = 60.0

_SESSION_KEYS = {"id": str, "agent": str, "pid": int, "fd": int, "rows": int, "cols": int, "scrollback": dict,
                 "screen": dict, "machine": dict, "decision": dict, "awaiting_confirm_in": float,
                 "stopping": bool}


class HandoffError(Exception):
    pass


def state_path(socket_path: Path) -> Path:
    return socket_path.with_name(f"{socket_path.stem}.handoff.json")


def problems(state: Any) -> list[str]:
    """What keeps this build from adopting ``state`` (empty: nothing)."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        return ["not a maestrod handoff state file"]
    if state.get("version") not in READS:
        return [f"state version {state.get('version')!r} (written by maestrod {state.get('daemon')}); "
                f"this maestrod {shared.__version__} reads versions {', '.join(map(str, READS))} only"]
    found: list[str] = []
    for key, kind in {"listen_fds": list, "lock_fds": list, "sessions": list, "prompt_rates": list,
                      "monotonic": float, "scrollback_fd": int}.items():
        if not isinstance(state.get(key), kind):
            found.append(f"{key}: expected {kind.__name__}")
    for i, s in enumerate(state.get("sessions") or []):
        if not isinstance(s, dict):
            found.append(f"sessions[{i}]: expected an object")
            continue
        for key, kind in _SESSION_KEYS.items():
            value = s.get(key)
            if kind is float:  # JSON writes 0.0 as 0 in some encoders: any number but a bool
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            else:
                ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            if not ok:
                found.append(f"sessions[{i}].{key}: expected {kind.__name__}")
        if s.get("agent") not in AGENT_KINDS:
            found.append(f"sessions[{i}].agent: unknown agent kind {s.get('agent')!r}")
    return found


def read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise HandoffError(f"cannot read {path}: {exc}") from None
    found = problems(state)
    if found:
        raise HandoffError(f"{path}: " + "; ".join(found))
    assert isinstance(state, dict)
    return state


def check_main(path: str) -> int:
    """``maestrod --check-state FILE``: can this installed maestrod take over that state? Exit 0 if so."""
    try:
        import maestrod.handlers  # noqa: F401  (everything the daemon runs must import)
        import maestrod.server  # noqa: F401
        import maestrod.web.feed  # noqa: F401
        from maestrod.sessions.screens import load_rules
        from maestrod.sessions.status import AGENT_KINDS

        # The successor parses its built-in screen tables when first used: a broken one is refused here.
        for kind, spec in AGENT_KINDS.items():
            if spec.screen_rules:
                load_rules(kind)
        version = read_state(Path(path))["version"]
    except HandoffError as exc:
        print(f"maestrod {shared.__version__}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # an installed build that does not even import
        print(f"maestrod {shared.__version__}: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"maestrod {shared.__version__}: state version {version} ok")
    return 0


def program(argv0: str | None = None) -> list[str]:
    """How to start the installed maestrod: the ``maestrod`` script this process runs as, or
    ``python -m maestrod`` when it was started that way."""
    first = sys.argv[0] if argv0 is None else argv0
    if first.endswith(("__main__.py", os.sep + "main.py")) or first in ("-m", "-c", ""):
        return [sys.executable, "-m", "maestrod"]
    found = first if os.sep in first else (shutil.which(first) or first)
    return [os.path.abspath(found)]


@attrs.define
class Process:
    """What the daemon's process holds that a successor must get back (built by ``maestrod.main``)."""

    #: The installed maestrod (:func:`program`) ...
    program: list[str]
    #: ... and this process's arguments after it.
    args: list[str]
    config_path: Path
    listen: list[socket.socket]
    lock_fds: list[int]
    activated: bool
    #: ``--no-web``: the command line's word over config.toml's, also when it is read again.
    no_web: bool = False


@attrs.define
class Adopted:
    """What a daemon started by a graceful restart takes from its predecessor's state."""

    state: dict[str, Any]
    listen: list[socket.socket]
    lock_fds: list[int]
    scrollback: memoryview
    #: CLOCK_MONOTONIC seconds between writing the state and reading it (the exec and the imports).
    gap: float

    @property
    def web(self) -> dict[str, Any] | None:
        web = self.state.get("web")
        return web if isinstance(web, dict) else None


def take_over(path: Path) -> Adopted:
    """Read the state file a predecessor left (then delete it) and take back its descriptors."""
    state = read_state(path)
    try:
        path.unlink()
    except OSError:
        pass
    gap = max(0.0, time.monotonic() - float(state["monotonic"]))
    fds = [*state["listen_fds"], *state["lock_fds"], state["scrollback_fd"], *(s["fd"] for s in state["sessions"])]
    for fd in fds:
        os.set_inheritable(fd, False)
    listen = [socket.socket(fileno=fd) for fd in state["listen_fds"]]
    length = int(state.get("scrollback_bytes", 0))
    view = memoryview(mmap.mmap(state["scrollback_fd"], length, prot=mmap.PROT_READ) if length else b"")
    os.close(state["scrollback_fd"])
    return Adopted(state, listen, list(state["lock_fds"]), view, gap)


class DaemonControl:
    """The daemon's :class:`~maestrod.control.Control`: restart in place, reload, stop."""

    def __init__(self, app: App, proc: Process) -> None:
        self.app = app
        self.proc = proc
        self.path = state_path(app.socket_path)
        #: What ``maestrod.main``'s loop is asked to do ("stop", "restart", "restart-checked").
        self.requests, self.asked = trio.open_memory_channel[str](16)
        self.busy = False

    # -- the Control protocol (daemon.* methods) ------------------------------------------------------------

    async def restart(self) -> dict[str, Any]:
        if self.busy:
            raise errors.conflict("a restart is already under way")
        self.busy = True
        try:
            why = await self.check()
        except BaseException:
            self.busy = False
            raise
        if why is not None:
            self.busy = False
            raise errors.conflict(f"not restarting: {why}; maestrod keeps running", {"reason": why})
        self.requests.send_nowait("restart-checked")
        live = sum(1 for s in self.app.sessions.sessions.values() if not s.is_exited)
        return {"restarting": True, "pid": os.getpid(), "sessions": live, "exec": self.proc.program,
                "state_version": STATE_VERSION}

    def reload(self) -> dict[str, Any]:
        try:
            new = load_config(self.proc.config_path)
        except ConfigError as exc:
            raise errors.conflict(f"config not reloaded (nothing changed): {exc}") from None
        if self.proc.no_web:
            new.web.enabled = False
        result = apply_config(self.app, new)
        log.info("config reloaded from %s: changed %s; not applied (needs a restart) %s", self.proc.config_path,
                 result["changed"] or "nothing", [n["key"] for n in result["needs_restart"]] or "none")
        return {"path": str(self.proc.config_path), **result}

    def stop(self) -> None:
        self.requests.send_nowait("stop")

    # -- the steps --------------------------------------------------------------------------------------

    async def check(self) -> str | None:
        """Write the state as it is now and have the installed code check it; None if it passes, else why."""
        now = trio.current_time()
        state = self._state(now, bytearray(), -1)
        self._write(state)
        argv = [*self.proc.program, "--check-state", str(self.path)]
        try:
            with trio.move_on_after(CHECK_TIMEOUT) as timer:
                done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False,
                                              stdin=subprocess.DEVNULL)
        except OSError as exc:
            why = f"cannot run the installed maestrod's check ({argv[0]}): {exc}"
            log.error("restart refused: %s", why)
            return why
        finally:
            try:
                self.path.unlink()
            except OSError:
                pass
        if timer.cancelled_caught:
            why = f"the installed maestrod's state check did not answer within {CHECK_TIMEOUT:g} s"
        elif done.returncode != 0:
            out = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
            why = f"the installed maestrod refuses this daemon's state: {out[-1] if out else done.returncode}"
        else:
            return None
        log.error("restart refused: %s", why)
        return why

    async def hand_over(self) -> str:
        """Quiesce, write the state and exec; returns (the daemon keeps serving) only if the exec failed."""
        app = self.app
        log.info("graceful restart: handing over to %s", " ".join(self.proc.program))
        sd_notify("RELOADING=1\nSTATUS=handing over to a new maestrod")
        app.shutting_down.set()
        with trio.move_on_after(ANSWER_TIMEOUT):
            await app.connections.wait_idle()
        await app.sessions.quiesce(TYPING_TIMEOUT)
        app.transcripts.flush()
        try:
            self._exec()
        except OSError as exc:
            why = f"exec of {self.proc.program[0]} failed: {exc}"
            log.error("restart abandoned, maestrod keeps serving: %s", why)
            self.resume_serving()
            sd_notify("READY=1\nSTATUS=serving (a restart failed)")
            return why
        raise AssertionError("unreachable")  # pragma: no cover

    def resume_serving(self) -> None:
        """The exec failed: everything the hand-over stopped goes on, as before it started. The same
        ``shutting_down`` object is cleared (services hold it), typing may go on, and the task runs, which
        let wake-ups pass while it was set, look again."""
        self.app.shutting_down.clear()
        self.app.sessions.thaw()
        self.app.runner.poke()
        self.busy = False

    def _state(self, now: float, scrollback: bytearray, scrollback_fd: int) -> dict[str, Any]:
        app = self.app
        sessions = app.sessions.hand_over(now, scrollback)
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "daemon": shared.__version__,
                "pid": os.getpid(), "written_at": time.time(), "monotonic": time.monotonic(),
                # The process's CPU time goes on across the exec: the successor's share is what it adds.
                "cpu": time.process_time(),
                "listen_fds": [s.fileno() for s in self.proc.listen], "lock_fds": self.proc.lock_fds,
                "activated": self.proc.activated,
                "web": None if app.web is None else {"port": app.web.port, "token": app.web.token},
                "scrollback_fd": scrollback_fd, "scrollback_bytes": len(scrollback),
                "sessions": sessions, "prompt_rates": app.sessions.prompts.rate_windows(now)}

    def _write(self, state: dict[str, Any]) -> None:
        write_private(self.path, json.dumps(state).encode())

    def _exec(self) -> None:
        """Serialise and exec, with nothing awaited in between (no other task runs)."""
        started = time.monotonic()
        scrollback = bytearray()
        memfd = os.memfd_create("maestrod-scrollback", 0)  # no MFD_CLOEXEC: the successor reads it
        inheritable: list[int] = [memfd]
        try:
            state = self._state(trio.current_time(), scrollback, memfd)
            view = memoryview(scrollback)
            while view:
                view = view[os.write(memfd, view):]
            inheritable += [*state["listen_fds"], *state["lock_fds"], *(s["fd"] for s in state["sessions"])]
            for fd in inheritable:
                os.set_inheritable(fd, True)
            self._write(state)
            log.info("handing over %d sessions (%d bytes of scrollback) after %.1f ms of serialising; exec %s",
                     len(state["sessions"]), len(scrollback), (time.monotonic() - started) * 1000,
                     " ".join(self.proc.program))
            for handler in logging.getLogger().handlers:
                handler.flush()
            argv = [*self.proc.program, *self.proc.args]
            os.execve(argv[0], argv, {**os.environ, STATE_ENV: str(self.path)})
        except BaseException:
            try:
                self.path.unlink()  # no successor reads it; it names fds that are not inheritable any more
            except OSError:
                pass
            for fd in inheritable[1:]:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass
            os.close(memfd)
            raise

