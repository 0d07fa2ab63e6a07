"""``maestrod``: run the daemon in the foreground (systemd/launchd or a terminal supervise it)."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path

import trio

import shared
from maestrod.app import App
from maestrod.config import ConfigError, load_config
from maestrod.connections import Connections
from maestrod.logs import setup_logging
from maestrod.server import serve
from maestrod.sessions.screens import ScreenRulesError
from maestrod.handoff import (STATE_ENV, Adopted, DaemonControl, HandoffError, Process, check_main, program,
                              take_over)
from maestrod.service import (AlreadyRunning, acquire_lock, bind_unix, ensure_private_dir, sd_notify,
                              systemd_listen_fds)
from shared import paths

log = logging.getLogger("maestrod")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="maestrod", description="The maestro daemon (runs in the foreground).")
    # The defaults as this user's environment makes them now ($MAESTRO_SOCKET, $XDG_RUNTIME_DIR, ...).
    ap.add_argument("--socket", default=None,
                    help=f"Unix socket path (default: {paths.default_socket()}: ${paths.SOCKET_ENV}, else "
                         "$XDG_RUNTIME_DIR/maestro/maestrod.sock, else /tmp/maestro-$UID/maestrod.sock)")
    ap.add_argument("--data-dir", default=None, help="where the SQLite store lives "
                                                     f"(default: {paths.data_dir()}: $XDG_DATA_HOME/maestro)")
    ap.add_argument("--config", default=None,
                    help=f"config file (default: {paths.config_file()}: $XDG_CONFIG_HOME/maestro/config.toml)")
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    ap.add_argument("--log-format", default="text", choices=["text", "json"])
    ap.add_argument("--no-web", action="store_true",
                    help="do not serve the WebSocket feed and dashboard (same as [web] enabled = false)")
    ap.add_argument("--check-state", metavar="FILE", default=None,
                    help="check that this maestrod can take over a running daemon's handoff state FILE, then "
                         "exit (0: it can); `maestroctl daemon restart` runs it before it re-executes")
    ap.add_argument("--version", action="version", version=f"maestrod {shared.__version__}")
    return ap.parse_args(argv)


async def run(app: App, socks: list[socket.socket], control: DaemonControl, *,
              web_token: str | None = None, web_port: int | None = None,
              phases: dict[str, float] | None = None, cpu_at_exec: float | None = None) -> None:
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            await nursery.start(serve, app, socks)
            gc.enable()  # off since the program started (maestrod/launch.py): the imports are done
            if phases is not None:
                phases["serving"] = time.monotonic()
                _log_phases(phases, cpu_at_exec)
            # The socket answers from here. Start-up goes on with what it does not need (docs/restart.md,
            # "Imports"): imported in a thread, so that the requests that waited meanwhile are answered now.
            late = import_late(app.config.web.enabled)
            if late:
                await answer_the_backlog(socks, app.connections)
                await import_beside_the_loop(late)
            if app.config.web.enabled:
                from maestrod.web.feed import WebFeed  # imported just above

                port = app.config.web.port if web_port is None else web_port
                await nursery.start(WebFeed(app, port, token=web_token).run)
            log.info("maestrod %s serving on %s (data %s)", shared.__version__, app.socket_path, app.data_dir)
            sd_notify(f"READY=1\nSTATUS=serving on {app.socket_path}\nMAINPID={os.getpid()}")

            async def forward_signals() -> None:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    log.info("received %s: %s", name, "graceful restart" if signum == signal.SIGHUP else "shutting down")
                    control.requests.send_nowait("restart" if signum == signal.SIGHUP else "stop")

            nursery.start_soon(forward_signals)
            async for asked in control.asked:
                if asked == "stop":
                    break
                if asked == "restart":  # SIGHUP: check first (daemon.restart checked before it answered)
                    if control.busy:
                        log.warning("SIGHUP: a restart is already under way")
                        continue
                    control.busy = True
                    why = await control.check()
                    if why is not None:
                        control.busy = False
                        continue
                await control.hand_over()  # returns only if the exec failed (logged): keep serving
            sd_notify("STOPPING=1")
        app.shutting_down.set()
        # Services watch `shutting_down` to stop their children gracefully, bounded in time.
        with trio.move_on_after(app.config.sessions.stop_timeout * 3 + 1):
            for hook in app.shutdown_hooks:
                await hook()
        # Long waits ended with -32006 {retry: true} when shutting_down was set: let those answers out, so
        # that their clients resend them to the next daemon rather than guess (bounded: a client that does
        # not read gives up its answer).
        with trio.move_on_after(1.0):
            await app.connections.wait_answered()
        nursery.cancel_scope.cancel()


#: What the Unix socket does not need, imported after it answers again (a graceful restart's pause) but still
#: during start-up, before READY=1: a running daemon never imports a module later, so it never mixes old and
#: new ones after an upgrade on disk. The web feed pulls in h11, wsproto and trio-websocket (which imports
#: importlib.metadata, email, zipfile, csv): a sixth of the daemon's import time.
LATE_WEB_MODULES = ("maestrod.web.feed",)


def import_late(web: bool) -> tuple[str, ...]:
    """The modules :func:`run` imports once the socket answers (none of them when they are loaded already)."""
    return tuple(m for m in (LATE_WEB_MODULES if web else ()) if m not in sys.modules)


#: The GIL switch interval while the late imports run beside the event loop. Each system call the loop makes
#: while answering (accept, recv, send, epoll) lets the GIL go, and taking it back waits for the importing
#: thread's turn to end: at the default 5 ms, one request cost up to ~30 ms more during the web feed's
#: imports (measured: a graceful restart's pause 40 ms longer with the web feed on).
LATE_IMPORT_SWITCH_INTERVAL = 0.0005


async def import_beside_the_loop(names: tuple[str, ...]) -> None:
    """Import ``names`` in a worker thread, the loop answering meanwhile (short GIL turns)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(LATE_IMPORT_SWITCH_INTERVAL)
    try:
        await trio.to_thread.run_sync(_import_all, names)
    finally:
        sys.setswitchinterval(before)


#: The longest start-up waits for the requests that queued during a restart's pause to be answered before the
#: late imports begin (a client that keeps the daemon busy does not hold them back longer).
BACKLOG_LIMIT = 0.5
#: Scheduler turns in a row without a connection waiting to be accepted or a request running: a connection
#: accepted in one turn has its request read and started in the next ones.
QUIET_TURNS = 3


async def answer_the_backlog(socks: list[socket.socket], connections: Connections,
                             limit: float = BACKLOG_LIMIT) -> None:
    """Until no connection waits in a listen backlog and no request is running, :data:`QUIET_TURNS` turns in a
    row (at most ``limit``): the clients that queued while the daemon re-executed are answered before the late
    imports share the GIL with their answers (they made the first answer after a restart up to ~30 ms later)."""
    backlog = select.poll()
    for sock in socks:
        backlog.register(sock.fileno(), select.POLLIN)
    quiet = 0
    with trio.move_on_after(limit):
        while quiet < QUIET_TURNS:
            await trio.sleep(0)
            if connections.answering:
                quiet = 0
                await connections.wait_none_answering()
            elif backlog.poll(0):
                quiet = 0
            else:
                quiet += 1


def _import_all(names: tuple[str, ...]) -> None:
    for name in names:
        importlib.import_module(name)


def _log_phases(phases: dict[str, float], cpu_at_exec: float | None) -> None:
    marks = list(phases.items())
    steps = ", ".join(f"{name} {(t - prev) * 1000:.0f}" for (_, prev), (name, t) in zip(marks, marks[1:]))
    cpu = "" if cpu_at_exec is None else f", {(time.process_time() - cpu_at_exec) * 1000:.0f} ms of CPU"
    log.info("handoff: answering %.0f ms after the exec%s (ms: %s)", (marks[-1][1] - marks[0][1]) * 1000, cpu,
             steps)


def main(argv: list[str] | None = None, *, code_cache_note: str | None = None) -> int:
    """``code_cache_note``: why the attrs code cache was not used (:mod:`maestrod.launch`), said once logging
    is set up: a cache file someone else may write is refused, and its owner should know."""
    entered = time.monotonic()
    args = parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    if code_cache_note:
        log.warning("attrs code cache: %s", code_cache_note)
    if args.check_state:
        return check_main(args.check_state)
    socket_path = Path(args.socket or paths.default_socket()).absolute()
    data_dir = Path(args.data_dir or paths.data_dir()).absolute()
    config_path = Path(args.config or paths.config_file())
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        log.error("bad configuration: %s", exc)
        return 2
    if args.no_web:
        config.web.enabled = False
    handed: Adopted | None = None
    state_file = os.environ.pop(STATE_ENV, None)
    stored: dict[str, int] = {}
    #: A graceful restart's steps, CLOCK_MONOTONIC (logged once it answers: the pause clients see).
    phases: dict[str, float] | None = None
    try:
        if state_file:
            # A graceful restart: this process is its predecessor re-executed, holding its descriptors.
            handed = take_over(Path(state_file))
            phases = {"exec": float(handed.state["monotonic"]), "imports": entered, "take-over": time.monotonic()}
            socks, lock_fds, activated = handed.listen, handed.lock_fds, bool(handed.state["activated"])
            data_lock, sock_lock = lock_fds[0], (lock_fds[1] if len(lock_fds) > 1 else None)
            if activated:
                name = socks[0].getsockname()
                if isinstance(name, str) and name:
                    socket_path = Path(name)
        else:
            socks, stored = systemd_listen_fds()
            activated = bool(socks)
            ensure_private_dir(data_dir)
            data_lock = acquire_lock(data_dir / "maestrod.lock")
            if not socks:
                ensure_private_dir(socket_path.parent)
                sock_lock = acquire_lock(socket_path.with_name(socket_path.name + ".lock"))
                socks = [bind_unix(socket_path)]
            else:
                sock_lock = None
                name = socks[0].getsockname()
                if isinstance(name, str) and name:
                    socket_path = Path(name)  # agents must be told the socket systemd actually listens on
    except HandoffError as exc:
        log.error("cannot take over from the previous daemon: %s", exc)
        return 1
    except AlreadyRunning as exc:
        log.error("%s; is maestrod already running? (`maestroctl daemon status`)", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    proc = Process(program(), list(sys.argv[1:] if argv is None else argv), config_path, socks,
                   [fd for fd in (data_lock, sock_lock) if fd is not None], activated, no_web=args.no_web)

    async def _main() -> None:
        # Screen rules may be overridden per agent kind beside the config (docs/screens.md).
        app = App(data_dir, socket_path, config, screens_dir=config_path.parent / "screens")
        if phases is not None:
            phases["app"] = time.monotonic()
        control = DaemonControl(app, proc)
        app.control = control
        app.sessions.fd_store = stored
        web = None
        if handed is not None:
            app.sessions.handed_over = handed.state["sessions"]
            app.sessions.handed_scrollback = handed.scrollback
            # Ages in the state are as of its writing: the exec and the imports passed since.
            app.sessions.handoff_gap = handed.gap
            app.sessions.prompts.restore_rate_windows(handed.state["prompt_rates"],
                                                      trio.current_time() - handed.gap)
            web = handed.web
        try:
            await run(app, socks, control, web_token=web["token"] if web else None,
                      web_port=web["port"] if web else None, phases=phases,
                      cpu_at_exec=handed.state.get("cpu") if handed else None)
        finally:
            app.close()

    try:
        trio.run(_main)
    except ScreenRulesError as exc:  # an override in the config directory that does not load
        log.error("bad screen rules: %s", exc)
        return 2
    finally:
        if not activated:
            try:
                socket_path.unlink()
            except FileNotFoundError:
                pass
        for fd in (data_lock, sock_lock):
            if fd is not None:
                os.close(fd)
    log.info("maestrod stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
