"""The systemd units verify, the LaunchAgent parses and names the installed program."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    # `%h/.local/bin/maestrod` must exist for verify: point %h at a home holding the installed script.
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "maestrod").symlink_to(Path(sys.executable).parent / "maestrod")
    units = tmp_path / "units"
    units.mkdir()
    for name in ("maestrod.service", "maestrod.socket"):
        shutil.copy(REPO / "contrib" / "systemd" / name, units / name)
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(run))
    r = subprocess.run(["systemd-analyze", "--user", "verify", str(units / "maestrod.service"),
                        str(units / "maestrod.socket")], capture_output=True, text=True, env=env, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # Unknown keys and bad values are only warnings for systemd; for us they are failures.
    assert not [line for line in out.splitlines() if "maestrod." in line], out


def test_systemd_service_content() -> None:
    text = (REPO / "contrib" / "systemd" / "maestrod.service").read_text()
    assert "Type=notify" in text and "Restart=on-failure" in text
    # Agents outlive a crash of maestrod (docs/restart.md): only maestrod is signalled, one agent killed for
    # memory does not stop the unit, the PTY masters wait in the fd store, the agents find PATH and keys.
    for setting in ("KillMode=process", "OOMPolicy=continue", "FileDescriptorStoreMax=",
                    "EnvironmentFile=-%h/.config/maestro/env", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert setting in text, setting
    sock = (REPO / "contrib" / "systemd" / "maestrod.socket").read_text()
    assert "ListenStream=%t/maestro/maestrod.sock" in sock and "SocketMode=0600" in sock


def test_launchd_plist(tmp_path: Path) -> None:
    raw = (REPO / "contrib" / "launchd" / "com.maestro.maestrod.plist").read_bytes()
    plist = plistlib.loads(raw)
    assert plist["Label"] == "com.maestro.maestrod"
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    program = plist["ProgramArguments"][0]
    assert os.path.isabs(program) and program.endswith("/.local/bin/maestrod")
    for key in ("StandardOutPath", "StandardErrorPath"):
        assert os.path.isabs(plist[key])
    # After the README's install step (sed USERNAME -> the real home), the program exists.
    home = tmp_path / "Users" / "me"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "maestrod").symlink_to(Path(sys.executable).parent / "maestrod")
    installed = plistlib.loads(raw.replace(b"/Users/USERNAME", str(home).encode()))
    assert os.access(installed["ProgramArguments"][0], os.X_OK)
