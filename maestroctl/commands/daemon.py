from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~2 ms of start-up; annotations are never evaluated
if TYPE_CHECKING:
    import argparse
    from typing import Any


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_)
    s = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    st = s.add_parser("status", help="is maestrod running? version, pid, socket, uptime")
    st.set_defaults(func=status)
    r = s.add_parser("restart", help="re-execute the installed maestrod in place, agents kept live (docs/restart.md)",
                     description="Hand everything live (agents, terminals, the socket, in-memory state) to the "
                                 "installed maestrod, re-executed in place. Refused, with the reason, when the "
                                 "installed code cannot take over (the daemon keeps running).")
    r.add_argument("--no-wait", action="store_true", help="answer once the restart is accepted, not when done")
    r.set_defaults(func=restart)
    s.add_parser("reload", help="read config.toml again, agents untouched; says what needs a restart"
                 ).set_defaults(func=reload)
    s.add_parser("stop", help="stop the daemon; its agents are stopped gracefully").set_defaults(func=stop)


def status(rt: Any, args: argparse.Namespace) -> int:
    from maestroctl.client import Unreachable

    try:
        info = rt.call("system.version")
    except Unreachable as exc:
        if rt.json:
            rt.emit({"running": False, "socket": rt.socket, "error": str(exc).splitlines()[0]})
        else:
            sys.stderr.write(f"maestrod is not running: {exc}\n")
        return 3
    info = {"running": True, **info}
    from maestroctl.output import kv

    rt.emit(info, lambda r: kv(r, ["running", "daemon", "protocol", "pid", "socket", "data_dir", "schema",
                                   "web", "uptime_s"]))
    return 0


#: How long `daemon restart` waits for the new daemon to answer.
RESTART_WAIT = 60.0


def restart(rt: Any, args: argparse.Namespace) -> int:
    import time

    from maestroctl.client import Client, DaemonConnectionError, RemoteError

    before = rt.call("system.version")
    started = time.monotonic()
    answer = rt.call("daemon.restart")
    if not args.no_wait:
        # The old daemon still answers system.* while it hands over; the new one has a fresh uptime.
        deadline = started + RESTART_WAIT
        while True:
            try:
                c = Client(rt.socket, timeout=2.0)
                try:
                    info = c.call("system.version")
                finally:
                    c.close()
                if info["uptime_s"] < before["uptime_s"] or info["uptime_s"] < time.monotonic() - started:
                    break
            except (DaemonConnectionError, RemoteError, OSError):
                pass
            if time.monotonic() > deadline:
                sys.stderr.write(f"maestroctl: maestrod did not come back within {RESTART_WAIT:g} s\n")
                return 1
            time.sleep(0.02)
        answer = {**answer, "restarted": True, "took_ms": round((time.monotonic() - started) * 1000, 1)}
    rt.emit(answer, lambda r: f"maestrod restarted in place (pid {r['pid']}, {r['sessions']} live session(s) "
                              "handed over" + (f", {r['took_ms']} ms)" if "took_ms" in r else ")"))
    return 0


def reload(rt: Any, args: argparse.Namespace) -> int:
    r = rt.call("daemon.reload")

    def human(r: dict[str, Any]) -> str:
        lines = [f"reloaded {r['path']}: " + (", ".join(r["changed"]) or "nothing changed")]
        lines += [f"  {n['key']}: applies to {n['why']}" for n in r["new_only"]]
        lines += [f"  {n['key']}: not applied ({n['why']}; `maestroctl daemon restart` applies it)"
                  for n in r["needs_restart"]]
        return "\n".join(lines)

    rt.emit(r, human)
    return 0


def stop(rt: Any, args: argparse.Namespace) -> int:
    rt.emit(rt.call("daemon.stop"), lambda r: "maestrod is stopping (its agents are stopped gracefully)")
    return 0
