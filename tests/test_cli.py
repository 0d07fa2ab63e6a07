"""maestrod as a real subprocess, driven by the real maestroctl: the paths a newcomer uses."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MAESTROCTL, MAESTROD


class DaemonProcess:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "run" / "maestro" / "maestrod.sock"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "XDG_", "NOTIFY_"))}
        self.env.update(XDG_RUNTIME_DIR=str(root / "run"), XDG_DATA_HOME=str(root / "data"),
                        XDG_CONFIG_HOME=str(root / "config"))
        (root / "run").mkdir(mode=0o700)
        self.notify_path = root / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(20)
        self.proc: subprocess.Popen[bytes] | None = None
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        env = dict(self.env, NOTIFY_SOCKET=str(self.notify_path))
        self.log = self.root / f"maestrod-{len(self.procs)}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([MAESTROD, *args], env=env, stdout=subprocess.DEVNULL, stderr=log)
        self.procs.append(self.proc)
        return self.proc

    def stderr(self) -> str:
        return self.log.read_text()

    def wait_ready(self) -> str:
        msg = self.notify.recv(4096).decode()
        assert "READY=1" in msg, msg
        return msg

    def ctl(self, *args: str, input_: str | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MAESTROCTL, *args], env=env or self.env, capture_output=True, text=True,
                              input=input_, timeout=30)

    def ctl_json(self, *args: str) -> Any:
        r = self.ctl("--json", *args)
        assert r.returncode == 0, (args, r.stderr)
        return json.loads(r.stdout)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


@pytest.fixture
def dproc(short_tmp: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(short_tmp)
    yield d
    for proc in d.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    d.notify.close()


def test_full_cli_flow(dproc: DaemonProcess, short_tmp: Path) -> None:
    dproc.start()
    dproc.wait_ready()
    assert dproc.ctl("ping").stdout.startswith("pong")
    # Permissions: directory 0700, socket 0600.
    assert stat.S_IMODE(dproc.socket.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(dproc.socket.stat().st_mode) == 0o600
    work = short_tmp / "work"
    work.mkdir()
    p = dproc.ctl_json("project", "create", "--name", "N", "--dir", str(work))
    assert p["name"] == "N" and p["dir"] == str(work)
    a = dproc.ctl_json("task", "create", "--project", "N", "--title", "A", "--priority", "high",
                       "--description", "first")
    b = dproc.ctl_json("task", "create", "--project", p["id"], "--title", "B", "--depends-on", a["id"])
    c = dproc.ctl_json("task", "create", "--project", "N", "--title", "C", "--parent", a["id"],
                       "--depends-on", a["id"], "--depends-on", b["id"])
    assert c["parent_id"] == a["id"] and c["depends_on"] == sorted([a["id"], b["id"]])
    listed = dproc.ctl_json("task", "list", "--project", "N")
    assert {t["id"] for t in listed} == {a["id"], b["id"], c["id"]}
    assert [t["id"] for t in dproc.ctl_json("task", "ready", "--project", "N")] == [a["id"]]
    refused = dproc.ctl("--json", "task", "update", b["id"], "--status", "in_progress")
    assert refused.returncode == 1 and a["id"] in refused.stderr and refused.stdout == ""
    upd = dproc.ctl_json("task", "update", a["id"][:6], "--status", "in_progress")
    assert upd["status"] == "in_progress"
    human = dproc.ctl("task", "list", "--project", "N", "--tree")
    assert human.returncode == 0 and "└─" in human.stdout and "[in_progress] A" in human.stdout
    table = dproc.ctl("task", "list", "--project", "N")
    assert table.stdout.splitlines()[0].split()[:3] == ["ID", "STATUS", "PRIO"]
    raw = dproc.ctl("rpc", "task.get", json.dumps({"id": a["id"]}))
    assert raw.returncode == 0 and json.loads(raw.stdout)["title"] == "A"
    bad = dproc.ctl("rpc", "task.create", '{"project": "N", "title": "x", "priority": "urgent"}')
    assert bad.returncode == 1
    assert 'priority: expected one of low|medium|high|critical, got "urgent"' in bad.stderr
    status = dproc.ctl("daemon", "status")
    assert status.returncode == 0 and "running" in status.stdout and str(dproc.proc.pid) in status.stdout  # type: ignore[union-attr]
    hist = dproc.ctl_json("task", "history", a["id"])
    assert [h["type"] for h in hist] == ["task.created", "task.status_changed"]
    # Graceful stop: exit 0, STOPPING=1 announced, socket removed.
    assert dproc.stop() == 0
    assert "STOPPING=1" in dproc.notify.recv(4096).decode()
    assert not dproc.socket.exists()
    # Data survives a restart.
    dproc.start()
    dproc.wait_ready()
    assert {t["id"] for t in dproc.ctl_json("task", "list", "--project", "N")} == {a["id"], b["id"], c["id"]}


def test_exit_codes_without_daemon(dproc: DaemonProcess) -> None:
    r = dproc.ctl("ping")
    assert r.returncode == 3
    assert str(dproc.socket) in r.stderr and "maestrod" in r.stderr and "systemctl --user start" in r.stderr
    r = dproc.ctl("--json", "daemon", "status")
    assert r.returncode == 3 and json.loads(r.stdout)["running"] is False
    assert dproc.ctl("task", "frobnicate").returncode == 2
    assert dproc.ctl().returncode == 2
    assert dproc.ctl("rpc", "system.ping", "{not json").returncode == 2


def test_maestro_socket_env_overrides(dproc: DaemonProcess, short_tmp: Path) -> None:
    other = short_tmp / "o.sock"
    dproc.env["MAESTRO_SOCKET"] = str(other)
    dproc.start()
    dproc.wait_ready()
    assert other.exists()
    assert dproc.ctl("ping").returncode == 0
    assert dproc.ctl("--socket", str(dproc.socket), "ping").returncode == 3


def test_single_instance_and_stale_socket(dproc: DaemonProcess) -> None:
    # A stale socket file from a crashed daemon is replaced.
    dproc.socket.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(dproc.socket))
    stale.close()
    first = dproc.start()
    dproc.wait_ready()
    assert dproc.ctl("ping").returncode == 0
    second = subprocess.run([MAESTROD], env=dproc.env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 1 and "already running" in second.stderr
    assert dproc.ctl("ping").returncode == 0
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=20) == 0


def test_bad_config_stops_startup_with_the_key(dproc: DaemonProcess) -> None:
    cfg = dproc.root / "config" / "maestro"
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text('[sessions]\nscrollback_bytes = "big"\nbogus = 1\n')
    proc = dproc.start()
    assert proc.wait(timeout=20) == 2
    err = dproc.stderr()
    assert "sessions.scrollback_bytes: expected integer, got string" in err
    assert "sessions.bogus: unknown field" in err


def test_bad_screen_rules_override_stops_startup_naming_file_and_rule(dproc: DaemonProcess) -> None:
    screens = dproc.root / "config" / "maestro" / "screens"
    screens.mkdir(parents=True)
    (screens / "claude.toml").write_text('[[rule]]\nname = "trust-folder"\nkind = "nonsense"\n')
    proc = dproc.start()
    assert proc.wait(timeout=20) == 2
    err = dproc.stderr()
    assert "bad screen rules" in err and "claude.toml" in err and "trust-folder" in err


def test_json_logs(dproc: DaemonProcess) -> None:
    proc = dproc.start("--log-format", "json", "--log-level", "debug")
    dproc.wait_ready()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    lines = [json.loads(line) for line in dproc.stderr().splitlines()]
    assert any("serving on" in x["message"] for x in lines)
    assert all({"time", "level", "logger", "message"} <= set(x) for x in lines)


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts(dproc: DaemonProcess, shell: str) -> None:
    r = dproc.ctl("completion", shell)
    assert r.returncode == 0 and "_maestroctl" in r.stdout and "task create" in r.stdout
    check = subprocess.run(["bash", "-n"], input=r.stdout, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # Completing `maestroctl task cr<TAB>` offers `create`.
    script = r.stdout + '\nCOMP_WORDS=(maestroctl task cr); COMP_CWORD=2; _maestroctl; echo "${COMPREPLY[@]}"\n'
    if shell == "bash":
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
        assert out.stdout.split() == ["create"]


def test_client_does_not_import_heavy_modules(dproc: DaemonProcess) -> None:
    dproc.start()
    dproc.wait_ready()
    code = ("import sys; from maestroctl.main import main; rc = main(['task', 'list']); "
            "bad = [m for m in ('trio', 'cattrs', 'attrs', 'maestrod') if m in sys.modules]; "
            "print(repr(bad)); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], env=dproc.env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_systemd_socket_activation(dproc: DaemonProcess, short_tmp: Path) -> None:
    """LISTEN_FDS/LISTEN_PID as systemd passes them: maestrod serves on the inherited fd 3, does not
    bind its own socket, and leaves the activated socket file alone on exit (systemd owns it)."""
    path = short_tmp / "act.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    # exec keeps the pid, so the shim can announce its own pid as LISTEN_PID, like systemd does.
    shim = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
            "os.environ['LISTEN_FDS'] = '1'; os.execv(sys.argv[2], sys.argv[2:])")
    env = dict(dproc.env, NOTIFY_SOCKET=str(dproc.notify_path))
    log = open(short_tmp / "act.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", shim, str(listener.fileno()), MAESTROD],
                            env=env, pass_fds=(listener.fileno(),), stderr=log)
    dproc.procs.append(proc)
    listener.close()
    log.close()
    dproc.wait_ready()
    r = dproc.ctl("--socket", str(path), "ping")
    assert r.returncode == 0, r.stderr
    assert not dproc.socket.exists()  # it did not bind the default socket
    status = json.loads(dproc.ctl("--socket", str(path), "--json", "daemon", "status").stdout)
    assert status["socket"] == str(path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert path.exists()


def test_client_choice_lists_match_the_daemon() -> None:
    """maestroctl spells its choice lists out (importing shared.messages would cost start-up time);
    they must stay what the daemon accepts."""
    import typing

    from maestroctl.commands import session as session_cmd
    from maestroctl.commands import task as task_cmd
    from shared.messages.session import Status as SessionStatus
    from shared.messages.task import PRIORITIES, STATUSES

    assert task_cmd.STATUSES == list(STATUSES)
    assert task_cmd.PRIORITIES == list(PRIORITIES)
    assert session_cmd.STATUSES == list(typing.get_args(SessionStatus))
