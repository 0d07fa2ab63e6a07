"""The daemon imports everything it runs during start-up, so that after `pip install -U` a running daemon
never mixes its modules in memory with newer ones on disk (docs/restart.md, "Imports"). Part of the imports
come after the socket answers (what it does not need: the web feed), still before READY=1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.handoff_support import HandoffDaemon

#: Modules the daemon never runs: imported only for type checking, and the pyte screen model, which a daemon
#: with avt (a dependency) never uses (without avt, maestrod.sessions.terminal imports it at once).
NEVER_RUN = {"maestrod.peer", "maestrod.sessions.terminal_pyte"}

PROBE = r"""
import importlib, pkgutil, sys
import maestrod.launch                    # the program's entry point (it installs the attrs code cache)
import maestrod.main                      # what `maestrod` imports before main() runs
import maestrod.handlers                  # imported by serve() before it listens
from maestrod.main import import_late, _import_all
before_late = set(sys.modules)
_import_all(import_late(web=True))        # imported once the socket answers, before READY=1
late = set(sys.modules) - before_late
started = set(sys.modules)
import maestrod, shared
for pkg in (maestrod, shared):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print(" ".join(sorted(m for m in set(sys.modules) - started if m.startswith(("maestrod", "shared")))))
print(" ".join(sorted(m for m in late if "." not in m)))
print(" ".join(sorted(m for m in ("pyte", "wcwidth") if m in started)))
"""


def test_every_daemon_module_is_imported_during_start_up() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd="/")
    never, late, pyte = (line.split() for line in out.stdout.splitlines())
    assert set(never) <= NEVER_RUN, f"daemon modules first imported after start-up: {set(never) - NEVER_RUN}"
    assert pyte == [], "pyte is imported although avt models the screens"
    # The web feed's libraries come after the socket answers (the pause of a graceful restart is shorter).
    assert {"h11", "trio_websocket", "wsproto"} <= set(late)



async def test_late_imports_run_with_short_gil_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a worker thread imports the late modules, the loop must get the GIL back quickly after each
    system call of an answer: the switch interval is short during those imports, and restored after."""
    from maestrod.main import LATE_IMPORT_SWITCH_INTERVAL, import_beside_the_loop

    (tmp_path / "late_probe_module.py").write_text("import sys\nINTERVAL = sys.getswitchinterval()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = sys.getswitchinterval()
    await import_beside_the_loop(("late_probe_module",))
    assert sys.modules["late_probe_module"].INTERVAL == LATE_IMPORT_SWITCH_INTERVAL
    assert sys.getswitchinterval() == before


def test_the_daemon_collects_garbage_once_it_serves(short_tmp: Path) -> None:
    """The program turns the garbage collector off for its imports (maestrod/launch.py); the daemon must turn
    it back on once its socket answers, or it would never free a reference cycle again: it is on when the
    daemon says READY=1."""
    marker = short_tmp / "gc-at-ready"
    program = short_tmp / "maestrod-watched"
    program.write_text(
        f"#!{sys.executable}\nimport gc, sys\nimport maestrod.main as daemon\nnotify = daemon.sd_notify\n"
        f"def watched(message):\n"
        f"    if 'READY=1' in message:\n"
        f"        open({str(marker)!r}, 'w').write(str(gc.isenabled()))\n"
        f"    notify(message)\n"
        f"daemon.sd_notify = watched\n"
        f"from maestrod.launch import main\nsys.exit(main())\n")
    program.chmod(0o755)
    hd = HandoffDaemon(short_tmp, program=[str(program)])
    hd.start()
    try:
        assert marker.read_text() == "True"
    finally:
        hd.stop()


async def test_requests_waiting_at_start_up_are_answered_before_the_late_imports(short_tmp: Path) -> None:
    """A restart's pause queues clients in the listen backlog; the late imports (which share the GIL with the
    answers) begin only once those were accepted and answered."""
    import socket

    import trio

    from maestrod.connections import Connections
    from maestrod.main import answer_the_backlog

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(short_tmp / "s.sock"))
    listener.listen(8)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(short_tmp / "s.sock"))  # waits in the backlog: nobody accepted it yet
    connections = Connections(1 << 20)
    order: list[str] = []

    async def serve_one() -> None:
        conn, _ = await trio.socket.from_stdlib_socket(listener).accept()
        with connections.answering_request():
            for _ in range(5):  # an answer that takes a few turns of the loop
                await trio.sleep(0)
            await conn.send(b"answer\n")
            order.append("answered")
        conn.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_one)
        await answer_the_backlog([listener], connections)
        order.append("late imports")
    assert order == ["answered", "late imports"]
    assert client.recv(16) == b"answer\n"
    client.close()

    # A connection nobody accepts does not hold start-up back beyond the bound.
    late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    late.connect(str(short_tmp / "s.sock"))
    with trio.fail_after(10):
        await answer_the_backlog([listener], connections, limit=0.05)
    late.close()
    listener.close()
