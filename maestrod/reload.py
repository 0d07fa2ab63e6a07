"""``daemon.reload``: apply a config.toml read again, without touching any agent.

The services were given the config's section objects at start-up and read their settings when they use them,
so a new value is applied by updating those objects in place. A few settings are used once, at start-up; a
reload leaves them as they are and names them (``maestroctl daemon restart`` applies them, agents kept).
"""

from __future__ import annotations

from typing import Any

import attrs

from maestrod.app import App
from maestrod.config import Config

#: Settings used once at start-up, and why a reload cannot apply them.
NEEDS_RESTART = {
    "web.enabled": "the web feed is started or not at start-up",
    "web.port": "the web feed listens on its port until the daemon restarts",
    "digest.watcher": "the transcript watcher is chosen at start-up",
}
#: Settings applied to what starts after the reload, not to what runs.
NEW_ONLY = {
    "sessions.scrollback_bytes": "sessions spawned from now on; a running session keeps its scrollback",
    "claude.bin": "sessions spawned from now on",
    "claude.allowed_tools": "sessions spawned from now on",
    "claude.permission_mode": "sessions spawned from now on",
    "claude.extra_args": "sessions spawned from now on",
    "claude.autoupdate": "sessions spawned from now on",
    "connections.line_max_bytes": "connections opened from now on",
}


def apply_config(app: App, new: Config) -> dict[str, Any]:
    """Update ``app.config`` in place from ``new``: what changed, what applies to new things only, and
    what needs a restart (left as it was)."""
    changed: list[str] = []
    needs_restart: list[dict[str, str]] = []
    for section in attrs.fields(Config):
        current, wanted = getattr(app.config, section.name), getattr(new, section.name)
        for f in attrs.fields(type(current)):
            key = f"{section.name}.{f.name}"
            old, value = getattr(current, f.name), getattr(wanted, f.name)
            if old == value:
                continue
            if key in NEEDS_RESTART:
                needs_restart.append({"key": key, "why": NEEDS_RESTART[key], "running": _show(old),
                                      "configured": _show(value)})
                continue
            setattr(current, f.name, value)
            changed.append(key)
    # The few values a service copied at start-up.
    app.bus.retention = app.config.events.retention
    app.connections.input.limit = app.config.connections.input_total_bytes
    return {"changed": changed,
            "new_only": [{"key": k, "why": NEW_ONLY[k]} for k in changed if k in NEW_ONLY],
            "needs_restart": needs_restart}


def _show(value: Any) -> Any:
    return attrs.asdict(value) if attrs.has(type(value)) else value
