"""Where maestro keeps things, following the XDG base directory spec.

Both programs import this on start-up, so it only uses ``os``.
"""

from __future__ import annotations

import os

SOCKET_ENV = "MAESTRO_SOCKET"
SOCKET_NAME = "maestrod.sock"


def runtime_dir(env: os._Environ[str] | dict[str, str] | None = None) -> str:
    """``$XDG_RUNTIME_DIR/maestro``, or ``/tmp/maestro-$UID`` when there is no runtime dir."""
    env = os.environ if env is None else env
    base = env.get("XDG_RUNTIME_DIR")
    if base:
        return os.path.join(base, "maestro")
    return os.path.join("/tmp", f"maestro-{os.getuid()}")


def default_socket(env: os._Environ[str] | dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    override = env.get(SOCKET_ENV)
    if override:
        return override
    return os.path.join(runtime_dir(env), SOCKET_NAME)


def data_dir(env: os._Environ[str] | dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "maestro")


def config_dir(env: os._Environ[str] | dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "maestro")


def config_file(env: os._Environ[str] | dict[str, str] | None = None) -> str:
    return os.path.join(config_dir(env), "config.toml")


def claude_project_slug(cwd: str) -> str:
    """Claude Code's directory name for a working directory: every char outside [A-Za-z0-9] -> '-'."""
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in cwd)
