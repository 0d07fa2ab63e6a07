"""The daemon's state: the store, the event bus, the configuration, the services."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from maestrod.config import Config
from maestrod.events import EventBus
from maestrod.mail import Mail, install_hooks
from maestrod.mail.nudge import IdleNudger
from maestrod.sessions.hooks import HookExtensions
from maestrod.sessions.manager import SessionManager
from maestrod.store.db import Database
from maestrod.store.projects import ProjectStore
from maestrod.store.tasks import TaskStore
from maestrod.store.timeline import TimelineStore
from maestrod.transcripts.service import TranscriptService

log = logging.getLogger("maestrod")


class App:
    def __init__(self, data_dir: Path, socket_path: Path, config: Config | None = None) -> None:
        self.data_dir = data_dir
        self.socket_path = socket_path
        self.config = config or Config()
        #: Only this uid may connect (SO_PEERCRED); the socket's 0700 directory is the first fence.
        self.allowed_uid = os.getuid()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(data_dir / "maestro.db")
        self.bus = EventBus(self.db, retention=self.config.events.retention)
        self.projects = ProjectStore(self.db)
        self.tasks = TaskStore(self.db)
        self.timeline = TimelineStore(self.db)
        #: token -> session id; filled by the session service.
        self.token_lookup: Callable[[str], str | None] = lambda token: None
        #: Background services (session supervisor, tailers...) started with the server.
        self.services: list[Callable[..., Awaitable[None]]] = []
        #: Awaited (bounded in time) on SIGTERM before the nursery is cancelled.
        self.shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        self.started_at = time.monotonic()
        #: Set on SIGTERM/SIGINT: new requests get -32006 while services stop their children.
        self.shutting_down = trio.Event()
        #: What later modules plug into Claude Code hooks (context providers, stop deciders).
        self.hook_extensions = HookExtensions()
        #: Sessions: agents in PTYs the daemon owns (sets token_lookup, adds a service + shutdown hook).
        self.sessions = SessionManager(self)
        #: Transcripts: per-session digests, escalation, coordinator context (after `sessions`: it
        #: follows their events and plugs into `hook_extensions`).
        self.transcripts = TranscriptService(self)
        #: Mail: the mailbox service; its Stop-hook wake-up (block while urgent mail is unread, capped)
        #: and the turn-start reset are plugged into `hook_extensions`.
        self.mail = Mail(self)
        install_hooks(self)
        #: Urgent mail for an agent that is already idle: a short `system` prompt (one per burst).
        self.mail_nudger = IdleNudger(self)

    def record(self, actor: str, subject_kind: str, subject_id: str, type_: str,
               data: dict[str, Any] | None = None, *, topic: str | None = None,
               event: dict[str, Any] | None = None) -> None:
        """Append an audit row and publish the matching event, in one transaction."""
        with self.db.transaction():
            self.timeline.append(actor, subject_kind, subject_id, type_, data)
            self.bus.publish(topic or type_, event if event is not None else
                             {"actor": actor, f"{subject_kind}_id": subject_id, **(data or {})})

    def close(self) -> None:
        self.db.close()
