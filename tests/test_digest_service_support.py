"""Helpers for the live-digest tests: apps with short intervals, sessions inserted straight into the
store, synthetic transcript records, and the conftest event log read by topic."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson

from maestrod.app import App
from maestrod.config import Config, DigestSettings
from tests.conftest import EventLog, add_project, insert_session

HERE = Path(__file__).parent
TRANSCRIPTS = HERE / "data" / "transcripts"
FAILING = TRANSCRIPTS / "claude-2.1.328" / "print-mode-tools-and-errors.jsonl"

_seq = itertools.count(1)


def make_app(tmp: Path, **digest: Any) -> App:
    """An app whose tailers poll fast (tests that exercise the stat fallback) unless told otherwise."""
    import maestrod.handlers  # noqa: F401  (registers every handler)

    config = Config()
    config.digest = DigestSettings(**{"poll_interval": 0.05, "checkpoint_interval": 0.0, **digest})
    return App(tmp / "data", tmp / "d.sock", config)


def add_session(app: App, sid: str, transcript: Path | None = None, *, name: str | None = None,
                role: str = "worker", parent: str | None = None, status: str = "working",
                agent: str = "claude", token_hash: str | None = None) -> str:
    return insert_session(app, sid, add_project(app), name=name, role=role, parent=parent, status=status,
                          agent=agent, transcript=transcript, token_hash=token_hash)


def ts(second: float) -> str:
    whole = int(second)
    return f"2026-01-01T14:{whole // 60:02d}:{whole % 60:02d}.{int((second - whole) * 1000):03d}Z"


def record(kind: str, second: float, **fields: Any) -> bytes:
    body = {"type": kind, "uuid": f"u-{next(_seq)}", "isSidechain": False, "timestamp": ts(second),
            "sessionId": "c-1", **fields}
    return orjson.dumps(body) + b"\n"


def prompt(text: str, second: float = 0) -> bytes:
    return record("user", second, message={"role": "user", "content": text})


def say(text: str, second: float = 1) -> bytes:
    mid = f"m-{next(_seq)}"
    return record("assistant", second, requestId=f"r-{mid}", message={
        "id": mid, "model": "claude-sonnet-4-5", "role": "assistant", "content": [{"type": "text", "text": text}],
        "usage": {"input_tokens": 10, "output_tokens": 5}})


def bash(tool_id: str, command: str, output: str, failed: bool, second: float = 1) -> bytes:
    mid = f"m-{next(_seq)}"
    call = record("assistant", second, requestId=f"r-{mid}", message={
        "id": mid, "model": "claude-sonnet-4-5", "role": "assistant",
        "content": [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": {"command": command}}],
        "usage": {"input_tokens": 10, "output_tokens": 5}})
    result = record("user", second + 0.5, message={"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": tool_id, "content": output, "is_error": failed}]})
    return call + result


def failing_bash(n: int, start: float = 1) -> bytes:
    return b"".join(bash(f"tf{next(_seq)}", "npm test", "Exit code 1\nFAIL src/api.test.ts", True, start + i)
                    for i in range(n))


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def _about(event: dict[str, Any], topic: str, sid: str | None) -> bool:
    return event["topic"] == topic and (sid is None or event["data"].get("session_id") == sid)


class Events(EventLog):
    """The conftest event log, read by topic (and session): the events' ``data``."""

    def of(self, topic: str, sid: str | None = None) -> list[dict[str, Any]]:
        return [e["data"] for e in self.items if _about(e, topic, sid)]

    async def wait_data(self, topic: str, pred: Any = lambda d: True, *, sid: str | None = None,
                        timeout: float = 10.0, start: int = 0) -> dict[str, Any]:
        """The ``data`` of the first event from ``start`` on about ``topic`` (and ``sid``) that ``pred``
        accepts."""
        event = await self.wait_for(lambda e: _about(e, topic, sid) and pred(e["data"]), timeout, start)
        return event["data"]  # type: ignore[no-any-return]


def appended(events: Events, sid: str, mode: str = "tools") -> list[dict[str, Any]]:
    """Every entry announced as new for ``sid``, in order."""
    return [e for d in events.of("session.digest", sid) for e in d["appended"][mode]]
