"""The web feed in the real ``maestrod`` (a subprocess): on by default with its port and token files,
``maestroctl web token|url``, ``--no-web``, and a port that is taken."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from maestrod.web.endpoint import WebEndpoint
from tests.test_cli import DaemonProcess
from tests.web_support import get, http_request, ws_client


@pytest.fixture
def web_dproc(short_tmp: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(short_tmp)
    yield d
    for proc in d.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    d.notify.close()


def _config(d: DaemonProcess, text: str) -> None:
    cfg = d.root / "config" / "maestro"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text(text)


def _ready(d: DaemonProcess) -> None:
    """Wait for READY=1 (skipping a previous run's STOPPING=1 on the same notify socket)."""
    while "READY=1" not in d.notify.recv(4096).decode():
        pass


def _files(d: DaemonProcess) -> tuple[Path, Path]:
    return d.socket.with_name("maestrod.web-port"), d.socket.with_name("maestrod.web-token")


def test_on_by_default_with_private_files_and_the_cli(web_dproc: DaemonProcess) -> None:
    d = web_dproc
    _config(d, "[web]\nport = 0\n")  # the default port is fixed (7733); tests take a free one
    d.start()
    _ready(d)
    port_file, token_file = _files(d)
    port, token = int(port_file.read_text()), token_file.read_text().strip()
    assert port_file.stat().st_mode & 0o777 == 0o600 and token_file.stat().st_mode & 0o777 == 0o600
    assert f"web feed on http://127.0.0.1:{port}/" in d.stderr() and token not in d.stderr()
    url = d.ctl("web", "url")
    assert url.returncode == 0 and url.stdout.strip() == f"http://127.0.0.1:{port}/#token={token}"
    assert d.ctl("web", "token").stdout.strip() == token
    assert d.ctl_json("web", "token") == {"token": token}
    status = d.ctl_json("daemon", "status")
    assert status["web"] == f"http://127.0.0.1:{port}/" and token not in str(status)

    async def use() -> None:
        endpoint = WebEndpoint(port, token)
        async with ws_client(endpoint) as c:
            assert await c.call("system.ping") == "pong"
            assert (await c.call("system.whoami"))["actor"] == "human"
        status, headers, _ = await http_request(port, get("/", port))
        assert status == 200 and "content-security-policy" in headers

    trio.run(use)
    assert d.stop() == 0
    assert not port_file.exists() and not token_file.exists()  # a stopped daemon leaves no stale token


def test_no_web_flag_and_config(web_dproc: DaemonProcess) -> None:
    d = web_dproc
    d.start("--no-web")
    _ready(d)
    assert not _files(d)[0].exists() and "web feed" not in d.stderr()
    off = d.ctl("web", "url")
    assert off.returncode == 1 and "the web feed is off" in off.stderr
    assert d.ctl_json("daemon", "status")["web"] is None
    assert d.stop() == 0
    _config(d, "[web]\nenabled = false\n")
    d.start()
    _ready(d)
    assert not _files(d)[0].exists()
    assert d.ctl("web", "token").returncode == 1
    assert d.stop() == 0


def test_port_taken_daemon_runs_without_web_and_logs_it(web_dproc: DaemonProcess) -> None:
    d = web_dproc
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        _config(d, f"[web]\nport = {port}\n")
        d.start()
        _ready(d)
        assert f"web feed off: cannot listen on 127.0.0.1:{port}" in d.stderr()
        assert d.ctl("ping").returncode == 0
        assert d.ctl("web", "url").returncode == 1
        assert not _files(d)[0].exists()
        assert d.stop() == 0
    finally:
        taken.close()


def test_bad_port_in_config_stops_startup(web_dproc: DaemonProcess) -> None:
    d = web_dproc
    _config(d, "[web]\nport = 70000\n")
    assert d.start().wait(timeout=20) == 2
    assert "web.port: must be between 0 and 65535, got 70000" in d.stderr()
