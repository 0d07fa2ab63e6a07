"""The installed `maestroctl` is bin/maestroctl (a script the installer gives the environment's shebang), not
pip's console-script wrapper: that one imports `re` (pip 23, what Python 3.11's venv bundles), ~4.5 ms of
every agent's call. Checked on the copy installed beside this interpreter, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import MAESTROCTL, REPO


def _body(path: Path) -> list[str]:
    """The script without its shebang (the installer rewrites that line)."""
    return path.read_text().splitlines()[1:]


def test_pyproject_ships_the_launcher_not_a_console_script() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "maestroctl" not in project["project"]["scripts"], "a console script would replace the launcher"
    shared = project["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-scripts"]
    assert shared == {"bin/maestroctl": "maestroctl"}


def test_installed_maestroctl_is_the_launcher() -> None:
    installed = Path(MAESTROCTL)
    first = installed.read_text().splitlines()[0]
    assert first.startswith("#!") and "python" in first, first
    assert _body(installed) == _body(REPO / "bin" / "maestroctl"), (
        f"{installed} is not bin/maestroctl: reinstall with `pip install -e .`")


def test_installed_launcher_imports_no_re(short_tmp: Path) -> None:
    # -X importtime lists every module the launcher loads, down to the socket error it ends with.
    proc = subprocess.run([sys.executable, "-X", "importtime", MAESTROCTL, "--socket", str(short_tmp / "none"),
                           "--json", "task", "list", "--project", "P"], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr  # unreachable: the whole start-up path ran
    loaded = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
              if line.startswith("import time:") and "|" in line}
    assert "maestroctl.client" in loaded and "maestroctl.main" in loaded
    assert not loaded & {"re", "enum", "typing", "json", "argparse", "socket"}, sorted(loaded)


def test_launcher_runs_as_a_user_runs_it(short_tmp: Path) -> None:
    # exec'd through its shebang, from another directory, without the venv activated
    proc = subprocess.run([MAESTROCTL, "--socket", str(short_tmp / "none"), "ping"], capture_output=True,
                          text=True, cwd=short_tmp, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 3 and "cannot reach maestrod" in proc.stderr, proc.stderr
