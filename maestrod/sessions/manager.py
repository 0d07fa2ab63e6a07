"""SessionManager: the front of the session service -- spawn, status, hooks, input, stop -- over its rooms.

One instance per daemon (``app.sessions``), wired at start-up with what it uses. The rooms, each with one
reason to change:

* :mod:`~maestrod.sessions.store` -- the session tables (the only code that touches them);
* :mod:`~maestrod.sessions.status` -- the pure status machine (four witnesses in, a decision out);
* :mod:`~maestrod.sessions.screen` / :mod:`~maestrod.sessions.screens` -- the screen witness and its rules;
* :mod:`~maestrod.sessions.terminal_io` -- bytes in and out of the PTY;
* :mod:`~maestrod.sessions.prompts` -- the prompt queue and the input gate;
* :mod:`~maestrod.sessions.attach`, :mod:`~maestrod.sessions.waits` -- viewers and ``session.wait``;
* :mod:`~maestrod.sessions.launch` -- what a process is started with.

Each live session has one task group inside the manager's nursery (reader, exit watcher, screen witness,
prompt delivery), so nothing a session does blocks the loop or another session. Every witness's
observation goes into the session's :class:`~maestrod.sessions.status.StatusMachine`; :meth:`_apply`
writes what it decides (status, attention) through the store, which records a timeline row and an event.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import trio

from maestrod.config import ClaudeConfig, CodexConfig, SessionsConfig
from maestrod.events import EventBus
from maestrod.identity import ProcessRoot
from maestrod.service import sd_notify
from maestrod.sessions import adopt, codex, resume, terminal_io
from maestrod.sessions.attach import Attachments, Peer
from maestrod.sessions.hook_intake import HookIntake
from maestrod.sessions.hooks import HookExtensions
from maestrod.sessions.live import LiveSession
from maestrod.sessions.prompts import SYSTEM, PromptDesk
from maestrod.sessions.pty import PtyProcess
from maestrod.sessions.screen import ScreenObservation, ScreenWatch
from maestrod.sessions.screen_feed import ScreenFeeds, frame
from maestrod.sessions.screens import RuleTables
from maestrod.sessions.spawn import DirectiveMail, Prepared, Spawner
from maestrod.sessions.status import (AGENT_KINDS, Decision, Gate, HookSeen, Observation, PersonTyped,
                                      ProcessExited, ProcessStarted, ScreenSeen, TranscriptSeen)
from maestrod.sessions.store import LiveFacts, SessionStore, token_hash
from maestrod.sessions.waits import SessionWaits
from maestrod.store.projects import ProjectStore
from maestrod.store.tasks import TaskStore
from shared import errors
from shared.messages.session import Session, SessionList, SessionSpawn

log = logging.getLogger("maestrod.sessions")

#: After the process exits, wait this long at most for the rest of its output (EIO).
EXIT_DRAIN = 0.25
#: Exited sessions whose screen and scrollback stay in memory.
KEEP_EXITED = 64
#: How often, at most, the screen witness renders a busy session's screen.
SCREEN_RATE_HZ = 4.0
#: Seconds between looks for a Codex session's rollout file that no hook has named yet.
ROLLOUT_POLL = 1.0


class Admission(Protocol):
    """What spawning and waking ask of the governor (maestrod/scheduler/governor.py)."""

    def hold(self, sid: str, *, wake: bool = False) -> str | None: ...

    def reserve(self, sid: str) -> None: ...

    def enqueue(self, sid: str, role: str, task_ids: Sequence[str], why: str,
                launch: Callable[[], Awaitable[Any]], *, wake: bool = False) -> None: ...

    def cancel(self, sid: str, actor: str) -> bool: ...

    def why(self, sid: str) -> str | None: ...


class SessionManager:
    def __init__(self, store: SessionStore, *, bus: EventBus, projects: ProjectStore, tasks: TaskStore,
                 mail: DirectiveMail, hooks: HookExtensions, config: SessionsConfig, claude: ClaudeConfig,
                 data_dir: Path, socket_path: Path, screens_dir: Path | None = None,
                 codex: CodexConfig | None = None) -> None:
        self.store = store
        self.projects = projects
        self.hooks = hooks
        self.config = config
        self.sessions: dict[str, LiveSession] = {}
        self._exited_order: deque[str] = deque()
        self._nursery: trio.Nursery | None = None
        #: Screen rules per agent kind (a broken override stops the daemon at start-up; built-in tables are
        #: parsed when first used).
        self.screen_rules = RuleTables([kind for kind, spec in AGENT_KINDS.items() if spec.screen_rules],
                                       screens_dir)
        self.waits = SessionWaits(store, self.sessions.get)
        self.prompts = PromptDesk(store, config, self._gate, self.waits.wake)
        self.attachments = Attachments(store, self._fresh_screen)
        self.screen_feeds = ScreenFeeds(self._fresh_screen, lambda s: s.status)
        self.hook_intake = HookIntake(store, hooks, self._hook_seen, self._hook_prompt, data_dir)
        self.spawner = Spawner(store, projects, tasks, mail, claude, data_dir, socket_path, self.prompts.check_text,
                               codex)
        bus.add_listener(self.waits.on_event)
        #: Set before :meth:`run` by a daemon started from a graceful restart: its predecessor's live
        #: sessions (``maestrod.handoff``) and their scrollbacks, to adopt.
        self.handed_over: list[dict[str, Any]] = []
        self.handed_scrollback = memoryview(b"")
        #: Seconds between the predecessor writing that state and this daemon reading it.
        self.handoff_gap = 0.0
        #: PTY masters systemd's file descriptor store gave back after a crash, by FDNAME.
        self.fd_store: dict[str, int] = {}
        #: The locks a graceful restart holds so that nothing is typed half-way (see :meth:`quiesce`).
        self._quiesced: list[trio.Lock] = []
        self.data_dir = data_dir
        self.socket_path = socket_path
        self.claude = claude
        self.codex = codex or CodexConfig()
        #: Sessions being relaunched (``--resume``): a prompt or a wake for one waits for this.
        self._waking: dict[str, trio.Event] = {}
        #: Sessions being hibernated: their process's exit parks them instead of ending them.
        self._hibernating: set[str] = set()
        #: The daemon is stopping: an agent session's process exit is a suspension (resumed at next start).
        self._suspending = False
        #: The attention reason written for a session resumed with its last turn cut off (cleared by a prompt).
        self._cut_off: dict[str, str] = {}
        #: The governor (``[governor]``, maestrod/scheduler/governor.py), set by the app: it may hold a spawn
        #: back (``queued``) until there is room. None: every spawn starts at once.
        self.admission: Admission | None = None

    # -- service lifecycle ------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                # Live sessions first (handed over, or kept by systemd): recovery then sees only the rest.
                self._adopt()
                self.recover()
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self._kill_all()

    def _adopt(self) -> None:
        now = trio.current_time()
        for state in self.handed_over:
            try:
                live = adopt.restore(state, self.handed_scrollback, now - self.handoff_gap)
            except OSError as exc:
                log.warning("session %s: not adopted (%s); recovery decides", state["id"], exc)
                _close_fd(int(state["fd"]))
                continue
            if state.get("hibernating"):  # its stop goes on below, and ends it hibernated
                self._hibernating.add(live.id)
            self._start_adopted(live)
        self.handed_over = []
        self.handed_scrollback = memoryview(b"")  # the predecessor's memfd mapping goes with the last view
        for r in self.store.unfinished() if self.fd_store else ():
            prefix = f"pty.{r['id']}."
            for name in [n for n in self.fd_store if n.startswith(prefix)]:
                fd = self.fd_store.pop(name)
                found = adopt.from_fd_store(r, fd, name, self.config.scrollback_bytes, now)
                if found is None:
                    log.warning("session %s: its process is not the one whose terminal systemd kept (%s)",
                                r["id"], name)
                    _close_fd(fd)
                    sd_notify(f"FDSTOREREMOVE=1\nFDNAME={name}")
                    continue
                log.info("session %s: terminal adopted from systemd's file descriptor store (pid %d)",
                         r["id"], found.pty.pid)
                self._start_adopted(found)
                self.store.record(SYSTEM, r["id"], "session.adopted",
                                  {"pid": found.pty.pid, "how": "fd_store",
                                   "reason": "the daemon restarted after a crash; systemd kept the terminal"})
                # Its screen is not known: a size change makes a full-screen program draw it again.
                term = found.terminal
                found.pty.resize(max(1, term.rows - 1), term.cols)
                found.pty.resize(term.rows, term.cols)
        for name, fd in self.fd_store.items():  # sessions that ended meanwhile
            _close_fd(fd)
            sd_notify(f"FDSTOREREMOVE=1\nFDNAME={name}")
        self.fd_store = {}

    def _start_adopted(self, live: LiveSession) -> None:
        self.sessions[live.id] = live
        watch = ScreenWatch(live.terminal, self.screen_rules.get(live.kind.name),
                            lambda obs: self._on_screen(live, obs), max_rate_hz=SCREEN_RATE_HZ)
        live.screen_watch = watch
        assert self._nursery is not None
        self._nursery.start_soon(self._run_session, live, watch)
        if live.stopping:  # a stop was under way: it goes on (HUP/TERM/KILL again from the start)
            self._nursery.start_soon(self._stop_sequence, live)

    async def quiesce(self, timeout: float) -> None:
        """Before a graceful restart: wait until no prompt or keystroke is being typed, and keep it so
        (the locks stay held until the exec, or :meth:`thaw`)."""
        with trio.move_on_after(timeout):
            for s in list(self.sessions.values()):
                if s.is_exited:
                    continue
                for lock in (s.prompt_lock, s.write_lock):
                    try:
                        # Free (the usual case): taken without a turn of the loop each, which for 50 sessions
                        # was ~2 ms of the restart's pause.
                        lock.acquire_nowait()
                    except trio.WouldBlock:
                        await lock.acquire()
                    self._quiesced.append(lock)

    def thaw(self) -> None:
        """A graceful restart was abandoned: typing may go on."""
        for lock in self._quiesced:
            lock.release()
        self._quiesced = []

    def hand_over(self, now: float, scrollback_out: bytearray) -> list[dict[str, Any]]:
        """Every live session's state for the next daemon (``maestrod.handoff``); their PTY masters must
        stay open across the exec (the caller makes them inheritable)."""
        return [{**adopt.snapshot(s, now, scrollback_out), "hibernating": s.id in self._hibernating}
                for s in self.sessions.values() if not s.is_exited]

    def recover(self) -> None:
        """What a previous daemon left live and nobody adopted (its terminal did not come back): a Claude
        session is relaunched resuming its conversation once its old process is gone (``[sessions]
        auto_resume``), a Codex session likewise (``codex resume``); any other ends ``exited`` (``lost``).
        A hibernated session stays so (no process). A start the previous daemon's governor held back
        (``queued``: a spawn that never started, or a wake) waits for room again, in its place in the queue."""
        queued = []
        for r in self.store.unfinished():
            if r["id"] in self.sessions or r["status"] == "hibernated":
                continue
            if r["status"] == "queued":
                queued.append(r)
                continue
            if self.config.auto_resume and resume.resumable(r):
                self._resume_lost(r)
                continue
            alive = pid_alive(r["pid"])
            if alive:
                log.warning("session %s: pid %s still exists but its terminal was lost with the previous "
                            "daemon; it is recorded as lost", r["id"], r["pid"])
            self.store.write_status(r["id"], r["status"], "exited", SYSTEM,
                                    {"exit_reason": "lost", "exit_code": None, "pid_alive": alive,
                                     "source": "daemon", "reason": "its terminal was lost with the previous daemon"})
        order = self.store.queued_order([r["id"] for r in queued])
        for r in sorted(queued, key=lambda r: order.get(r["id"], 0)):
            self._requeue(r)

    def _requeue(self, r: Any) -> None:
        """A start that waited for room when the previous daemon ended: it waits again, and is started from
        what the store keeps (the argv, the cwd, ``spawn-env.json``, the system prompt file) with a fresh
        token -- a wake resumes its conversation; a spawn that never started starts afresh."""
        sid = r["id"]
        wake = r["pid"] is not None  # it ran before: hibernated, then queued to wake
        why = ("its wake waited for room when the previous daemon ended" if wake
               else "it waited for room when the previous daemon ended")
        self.store.set_token(sid, None)

        async def start() -> None:
            done = trio.Event()
            self._waking[sid] = done
            try:
                await self._relaunch(sid, SYSTEM, why, cut_off=None, record=wake)
            except errors.RpcError as exc:  # e.g. its program is gone: it ends with why, never stuck starting
                row = self.store.find(sid)
                if row is not None and row["status"] != "exited":
                    self.store.write_status(sid, row["status"], "exited", SYSTEM, {
                        "exit_reason": "failed", "exit_code": None, "source": "daemon",
                        "reason": f"could not start: {exc.message}"})
                raise
            finally:
                if self._waking.get(sid) is done:
                    del self._waking[sid]
                done.set()
            if r["agent"] == "command":
                (self.data_dir / "sessions" / sid / resume.SPAWN_ENV_FILE).unlink(missing_ok=True)

        if self.admission is None:
            assert self._nursery is not None
            self.store.write_status(sid, "queued", "spawning", SYSTEM, {"source": "daemon", "reason": why})
            self._nursery.start_soon(start)
            return
        self.admission.enqueue(sid, r["role"], self.store.task_ids(sid), f"{why}; waiting for room again", start,
                               wake=wake)

    async def shutdown(self) -> None:
        """Daemon stopping (SIGTERM): stop every live session (HUP, TERM, KILL), concurrently. With
        ``auto_resume``, a Claude or Codex session is suspended rather than ended: it keeps its status and identity
        and is resumed when the daemon starts again."""
        self._suspending = self.config.auto_resume
        live = [s for s in self.sessions.values() if not s.is_exited]
        async with trio.open_nursery() as nursery:
            for s in live:
                s.stop_requested = s.stop_requested or SYSTEM
                nursery.start_soon(self._stop_sequence, s)

    async def _kill_all(self) -> None:
        for s in list(self.sessions.values()):
            if s.is_exited:
                continue
            s.stop_requested = s.stop_requested or SYSTEM
            s.pty.kill()
            with trio.move_on_after(1):
                await s.pty.wait()
            s.pty.close()
            try:
                self._finish(s, s.pty.returncode)
            except Exception:  # the store may already be closed
                log.info("session %s killed at shutdown; not recorded (store closed)", s.id)

    # -- reads ------------------------------------------------------------------------------------

    def token_lookup(self, token: str) -> str | None:
        return self.store.token_lookup(token)

    def process_roots(self) -> list[ProcessRoot]:
        """Each session's first process, for :class:`~maestrod.identity.PeerIdentity` (live sessions and the
        exited ones still in memory)."""
        return [ProcessRoot(s.id, s.pty.pid, not s.is_exited) for s in self.sessions.values()]

    def resolve(self, ident: str) -> str:
        return self.store.resolve(ident)

    def _facts(self, sid: str) -> LiveFacts:
        live = self.sessions.get(sid)
        if live is None:
            return LiveFacts()
        return LiveFacts(viewers=len(live.viewers), bracketed_paste=live.terminal.bracketed_paste)

    def get(self, sid: str) -> Session:
        return self.store.get(sid, self._facts)

    def list(self, p: SessionList, caller: str | None) -> list[Session]:
        ids: list[str] | None = None
        if p.my_workers or p.siblings:
            if caller is None:
                flag = "--my-workers" if p.my_workers else "--siblings"
                raise errors.invalid_params([f"{flag} is relative to the calling session: call it from inside "
                                             "a session (with MAESTRO_SESSION_TOKEN)"])
            if p.siblings:
                ids = self.store.siblings(caller)
        rows = self.store.select(
            project_id=self.projects.resolve(p.project) if p.project else None, statuses=p.status or (),
            active=p.active, parent_id=caller if p.my_workers else (self.resolve(p.parent) if p.parent else None),
            ids=ids)
        if p.my_workers and p.parent:
            rows = [r for r in rows if r["parent_id"] == self.resolve(p.parent)]
        return self.store.build(rows, self._facts)

    def _live(self, sid: str, what: str) -> LiveSession:
        s = self.sessions.get(sid)
        if s is None:
            self.store.row(sid)  # not found -> NOT_FOUND
            if sid in self._waking:
                raise errors.conflict(f"session {sid} is being resumed (its process is starting); cannot {what} "
                                      "yet: try again in a moment", {"session": sid, "status": "spawning"})
            raise errors.conflict(f"session {sid} has no terminal in this daemon (it exited before the daemon "
                                  f"started); cannot {what}", {"session": sid})
        return s

    def _running(self, sid: str, what: str) -> LiveSession:
        s = self.sessions.get(sid)
        if (s is None or s.is_exited) and self.store.row(sid)["status"] == "hibernated":
            raise errors.conflict(f"session {sid} is hibernated; cannot {what} (wake it first: `maestroctl session "
                                  f"wake {sid}`, or prompt it)", {"session": sid, "status": "hibernated"})
        s = self._live(sid, what)
        if s.is_exited:
            raise errors.conflict(f"session {sid} has exited; cannot {what}", {"session": sid, "status": "exited"})
        return s

    async def screen(self, sid: str) -> dict[str, Any]:
        s = self.sessions.get(sid)
        if s is None:
            r = self.store.row(sid)
            return {"id": sid, "status": r["status"], "rows": r["rows"], "cols": r["cols"], "lines": [],
                    "text": "", "cursor": {"row": 0, "col": 0}, "bracketed_paste": False, "offset": 0,
                    "note": "no screen: the session exited before this daemon started"}
        obs = await self._fresh_screen(s)
        term = s.terminal
        y, x = term.cursor
        return {"id": sid, "status": s.status, "rows": term.rows, "cols": term.cols, "lines": term.lines(),
                "text": term.text(), "cursor": {"row": y, "col": x}, "bracketed_paste": term.bracketed_paste,
                "offset": s.scrollback.total,
                "recognised": None if obs is None else {"kind": obs.kind, "rule": obs.rule, "reason": obs.reason}}

    async def screen_model(self, sid: str) -> dict[str, Any]:
        """The screen as styled runs with the cursor (``session.screen_model``), brought up to date first."""
        s = self._live(sid, "show its screen")
        await self._fresh_screen(s)
        return frame(s, s.status)

    async def watch_screen(self, peer: Peer, sid: str, max_rate: float) -> dict[str, Any]:
        return await self.screen_feeds.watch(peer, self._live(sid, "watch its screen"), max_rate)

    def unwatch_screen(self, peer: Peer, sid: str) -> int:
        return self.screen_feeds.unwatch(peer, sid)

    def output(self, sid: str, offset: int, limit: int) -> dict[str, Any]:
        if offset < 0:
            raise errors.invalid_params([f"offset: must be >= 0, got {offset}"])
        if not 1 <= limit <= 1024 * 1024:
            raise errors.invalid_params([f"limit: must be between 1 and 1048576, got {limit}"])
        s = self._live(sid, "read its output")
        got, data = s.scrollback.read(offset, limit)
        return {"id": sid, "offset": got, "next_offset": got + len(data), "total": s.scrollback.total,
                "start": s.scrollback.start, "truncated": got > offset, "data": base64.b64encode(data).decode()}

    def explain(self, sid: str) -> dict[str, Any]:
        """The status, the witness that decided it, every witness's latest observation with its age, the
        screen rule that matched, and whether a prompt may be typed now."""
        row = self.store.row(sid)
        s = self.sessions.get(sid)
        base: dict[str, Any] = {"id": sid, "name": row["name"], "agent": row["agent"], "status": row["status"],
                                "needs_attention": row["needs_attention"],
                                "queued_prompts": self.store.queued_count(sid)}
        rules = self.screen_rules.get(row["agent"])
        base["screen_rules"] = None if rules is None else f"{rules.agent} v{rules.version} ({', '.join(rules.sources)})"
        queued = self.admission.why(sid) if self.admission is not None else None
        if queued is not None:
            return {**base, "reason": f"waiting for room: {queued}", "source": "daemon", "witness": "governor",
                    "attention_source": None, "gate": {"open": False, "reason": "the session is queued"},
                    "witnesses": {}, "held": None}
        if s is None:
            return {**base, "reason": "no terminal in this daemon: the session exited before it started",
                    "source": "daemon", "witness": "daemon", "attention_source": None,
                    "gate": {"open": False, "reason": "the session has no terminal in this daemon"},
                    "witnesses": {}, "held": None}
        now = trio.current_time()
        d = s.decision
        gate = s.machine.input_gate(now)
        return {**base, "reason": d.reason, "source": d.source, "witness": d.witness,
                "attention_source": d.attention_source, "gate": {"open": gate.open, "reason": gate.reason},
                "witnesses": s.machine.evidence(now), "held": s.held}

    # -- spawning ---------------------------------------------------------------------------------

    async def spawn(self, p: SessionSpawn, actor: str, caller: str | None) -> Session:
        """Start a session. ``caller`` is the session bound to the request's token (None: the human):
        it becomes the parent unless ``p.parent`` names one, and only a coordinator may spawn."""
        if self._nursery is None:
            raise errors.RpcError(errors.UNAVAILABLE, "the session service is not running")
        ready = self.spawner.prepare(p, actor, caller)
        if self.admission is not None:
            sid = ready.session_id
            why = self.admission.hold(sid)
            if why is not None:  # no room now: it starts when the governor has room for it
                if p.agent == "command":
                    # The next daemon starts it from the store if this one goes first (see recover); the
                    # spawn's --env is kept as a resumable session's is (an agent's is saved already).
                    resume.save_spawn_env(self.data_dir / "sessions" / sid, p.env)
                self.store.write_status(sid, "spawning", "queued", SYSTEM,
                                        {"source": "daemon", "reason": f"waiting for room: {why}"})
                self.admission.enqueue(sid, p.role, self.store.task_ids(sid), why, lambda: self._launch(ready, p))
                return self.get(sid)
        return await self._launch(ready, p)

    async def _launch(self, ready: Prepared, p: SessionSpawn) -> Session:
        """Start the process of a prepared spawn (at once, or when the governor admits it)."""
        sid, argv = ready.session_id, ready.argv
        # The row exists from here on: whatever fails before the session's task runs ends it exited (failed)
        # with the reason, never stuck in `spawning`.
        pty: PtyProcess | None = None
        try:
            pty = await PtyProcess.spawn(ready.exec_argv, cwd=ready.cwd, env=ready.env, rows=p.rows, cols=p.cols)
            live = self._started(sid, p.agent, pty, p.rows, p.cols)
            log.info("session %s (%s) started: pid %d, %s", sid, p.name, pty.pid, argv[0])
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                await self._spawn_failed(sid, pty, exc)
            if isinstance(exc, Exception):
                raise errors.RpcError(
                    errors.UNAVAILABLE, f"could not start {argv[0]}: {_describe(exc)} (session {sid} is exited: "
                    "failed)", {"session": sid}) from None
            raise
        if p.agent == "command":  # kept only while it waited for room: nothing relaunches a command
            (self.data_dir / "sessions" / sid / resume.SPAWN_ENV_FILE).unlink(missing_ok=True)
        self._observe(live, ProcessStarted(trio.current_time()), SYSTEM)
        return self.get(sid)

    def _started(self, sid: str, agent: str, pty: PtyProcess, rows: int, cols: int) -> LiveSession:
        """A process just started on its PTY (a spawn or a relaunch): its live side and its tasks."""
        live = LiveSession(sid, AGENT_KINDS[agent], pty, rows, cols, self.config.scrollback_bytes)
        self.sessions[sid] = live
        self.store.set_pid(sid, pty.pid, resume.start_time(pty.pid))
        self._keep_in_fd_store(live)
        watch = ScreenWatch(live.terminal, self.screen_rules.get(agent),
                            lambda obs: self._on_screen(live, obs), max_rate_hz=SCREEN_RATE_HZ)
        live.screen_watch = watch
        assert self._nursery is not None
        self._nursery.start_soon(self._run_session, live, watch)
        if agent == "codex":
            self._nursery.start_soon(self._find_rollout, live)
        return live

    async def _find_rollout(self, s: LiveSession) -> None:
        """A Codex session's rollout when no SessionStart hook named it (a hook lost, or a resumed thread):
        Codex creates it with its first item, so the session's own CODEX_HOME is looked at every
        :data:`ROLLOUT_POLL` seconds until the file is known or the process exits."""
        home = str(self.data_dir / "sessions" / s.id / codex.HOME_DIR)
        while not s.is_exited:
            with trio.move_on_after(ROLLOUT_POLL):
                await s.exited.wait()
            row = self.store.find(s.id)
            if row is None or row["transcript_path"]:
                return
            path = codex.find_rollout(home)
            if path is not None:
                self.store.set_transcript(s.id, None, path)
                self.store.record(SYSTEM, s.id, "session.transcript", {"transcript_path": path, "source": "found"})
                return

    async def _spawn_failed(self, sid: str, pty: PtyProcess | None, exc: BaseException) -> None:
        """A spawn failed after its row was written: the process (if any) is killed and reaped, and the row
        ends ``exited`` (``failed``) with the reason."""
        if isinstance(exc, OSError):
            log.warning("session %s: could not start: %s", sid, exc)
        elif isinstance(exc, Exception):
            log.error("session %s: could not start", sid, exc_info=exc)
        self.sessions.pop(sid, None)
        if pty is not None:
            pty.kill()
            with trio.move_on_after(1):
                await pty.wait()
            pty.close()
        why = _describe(exc) if isinstance(exc, Exception) else "the spawn was cancelled"
        try:
            self.store.write_status(sid, "spawning", "exited", SYSTEM,
                                    {"exit_reason": "failed", "exit_code": None, "error": why,
                                     "source": "process", "reason": f"could not start: {why}"})
        except Exception:
            log.exception("session %s: its failed spawn could not be recorded", sid)

    # -- the per-session tasks --------------------------------------------------------------------

    async def _run_session(self, s: LiveSession, watch: ScreenWatch) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(terminal_io.read_loop, s, nursery, watch.output_arrived)
            nursery.start_soon(watch.run)
            nursery.start_soon(self.prompts.delivery_loop, s)
            nursery.start_soon(self._clock, s)
            rc = await s.pty.wait()
            with trio.move_on_after(EXIT_DRAIN):
                await s.reader_done.wait()
            nursery.cancel_scope.cancel()
        s.pty.close()
        with trio.CancelScope(shield=True):
            with trio.move_on_after(1.0):
                await watch.fresh()  # the last screen stays readable
        self._finish(s, rc)

    async def _clock(self, s: LiveSession) -> None:
        """Re-decide when a decision said it may change by itself (a grace period ending)."""
        while True:
            changed = s.changed
            at = s.decision.recheck_at
            if at is None:
                await changed.wait()
                continue
            with trio.move_on_at(at):
                await changed.wait()
            if trio.current_time() >= at:
                self._apply(s, SYSTEM)

    @staticmethod
    def _keep_in_fd_store(s: LiveSession) -> None:
        """Under systemd, the PTY master goes to its file descriptor store, so that a crash of the daemon
        does not hang up the agent's terminal and the restarted daemon gets it back (docs/restart.md)."""
        if not os.environ.get("NOTIFY_SOCKET"):
            return
        name = adopt.fd_store_name(s.id, s.pty.pid)
        if name is not None and sd_notify(f"FDSTORE=1\nFDNAME={name}", [s.pty.master]):
            s.fd_store_name = name

    def _finish(self, s: LiveSession, rc: int | None) -> None:
        if s.is_exited:
            return
        if s.fd_store_name is not None:
            sd_notify(f"FDSTOREREMOVE=1\nFDNAME={s.fd_store_name}")
            s.fd_store_name = None
        if s.id in self._hibernating or (self._suspending and resume.resumable(self.store.row(s.id))):
            self._park(s, rc)
            return
        reason = "stopped" if s.stop_requested else ("completed" if rc == 0 else "failed")
        s.exit_code = rc
        self._observe(s, ProcessExited(trio.current_time(), rc, reason), s.stop_requested or SYSTEM)
        self._ended(s)
        log.info("session %s exited: code %s (%s)", s.id, rc, reason)

    def _ended(self, s: LiveSession) -> None:
        """The process is gone (exited, hibernated or suspended): wake whoever waits on it or watches it, and
        keep the live object (its last screen) for the newest KEEP_EXITED sessions only."""
        s.exited.set()
        s.kick()
        for v in s.viewers:
            v.poke()
        for feed in s.screen_feeds:
            feed.poke()
        self._exited_order.append(s.id)
        while len(self._exited_order) > KEEP_EXITED:
            self.sessions.pop(self._exited_order.popleft(), None)

    def forget(self, sid: str) -> None:
        """Drop what is kept in memory of an exited session (its rows were deleted)."""
        s = self.sessions.get(sid)
        if s is not None and s.is_exited:
            del self.sessions[sid]
            if sid in self._exited_order:
                self._exited_order.remove(sid)

    # -- status: witnesses in, decisions out ---------------------------------------------------------

    def _observe(self, s: LiveSession, obs: Observation, actor: str) -> None:
        s.machine.observe(obs)
        self._apply(s, actor)

    def _apply(self, s: LiveSession, actor: str) -> None:
        """Write what the status machine decides now, if it differs from what was written."""
        d = s.machine.decide(trio.current_time())
        old = s.decision
        s.decision = d
        if d.status != old.status:
            extra: dict[str, Any] = {"source": d.witness, "reason": d.reason}
            if d.status == "exited":
                extra = {"exit_reason": d.exit_reason, "exit_code": d.exit_code, **extra}
            self.store.write_status(s.id, old.status, d.status, actor, extra)
        if d.attention != s.attention_written:
            if d.attention is not None:
                self.store.set_attention(s.id, d.attention, actor, d.attention_source or "daemon",
                                         {"kind": d.witness})
            elif s.attention_written is not None and self.store.attention(s.id) == s.attention_written:
                self.store.set_attention(s.id, None, actor, old.attention_source or "daemon")
            s.attention_written = d.attention
        if d.status != old.status or d.attention != old.attention or d.recheck_at != old.recheck_at:
            s.kick()

    def _on_screen(self, s: LiveSession, obs: ScreenObservation) -> None:
        """The screen witness saw something new (a dialog appeared or went, a retry notice...)."""
        if s.is_exited:
            return
        self._observe(s, ScreenSeen(obs.at, obs.kind, obs.rule, obs.reason), SYSTEM)
        # The input gate reads the screen: a queued prompt waiting for the empty input prompt (or for a
        # dialog to go) is typed now, not at its next poll (up to GATE_POLL later).
        s.kick()

    async def _fresh_screen(self, s: LiveSession) -> ScreenObservation | None:
        """Bring the screen up to date and classify it (the watch reports a change through ``_on_screen``)."""
        return None if s.screen_watch is None else await s.screen_watch.fresh()

    async def _gate(self, s: LiveSession, skip_turn_wait: bool, from_person: bool) -> Gate:
        """The input gate, after bringing the screen witness up to date (nothing is typed on old news)."""
        now = trio.current_time()
        if s.status == "working" and not skip_turn_wait:
            # no need to render the screen to know the turn runs
            return s.machine.input_gate(now, from_person=from_person)
        await self._fresh_screen(s)
        return s.machine.input_gate(trio.current_time(), skip_turn_wait=skip_turn_wait, from_person=from_person)

    def transcript_state(self, sid: str, state: str, age: float | None = None) -> None:
        """The transcript witness: the turn state read from the session's transcript.  ``age``: how many
        seconds ago the agent wrote the newest record it rests on (``TranscriptSeen.written_at``; None: not
        known, e.g. no record has a timestamp): Claude
        Code flushes its transcript in batches, so a prompt's record can be read after the Stop hook of that
        very turn started, and it must not look like a new turn whose hook was lost."""
        s = self.sessions.get(sid)
        if s is None or s.is_exited or not s.kind.transcript:
            return
        if state not in ("working", "compacting", "waiting_input", "idle", "interrupted", "api_error"):
            return
        now = trio.current_time()
        written_at = None if age is None else now - max(0.0, age)
        self._observe(s, TranscriptSeen(now, state, written_at), SYSTEM)  # type: ignore[arg-type]

    def transcript_prompt(self, sid: str, text: str) -> None:
        """The transcript shows a prompt the agent received: it confirms a delivered prompt too."""
        s = self.sessions.get(sid)
        if s is not None and not s.is_exited:
            self.prompts.confirm(s, text, "transcript")

    def accepts_nudge(self, sid: str) -> bool:
        """A live agent with hooks that sits at its prompt (a nudge would be typed at once), or a hibernated
        one (the nudge wakes it)."""
        s = self.sessions.get(sid)
        if s is None or s.is_exited or not s.kind.hooks:
            row = self.store.find(sid)
            return row is not None and row["status"] == "hibernated"
        return s.status == "idle"

    # -- hooks ------------------------------------------------------------------------------------

    async def hook(self, sid: str, event: str, payload: dict[str, Any],
                   started_monotonic: float | None = None) -> dict[str, Any]:
        """One hook report (the hooks witness); what the hook should print."""
        return await self.hook_intake.report(sid, event, payload, started_monotonic)

    def _hook_seen(self, sid: str, obs: HookSeen) -> None:
        s = self.sessions.get(sid)
        if s is not None and not s.is_exited:
            self._observe(s, obs, sid)

    def _hook_prompt(self, sid: str, text: str) -> None:
        s = self.sessions.get(sid)
        if s is not None:
            self.prompts.confirm(s, text, "hook")

    # -- waiting for sessions -----------------------------------------------------------------------

    async def wait(self, sids: Sequence[str], until: str, timeout: float | None) -> dict[str, Any]:
        return await self.waits.wait(sids, until, timeout)

    def wait_state(self, sids: Sequence[str], until: str, done: bool) -> dict[str, Any]:
        return self.waits.state(sids, until, done)

    def waiter_count(self) -> int:
        return self.waits.count()

    # -- input, prompts, resize, interrupt ------------------------------------------------------------

    async def input(self, sid: str, data: bytes, actor: str, *, record: bool = True) -> int:
        """Keys typed by a person (or an agent acting as one): the only input that may answer a dialog."""
        s = self._running(sid, "type into it")
        if record:
            preview = data[:200].decode("utf-8", "replace")
            self.store.record(actor, sid, "session.input", {"bytes": len(data), "text": preview})
        s.machine.observe(PersonTyped(trio.current_time()))
        await terminal_io.write(s, data)
        s.kick()
        return len(data)

    async def prompt(self, sid: str, text: str, mode: str, now: bool, actor: str) -> dict[str, Any]:
        await self._awake(sid, actor, f"a prompt from {self._who(actor)}")
        waiting = self.admission.why(sid) if self.admission is not None else None
        if waiting is not None:  # its start (a spawn or a wake) waits for room: typed once the agent is up
            return self.prompts.queue_for_start(sid, text, mode, now, actor, f"the session waits for room: {waiting}")
        s = self._running(sid, "prompt it")
        self._clear_cut_off(sid, actor)
        return await self.prompts.prompt(s, text, mode, now, actor)

    async def interrupt(self, sid: str, actor: str) -> str:
        s = self._running(sid, "interrupt it")
        self.store.record(actor, sid, "session.input",
                          {"bytes": 1, "key": s.kind.interrupt_name, "interrupt": True})
        await terminal_io.write(s, s.kind.interrupt_key)
        return s.kind.interrupt_name

    async def resize(self, sid: str, rows: int, cols: int, actor: str) -> None:
        s = self._running(sid, "resize it")
        term = s.terminal
        if (term.rows, term.cols) == (rows, cols):
            return
        await self._fresh_screen(s)  # the output so far was meant for the old size
        s.pty.resize(rows, cols)
        term.resize(rows, cols)
        self.store.set_size(sid, rows, cols, actor)
        for feed in s.screen_feeds:
            feed.poke()

    # -- attach -----------------------------------------------------------------------------------

    async def attach(self, peer: Peer, sid: str, rows: int | None, cols: int | None, actor: str, *,
                     since: int | None = None) -> str:
        s = self._live(sid, "attach to it")
        if rows and cols and not s.is_exited:
            await self.resize(sid, rows, cols, actor)
        return await self.attachments.attach(peer, s, actor, since=since)

    def detach(self, peer: Peer, sid: str) -> int:
        return self.attachments.detach(peer, sid)

    def attached_on(self, peer: Peer | None, sid: str) -> bool:
        return self.attachments.attached_on(peer, sid)

    # -- resume, hibernate, wake ------------------------------------------------------------------------

    def _who(self, actor: str) -> str:
        if actor == SYSTEM:
            return "maestro"
        return self.store.describe(None if actor == "human" else actor)

    def _resume_lost(self, r: Any) -> None:
        """At start-up: a Claude or Codex session whose terminal did not come back is resumed as soon as its old
        process is gone (it may still be ending: it lost its terminal). Its old token dies now."""
        sid = r["id"]
        alive = resume.same_process(r["pid"], r["pid_start"])
        why = ("the previous daemon ended without handing over its terminal"
               + (f" (its process {r['pid']} was still ending)" if alive else ""))
        self.store.set_token(sid, None)
        if r["status"] != "spawning":
            self.store.write_status(sid, r["status"], "spawning", SYSTEM,
                                    {"source": "daemon", "reason": f"resuming: {why}"})
        if self.admission is not None:  # it was live: it counts as live again before anything else starts
            self.admission.reserve(sid)
        done = trio.Event()
        self._waking[sid] = done
        assert self._nursery is not None
        # A turn under way (or a dialog or question inside one) when the process died was cut off.
        cut_off = r["status"] if r["status"] in ("working", "waiting_input") else None
        self._nursery.start_soon(self._resume_when_gone, sid, r["pid"], r["pid_start"], why, cut_off, done)

    async def _resume_when_gone(self, sid: str, pid: int | None, start: int | None, why: str, cut_off: str | None,
                                done: trio.Event) -> None:
        try:
            ended = "gone" if not pid else await resume.end_process(pid, start, self.config.stop_timeout)
            if ended in ("not ours", "still running"):
                # Two processes must never write one conversation: this one is not resumed.
                self.store.write_status(sid, "spawning", "exited", SYSTEM, {
                    "exit_reason": "lost", "exit_code": None, "pid_alive": True, "source": "daemon",
                    "reason": f"its terminal was lost and its old process {pid} could not be ended ({ended}); "
                              "not resumed"})
                return
            await self._relaunch(sid, SYSTEM, why, cut_off=cut_off, old_pid=pid, old_process=ended)
        except Exception as exc:
            log.warning("session %s: not resumed: %s", sid, exc)
            row = self.store.find(sid)
            if row is not None and row["status"] != "exited":
                self.store.write_status(sid, row["status"], "exited", SYSTEM, {
                    "exit_reason": "lost", "exit_code": None, "source": "daemon",
                    "reason": f"its terminal was lost with the previous daemon and it could not be resumed: "
                              f"{exc}"})
        finally:
            if self._waking.get(sid) is done:
                del self._waking[sid]
            done.set()

    async def _relaunch(self, sid: str, actor: str, why: str, *, cut_off: str | None, record: bool = True,
                        **extra: Any) -> LiveSession:
        """Start a new agent process on the session's conversation (``claude --resume``, ``codex resume``):
        same maestro id,
        name, parent, tasks and mail, a fresh token. Its timeline says ``resumed`` and why. ``cut_off``: the
        status it had when its turn was cut off (working, waiting_input), if it was."""
        if self._nursery is None:
            raise errors.RpcError(errors.UNAVAILABLE, "the session service is not running")
        row = self.store.row(sid)
        plan = resume.plan(row, self.store.task_ids(sid), data_dir=self.data_dir, socket_path=self.socket_path,
                           claude_cfg=self.claude, codex_cfg=self.codex)
        self.store.set_token(sid, token_hash(plan.token))
        if plan.transcript_path is not None and plan.transcript_path != row["transcript_path"]:
            # A Codex rollout no hook named (the process died first): known now, and followed from here.
            self.store.set_transcript(sid, plan.thread_id, plan.transcript_path)
            row = self.store.row(sid)
        if row["status"] != "spawning":
            self.store.write_status(sid, row["status"], "spawning", actor,
                                    {"source": "daemon", "reason": f"resuming: {why}"})
        how = plan.how
        ident = ({"thread_id": plan.thread_id} if row["agent"] == "codex"
                 else {"claude_session_id": row["claude_session_id"]} if row["agent"] == "claude" else {})
        data = {"reason": why, "how": how, **ident, "cut_off": cut_off is not None, **extra}
        if record:  # (not the first start of a spawn queued before a restart: nothing is resumed)
            self.store.record(actor, sid, "session.resumed", data,
                              event={"actor": actor, "session_id": sid, "name": row["name"],
                                     "transcript_path": row["transcript_path"], **data})
        old = self.sessions.get(sid)
        if old is not None and old.is_exited and sid in self._exited_order:
            self._exited_order.remove(sid)  # the new live side replaces it; it must not be dropped with it
        pty: PtyProcess | None = None
        try:
            pty = await PtyProcess.spawn(plan.exec_argv, cwd=row["cwd"], env=plan.env, rows=row["rows"],
                                         cols=row["cols"])
            live = self._started(sid, row["agent"], pty, row["rows"], row["cols"])
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                await self._spawn_failed(sid, pty, exc)
            if isinstance(exc, Exception):
                raise errors.RpcError(errors.UNAVAILABLE, f"could not resume session {sid}: {_describe(exc)} "
                                      "(it is exited: failed)", {"session": sid}) from None
            raise
        log.info("session %s resumed (%s): pid %d; %s", sid, how, pty.pid, why)
        self._observe(live, ProcessStarted(trio.current_time()), SYSTEM)
        if cut_off is not None:
            reason = ("its last turn was cut off when its process ended (the daemon stopped)"
                      + (" while it waited for input" if cut_off == "waiting_input" else "")
                      + "; it was resumed idle: look at it and prompt it to go on")
            self.store.set_attention(sid, reason, SYSTEM, "daemon", {"kind": "resumed"})
            self._cut_off[sid] = reason
        return live

    def _clear_cut_off(self, sid: str, actor: str) -> None:
        """A prompt after a cut-off turn: somebody has taken it in hand."""
        reason = self._cut_off.pop(sid, None)
        if reason is not None and self.store.attention(sid) == reason:
            self.store.set_attention(sid, None, actor, "daemon")

    async def _awake(self, sid: str, actor: str, why: str) -> None:
        """Before typing into a session: wait for a relaunch under way; wake a hibernated one."""
        pending = self._waking.get(sid)
        if pending is not None:
            await pending.wait()
        elif self.store.row(sid)["status"] == "hibernated":
            await self.wake(sid, actor, why)

    async def wake(self, sid: str, actor: str, why: str | None = None) -> Session:
        """Resume a hibernated session (``claude --resume``, ``codex resume``); an awake one is answered as
        it is."""
        pending = self._waking.get(sid)
        if pending is not None:
            await pending.wait()
            return self.get(sid)
        if self.admission is not None and self.admission.why(sid) is not None:
            return self.get(sid)  # its start already waits for room (``queued``)
        row = self.store.row(sid)
        if row["status"] != "hibernated":
            live = self.sessions.get(sid)
            if live is not None and not live.is_exited:
                return self.get(sid)
            raise errors.conflict(f"session {sid} is {row['status']}; only a hibernated session can be woken",
                                  {"session": sid, "status": row["status"]})
        reason = why or f"woken by {self._who(actor)}"
        if self.admission is not None:
            # A wake adds a live agent like a spawn: it asks the governor, and waits (queued) when there is no room.
            held = self.admission.hold(sid, wake=True)
            if held is not None:
                self.store.write_status(sid, "hibernated", "queued", actor,
                                        {"source": "daemon", "reason": f"waiting for room to wake: {held}"})
                self.admission.enqueue(sid, row["role"], self.store.task_ids(sid), held,
                                       lambda: self._wake_now(sid, actor, reason), wake=True)
                return self.get(sid)
        await self._wake_now(sid, actor, reason)
        return self.get(sid)

    async def _wake_now(self, sid: str, actor: str, why: str) -> None:
        done = trio.Event()
        self._waking[sid] = done
        try:
            await self._relaunch(sid, actor, why, cut_off=None)
        finally:
            if self._waking.get(sid) is done:
                del self._waking[sid]
            done.set()

    async def hibernate(self, sid: str, actor: str) -> Session:
        """Stop an idle Claude or Codex session's process and keep its identity (status ``hibernated``); a
        wake or a prompt resumes its conversation."""
        s = self._running(sid, "hibernate it")
        if not resume.resumable(self.store.row(sid)):
            raise errors.conflict(f"session {sid} is not a Claude Code session or a Codex session: only "
                                  "those can be resumed, so only those are hibernated (stop it instead)", {"session": sid})
        if s.status != "idle":
            raise errors.conflict(f"session {sid} is {s.status}; only an idle session is hibernated (wait for it: "
                                  f"`maestroctl session wait {sid} --until idle`)", {"session": sid,
                                                                                     "status": s.status})
        self._hibernating.add(sid)
        if s.stop_requested is None:
            s.stop_requested = actor
        self.store.record(actor, sid, "session.stop", {"how": "hibernate", "signals": ["HUP", "TERM", "KILL"]})
        if not s.stopping:
            assert self._nursery is not None
            self._nursery.start_soon(self._stop_sequence, s)
        await s.exited.wait()
        return self.get(sid)

    def _park(self, s: LiveSession, rc: int | None) -> None:
        """The process of a session being hibernated, or of an agent session while the daemon stops, has
        exited: the session keeps its identity (its token dies with the process)."""
        hibernate = s.id in self._hibernating
        self._hibernating.discard(s.id)
        s.exit_code = rc
        self.store.set_token(s.id, None)
        if hibernate:
            reason = "hibernated: its process was stopped; `session wake` or a prompt resumes its conversation"
            self.store.write_status(s.id, s.decision.status, "hibernated", s.stop_requested or SYSTEM,
                                    {"source": "daemon", "reason": reason, "exit_code": rc})
            s.decision = Decision("hibernated", reason, "daemon")
        else:
            self.store.record(SYSTEM, s.id, "session.suspended",
                              {"status": s.decision.status, "exit_code": rc,
                               "reason": "the daemon stopped; the session is resumed when it starts again"})
        self._ended(s)
        log.info("session %s %s: code %s", s.id, "hibernated" if hibernate else "suspended", rc)

    # -- stop and kill ----------------------------------------------------------------------------

    async def stop(self, sid: str, actor: str, *, kill: bool = False, wait: bool = True) -> Session:
        if self.admission is not None and self.admission.cancel(sid, actor):
            return self.get(sid)  # it was queued: it never started
        s = self._live(sid, "kill it" if kill else "stop it")
        if s.is_exited:
            return self.get(sid)
        if s.stop_requested is None:
            s.stop_requested = actor
        self.store.record(actor, sid, "session.stop",
                          {"how": "kill" if kill else "stop", "signals": ["KILL"] if kill else ["HUP", "TERM", "KILL"]})
        if kill:
            s.pty.kill()
        elif not s.stopping:
            assert self._nursery is not None
            self._nursery.start_soon(self._stop_sequence, s)
        if wait:
            await s.exited.wait()
        return self.get(sid)

    async def _stop_sequence(self, s: LiveSession) -> None:
        """SIGHUP, then SIGTERM, then SIGKILL, ``stop_timeout`` seconds apart; never blocks the loop."""
        s.stopping = True
        for sig in (signal.SIGHUP, signal.SIGTERM):
            if not s.pty.signal(sig):
                break
            with trio.move_on_after(self.config.stop_timeout):
                await s.exited.wait()
                return
        s.pty.kill()
        await s.exited.wait()


def _describe(exc: Exception) -> str:
    """An exception for people: an OSError's own text; others with their type (``ValueError: embedded null
    byte``)."""
    return str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
