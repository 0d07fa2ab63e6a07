"""``maestrod``: run the daemon in the foreground (systemd/launchd or a terminal supervise it)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import trio

import shared
from maestrod.app import App
from maestrod.config import ConfigError, load_config
from maestrod.logs import setup_logging
from maestrod.server import serve
from maestrod.sessions.screens import ScreenRulesError
from maestrod.web.feed import WebFeed
from maestrod.service import (AlreadyRunning, acquire_lock, bind_unix, ensure_private_dir, sd_notify,
                              systemd_listen_sockets)
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
    ap.add_argument("--version", action="version", version=f"maestrod {shared.__version__}")
    return ap.parse_args(argv)


async def run(app: App, socks: list[socket.socket]) -> None:
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await nursery.start(serve, app, socks)
            if app.config.web.enabled:
                await nursery.start(WebFeed(app, app.config.web.port).run)
            log.info("maestrod %s serving on %s (data %s)", shared.__version__, app.socket_path, app.data_dir)
            sd_notify(f"READY=1\nSTATUS=serving on {app.socket_path}\nMAINPID={os.getpid()}")
            async for signum in signals:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                sd_notify("STOPPING=1")
                break
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level, args.log_format)
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
    activated = systemd_listen_sockets()
    try:
        ensure_private_dir(data_dir)
        data_lock = acquire_lock(data_dir / "maestrod.lock")
        socks = activated
        if not socks:
            ensure_private_dir(socket_path.parent)
            sock_lock = acquire_lock(socket_path.with_name(socket_path.name + ".lock"))
            socks = [bind_unix(socket_path)]
        else:
            sock_lock = None
            name = socks[0].getsockname()
            if isinstance(name, str) and name:
                socket_path = Path(name)  # agents must be told the socket systemd actually listens on
    except AlreadyRunning as exc:
        log.error("%s; is maestrod already running? (`maestroctl daemon status`)", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1

    async def _main() -> None:
        # Screen rules may be overridden per agent kind beside the config (docs/screens.md).
        app = App(data_dir, socket_path, config, screens_dir=config_path.parent / "screens")
        try:
            await run(app, socks)
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
