"""The daemon's state: the store, the event bus, the configuration, the services."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from maestrod.config import Config
from maestrod.connections import Connections
from maestrod.control import Control
from maestrod.events import EventBus
from maestrod.identity import PeerIdentity
from maestrod.lifecycle import ShuttingDown
from maestrod.mail import Mail, install_hooks
from maestrod.policy import ProjectScope
from maestrod.mail.nudge import IdleNudger
from maestrod.notify import Notifier
from maestrod.recorder import Recorder
from maestrod.scheduler.governor import Governor
from maestrod.scheduler.handoff import Handoffs
from maestrod.scheduler.resources import ProcessTrees
from maestrod.scheduler.runner import Runner
from maestrod.scheduler.store import RunStore
from maestrod.sessions.hooks import HookExtensions
from maestrod.sessions.manager import SessionManager
from maestrod.sessions.prompts import SYSTEM
from maestrod.sessions.store import SessionStore
from maestrod.store.db import Database
from maestrod.store.projects import ProjectStore
from maestrod.store.tasks import TaskStore
from maestrod.store.timeline import TimelineStore
from maestrod.transcripts.service import TranscriptService
from maestrod.web.endpoint import WebEndpoint
from maestrod.worktrees.service import WorktreeService
from maestrod.worktrees.store import WorktreeStore
from shared.convert import unstructure
from shared.digest.render import render_text
from shared.messages.session import Session, SessionSpawn

log = logging.getLogger("maestrod")


class App:
    def __init__(self, data_dir: Path, socket_path: Path, config: Config | None = None, *,
                 screens_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self.socket_path = socket_path
        self.config = config or Config()
        #: Only this uid may connect (SO_PEERCRED); the socket's 0700 directory is the first fence.
        self.allowed_uid = os.getuid()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(data_dir / "maestro.db")
        self.bus = EventBus(self.db, retention=self.config.events.retention)
        #: The client connections together: counts, and the input they buffer against
        #: `[connections] input_total_bytes`.
        self.connections = Connections(self.config.connections.input_total_bytes)
        self.projects = ProjectStore(self.db)
        self.tasks = TaskStore(self.db)
        self.timeline = TimelineStore(self.db)
        #: The timeline's one writer (a row and its event in one transaction), given to every store.
        self.recorder = Recorder(self.db, self.timeline, self.bus)
        #: The only owner of the session tables.
        self.session_store = SessionStore(self.db, self.recorder)
        #: What services plug into Claude Code hooks (context providers, stop deciders, listeners).
        self.hook_extensions = HookExtensions()
        #: token -> session id; filled by the session service.
        self.token_lookup: Callable[[str], str | None] = lambda token: None
        #: Background services (session supervisor, tailers...) started with the server.
        self.services: list[Callable[..., Awaitable[None]]] = []
        #: Awaited (bounded in time) on SIGTERM before the nursery is cancelled.
        self.shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        self.started_at = time.monotonic()
        #: The web feed's port and token while it listens (set by ``maestrod.web.feed``); None when off.
        self.web: WebEndpoint | None = None
        #: Set on SIGTERM/SIGINT (and for a graceful restart): new requests get -32006 while services stop
        #: their children (or hand them over). One object for the daemon's life: cleared if a restart's exec
        #: fails, and every service holding it sees that.
        self.shutting_down = ShuttingDown()
        #: Restart in place, reload, stop (``daemon.*``); set by ``maestrod.main`` (None: not available).
        self.control: Control | None = None
        #: An agent acts within its own project unless `[policy]` grants more (tasks, projects, mail, spawns).
        self.project_scope = ProjectScope(self.config.policy, self.session_store, self.projects)
        #: Mail: the mailbox service; its Stop-hook wake-up (block while urgent mail is unread, capped)
        #: and the turn-start reset are plugged into `hook_extensions`.
        self.mail = Mail(self.db, self.recorder, self.bus, self.session_store, self.config.mail)
        #: Sessions: agents in PTYs the daemon owns.
        self.sessions = SessionManager(
            self.session_store, bus=self.bus, projects=self.projects, tasks=self.tasks, mail=self.mail,
            hooks=self.hook_extensions, config=self.config.sessions, claude=self.config.claude,
            data_dir=data_dir, socket_path=socket_path, screens_dir=screens_dir, codex=self.config.codex)
        self.token_lookup = self.sessions.token_lookup
        #: Peer pid -> the agent session whose process tree it is in (a connection from there is that agent).
        self.identity = PeerIdentity(self.sessions.process_roots, self._session_status)
        self.bus.add_listener(self.identity.on_event)
        self.services.append(self.sessions.run)
        self.shutdown_hooks.append(self.sessions.shutdown)
        #: Transcripts: per-session digests, escalation, coordinator context (after `sessions`: it
        #: follows their events and plugs into `hook_extensions`).
        self.transcripts = TranscriptService(
            self.db, self.session_store, self.recorder, self.bus, self.hook_extensions, self.tasks,
            self.config.digest, self.config.context, self.sessions.transcript_state,
            transcript_prompt=self.sessions.transcript_prompt)
        self.services.append(self.transcripts.run)
        self.shutdown_hooks.append(self.transcripts.shutdown)
        #: Mail's Stop-hook wake-up (block while urgent mail is unread, capped) and the turn-start reset.
        install_hooks(self.hook_extensions, self.mail)
        #: Worktrees: `spawn --worktree`; their state is read again after the agent's edits.
        self.worktrees = WorktreeService(WorktreeStore(self.db), self.session_store, self.projects, self.recorder,
                                         self.config.worktree, data_dir)
        self.services.append(self.worktrees.run)
        self.hook_extensions.add_listener("PostToolUse", self.worktrees.after_tool)
        self.transcripts.context.branch_note = self.worktrees.note
        #: Urgent mail for an agent that is already idle: a short `system` prompt (one per burst).
        self.mail_nudger = IdleNudger(self.mail, self.bus, self.session_store, self.sessions)
        self.services.append(self.mail_nudger.run)
        #: Notifications: the person's `[notify] command` when a session needs them (its own task and queue).
        self.notifier = Notifier(self.config.notify, self.bus, self.session_store, self.projects)
        self.services.append(self.notifier.run)
        #: Task runs (`task run`, issue 13): drain a project's ready tasks with at most N worker sessions.
        self.run_store = RunStore(self.db, data_dir / "runs")
        self.runner = Runner(
            self.run_store, self.tasks, self.projects, self.session_store, self.recorder,
            spawn=self._spawn_worker, stop=lambda sid: self.sessions.stop(sid, SYSTEM, wait=False),
            prompt=lambda sid, text: self.sessions.prompt(sid, text, "send", False, SYSTEM),
            shutting_down=self.shutting_down)
        self.bus.add_listener(self.runner.on_event)
        self.services.append(self.runner.run)
        #: The governor (`[governor]`): a spawn waits (queued) while live agents or memory leave no room; idle
        #: Claude sessions are hibernated, oldest idle first, to make room.
        self.process_trees = ProcessTrees()
        self.governor = Governor(self.config.governor, self.session_store, self.tasks, self.sessions.sessions,
                                 lambda sid: self.sessions.hibernate(sid, SYSTEM), self.process_trees)
        self.sessions.admission = self.governor
        self.bus.add_listener(self.governor.on_event)
        self.services.append(self.governor.run)
        #: Context hand-off (`[handoff]`): a run worker near its model's context window checkpoints, is
        #: hibernated, and a successor takes its task over (its mail follows).
        self.handoffs = Handoffs(
            self.config.handoff, self.session_store, data_dir, assignment_of=self.runner.assignment_of,
            successor=self.runner.successor,
            prompt=lambda sid, text: self.sessions.prompt(sid, text, "send", False, SYSTEM),
            hibernate=lambda sid: self.sessions.hibernate(sid, SYSTEM), digest_text=self._digest_text,
            forward_mail=self.mail.copy_unread, task_of=lambda tid: unstructure(self.tasks.get(tid)))
        self.handoffs.active = self.runner.handing_off
        self.runner.context_of = self.handoffs.context_of
        self.mail.forward_to = self.run_store.successor_of
        self.bus.add_listener(self.handoffs.on_event)
        self.services.append(self.handoffs.run)

    def record(self, actor: str, subject_kind: str, subject_id: str, type_: str,
               data: dict[str, Any] | None = None, *, topic: str | None = None,
               event: dict[str, Any] | None = None) -> None:
        """Append an audit row and publish the matching event, in one transaction."""
        self.recorder.record(actor, subject_kind, subject_id, type_, data, topic=topic, event=event)

    def _digest_text(self, sid: str) -> str:
        """A session's latest digest steps as text (a hand-off's seed)."""
        digest = self.transcripts.digest(sid)
        return "" if digest is None else render_text(digest.window("tools", 40))

    async def _spawn_worker(self, p: SessionSpawn) -> Session:
        """A run's worker, spawned by the daemon itself (the run's starter was checked when it started)."""
        if p.worktree or p.worktree_of is not None:
            async def start(q: SessionSpawn) -> Session:
                return await self.sessions.spawn(q, SYSTEM, None)

            return await self.worktrees.spawn(p, start, SYSTEM)
        return await self.sessions.spawn(p, SYSTEM, None)

    def _session_status(self, sid: str) -> str | None:
        row = self.session_store.find(sid)
        return None if row is None else str(row["status"])

    def close(self) -> None:
        self.db.close()
