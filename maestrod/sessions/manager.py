"""SessionManager: every session's process, terminal, status, prompts and viewers.

One instance per daemon, ``app.sessions``. It runs as an app service (``run``): on start,
sessions a previous daemon left behind become ``exited`` (``lost``); each live session then
has one task group -- reader, exit watcher, screen-model feeder, prompt delivery -- inside the
manager's nursery, so nothing a session does blocks the event loop or another session.

Status (the ``sessions.status`` column) moves ``spawning -> working | waiting_input | idle ->
exited``. Sources: the process (ours: exit is always taken from ``proc.wait()``, recorded
within ~0.3 s, whatever a hook said before), Claude Code hooks (:meth:`SessionManager.hook`),
and the terminal (Claude enabling bracketed paste means its TUI is up). ``exited`` is final.
Every change is a timeline row and a ``session.status`` event in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import secrets
import shutil
import signal
import sys
import uuid
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio
import trio.lowlevel

from maestrod import policy
from maestrod.sessions import briefing, claude
from maestrod.sessions.pty import PtyProcess
from maestrod.sessions.scrollback import Scrollback
from maestrod.sessions.terminal import FLOOD_TAIL, SLICE, Terminal
from maestrod.store.db import utcnow
from shared import errors
from shared.convert import unstructure
from shared.messages.session import Session

if TYPE_CHECKING:
    from maestrod.app import App
    from maestrod.connection import Connection
    from shared.messages.session import SessionList, SessionSpawn

log = logging.getLogger("maestrod.sessions")

SYSTEM = "system"
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"
#: Pause between a paste and its Enter, so the TUI has consumed the paste (notes §1.6).
PASTE_SETTLE = 0.05
#: After the process exits, wait this long at most for the rest of its output (EIO).
EXIT_DRAIN = 0.25
#: The screen model is fed when the output has been quiet this long...
SCREEN_QUIET = 0.02
#: ... or, during a flood, this often (with only the tail of the output).
SCREEN_MAX_DELAY = 0.5
#: Typing into a program that does not read its input gives up after this long.
WRITE_TIMEOUT = 10.0
#: A delivered prompt holds back the next queued one until the agent confirms it (or this passes).
CONFIRM_TIMEOUT = 15.0
#: An attached viewer that falls this far behind gets a fresh repaint instead of the backlog.
VIEWER_BACKLOG = 4 * 1024 * 1024
#: A quiet attach stream sends a `session.heartbeat` this often (finds viewers that went away).
HEARTBEAT = 15.0
#: Exited sessions whose screen and scrollback stay in memory.
KEEP_EXITED = 64
#: Notification types that mean "a person must answer" (a dialog is open: no prompt is pasted).
ATTENTION_TYPES = frozenset({"permission_prompt", "agent_needs_input", "elicitation_dialog"})
RATE_WINDOW = 60.0
#: The transcript is read a little after the hooks report (and may describe the previous turn): it may
#: correct a status only once no other source has changed it for this long.
TRANSCRIPT_SETTLE = 1.0
#: Transcript turn state -> session status, for what the hooks cannot see (an interrupted turn fires
#: no Stop hook; an unanswered AskUserQuestion is a wait for input; a lost hook call leaves a gap).
TRANSCRIPT_STATUS = {"working": "working", "compacting": "working", "waiting_input": "waiting_input",
                     "idle": "idle", "interrupted": "idle", "api_error": "idle"}
#: Events that may change what ``session.wait`` is waiting for.
WAIT_TOPICS = frozenset({"session.status", "session.prompt", "session.prompt_delivered"})
_SECRET_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
#: Hook extensions (context, stop decision, listeners) get this long each; the hook client gives up at ~2 s.
EXTENSION_TIMEOUT = 1.5
#: :class:`Session` fields read as is from the ``sessions`` row (the others are decoded or live facts).
_ROW_FIELDS = tuple(f.name for f in attrs.fields(Session)
                    if f.name not in ("argv", "task_ids", "queued_prompts", "viewers", "bracketed_paste"))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def prompt_source(actor: str) -> str:
    """``human``, ``agent:<session id>`` or ``system``: who a prompt came from."""
    if actor in ("human", SYSTEM):
        return actor
    return actor if actor.startswith("agent:") else f"agent:{actor}"


def _norm(text: str) -> str:
    return " ".join(text.replace("\r\n", "\n").split())


class Viewer:
    """One attached terminal: a bounded buffer of output the attach stream has not sent yet."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.needs_repaint = False
        self.detached = False
        self._wake = trio.Event()

    def push(self, data: bytes) -> None:
        if self.needs_repaint:
            return
        self.chunks.append(data)
        self.size += len(data)
        if self.size > VIEWER_BACKLOG:
            self.chunks.clear()
            self.size = 0
            self.needs_repaint = True
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        return data

    async def wait(self) -> None:
        await self._wake.wait()
        self._wake = trio.Event()


class LiveSession:
    """The in-memory side of a session this daemon started (its process is running or has exited)."""

    def __init__(self, sid: str, agent: str, pty: PtyProcess, rows: int, cols: int, scrollback_bytes: int) -> None:
        self.id = sid
        self.agent = agent
        self.status = "spawning"
        self.pty = pty
        self.terminal = Terminal(rows, cols)
        self.scrollback = Scrollback(scrollback_bytes)
        self.viewers: list[Viewer] = []
        self.write_lock = trio.Lock()
        self.exited = trio.Event()
        self.reader_done = trio.Event()
        self.screen_dirty = trio.Event()
        self.changed = trio.Event()
        self.stop_requested: str | None = None
        self.stopping = False
        self.waiting_kind: str | None = None
        self.awaiting_confirm_until = 0.0
        self.exit_code: int | None = None
        self.last_paste_mode = False
        #: When the status last changed (trio clock), and what the transcript last said.
        self.status_changed_at = 0.0
        self.transcript_state: str | None = None

    def kick(self) -> None:
        """Wake whoever waits for this session to change (status, readiness, queue)."""
        ev, self.changed = self.changed, trio.Event()
        ev.set()

    @property
    def is_exited(self) -> bool:
        return self.exited.is_set()

    @property
    def at_prompt(self) -> bool:
        """Status-wise ready for a prompt: idle, or Claude's idle reminder (not a dialog) is showing."""
        return self.status == "idle" or (self.status == "waiting_input" and self.waiting_kind == "idle_prompt")


class SessionManager:
    def __init__(self, app: App) -> None:
        self.app = app
        self.db = app.db
        self.sessions: dict[str, LiveSession] = {}
        self._exited_order: deque[str] = deque()
        self._nursery: trio.Nursery | None = None
        self._rates: dict[tuple[str, str], deque[float]] = {}
        #: ``session.wait`` calls parked on a session, woken by its status and prompt events.
        self._waiters: dict[str, set[trio.Event]] = {}
        app.bus.add_listener(self._on_event)
        app.token_lookup = self.token_lookup
        app.services.append(self.run)
        app.shutdown_hooks.append(self.shutdown)

    @property
    def config(self) -> Any:
        return self.app.config.sessions

    # -- service lifecycle ------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.recover()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self._kill_all()

    def recover(self) -> None:
        """Sessions left ``spawning/working/...`` by a previous daemon are ``exited`` (``lost``)."""
        rows = self.db.conn.execute("SELECT id, status, pid FROM sessions WHERE status<>'exited'").fetchall()
        for r in rows:
            if r["id"] in self.sessions:
                continue
            alive = _pid_alive(r["pid"])
            if alive:
                log.warning("session %s: pid %s still exists but its terminal was lost with the previous "
                            "daemon; it is recorded as lost", r["id"], r["pid"])
            self._write_status(r["id"], r["status"], "exited", SYSTEM,
                               {"exit_reason": "lost", "exit_code": None, "pid_alive": alive})

    async def shutdown(self) -> None:
        """Daemon stopping (SIGTERM): stop every live session (HUP, TERM, KILL), concurrently."""
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

    # -- identity ---------------------------------------------------------------------------------

    def token_lookup(self, token: str) -> str | None:
        row = self.db.conn.execute(
            "SELECT id FROM sessions WHERE token_hash=?", (token_hash(token),)
        ).fetchone()
        return str(row[0]) if row else None

    def resolve(self, ident: str) -> str:
        return policy.resolve_session(self.db, ident)

    def row(self, sid: str) -> Any:
        return policy.session_row(self.db, sid)

    # -- reads ------------------------------------------------------------------------------------

    def _build(self, rows: list[Any]) -> list[Session]:
        ids = [r["id"] for r in rows]
        tasks: dict[str, list[str]] = {i: [] for i in ids}
        queued: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            q = ",".join("?" * len(chunk))
            for t in self.db.conn.execute(
                f"SELECT session_id, task_id FROM session_tasks WHERE session_id IN ({q}) "
                "ORDER BY updated_at, task_id",
                chunk,
            ):
                tasks[t[0]].append(t[1])
            for t in self.db.conn.execute(
                f"SELECT session_id, COUNT(*) FROM session_prompts WHERE state='queued' AND session_id "
                f"IN ({q}) GROUP BY session_id",
                chunk,
            ):
                queued[t[0]] = t[1]
        out = []
        for r in rows:
            live = self.sessions.get(r["id"])
            out.append(Session(**{k: r[k] for k in _ROW_FIELDS}, argv=json.loads(r["argv"]),
                               task_ids=tasks[r["id"]], queued_prompts=queued.get(r["id"], 0),
                               viewers=len(live.viewers) if live else 0,
                               bracketed_paste=bool(live and live.terminal.bracketed_paste)))
        return out

    def get(self, sid: str) -> Session:
        return self._build([self.row(sid)])[0]

    def list(self, p: SessionList, caller: str | None) -> list[Session]:
        where, args = [], []
        if p.project:
            where.append("project_id=?")
            args.append(self.app.projects.resolve(p.project))
        if p.status:
            where.append(f"status IN ({','.join('?' * len(p.status))})")
            args.extend(p.status)
        if p.active:
            where.append("status<>'exited'")
        if p.parent:
            where.append("parent_id=?")
            args.append(self.resolve(p.parent))
        if p.my_workers or p.siblings:
            if caller is None:
                flag = "--my-workers" if p.my_workers else "--siblings"
                raise errors.invalid_params(
                    [
                        f"{flag} is relative to the calling session: call it from inside "
                        "a session (with MAESTRO_SESSION_TOKEN)"
                    ]
                )
            if p.my_workers:
                where.append("parent_id=?")
                args.append(caller)
            if p.siblings:
                sibs = policy.siblings(self.db, caller)
                where.append(f"id IN ({','.join('?' * len(sibs))})")
                args.extend(sibs)
        sql = "SELECT * FROM sessions" + (" WHERE " + " AND ".join(where) if where else "")
        return self._build(self.db.conn.execute(sql + " ORDER BY created_at, id", args).fetchall())

    def _live(self, sid: str, what: str) -> LiveSession:
        s = self.sessions.get(sid)
        if s is None:
            self.row(sid)  # not found -> NOT_FOUND
            raise errors.conflict(
                f"session {sid} has no terminal in this daemon (it exited before the daemon "
                f"started); cannot {what}",
                {"session": sid},
            )
        return s

    def _running(self, sid: str, what: str) -> LiveSession:
        s = self._live(sid, what)
        if s.is_exited:
            raise errors.conflict(
                f"session {sid} has exited; cannot {what}", {"session": sid, "status": "exited"}
            )
        return s

    async def screen(self, sid: str) -> dict[str, Any]:
        s = self.sessions.get(sid)
        if s is None:
            r = self.row(sid)
            return {
                "id": sid,
                "status": r["status"],
                "rows": r["rows"],
                "cols": r["cols"],
                "lines": [],
                "text": "",
                "cursor": {"row": 0, "col": 0},
                "bracketed_paste": False,
                "offset": 0,
                "note": "no screen: the session exited before this daemon started",
            }
        await self._sync_screen(s)
        term = s.terminal
        y, x = term.cursor
        return {
            "id": sid,
            "status": s.status,
            "rows": term.rows,
            "cols": term.cols,
            "lines": term.lines(),
            "text": term.text(),
            "cursor": {"row": y, "col": x},
            "bracketed_paste": term.bracketed_paste,
            "offset": s.scrollback.total,
        }

    def output(self, sid: str, offset: int, limit: int) -> dict[str, Any]:
        if offset < 0:
            raise errors.invalid_params([f"offset: must be >= 0, got {offset}"])
        if not 1 <= limit <= 1024 * 1024:
            raise errors.invalid_params([f"limit: must be between 1 and 1048576, got {limit}"])
        s = self._live(sid, "read its output")
        got, data = s.scrollback.read(offset, limit)
        return {
            "id": sid,
            "offset": got,
            "next_offset": got + len(data),
            "total": s.scrollback.total,
            "start": s.scrollback.start,
            "truncated": got > offset,
            "data": base64.b64encode(data).decode(),
        }

    # -- spawning ---------------------------------------------------------------------------------

    async def spawn(self, p: SessionSpawn, actor: str, caller: str | None) -> Session:
        """Start a session. ``caller`` is the session bound to the request's token (None: the human):
        it becomes the parent unless ``p.parent`` names one, and only a coordinator may spawn."""
        if self._nursery is None:
            raise errors.RpcError(errors.UNAVAILABLE, "the session service is not running")
        app = self.app
        project_id = app.projects.resolve(p.project)
        project = app.projects.get(project_id)
        cwd = p.cwd if p.cwd is not None else project.dir
        if not os.path.isabs(cwd):
            raise errors.invalid_params([f"cwd: must be an absolute path, got {cwd!r}"])
        if not os.path.isdir(cwd):
            raise errors.invalid_params([f"cwd: no such directory: {cwd}"])
        cwd = os.path.normpath(cwd)
        parent_id = self.resolve(p.parent) if p.parent else caller
        policy.check_spawn(self.db, caller, parent_id)
        root_parent = self.row(parent_id)["root_id"] if parent_id else None
        task_ids = list(dict.fromkeys(app.tasks.resolve(t) for t in p.task_ids))
        if p.prompt is not None:
            self._check_prompt_text(p.prompt)
        template = briefing.resolve_template(p.template, p.role)
        directive = briefing.directive_from(p.subject, p.message)
        if directive is not None:
            app.mail.check_content(directive.subject, directive.message)

        sid = self.db.new_id("sessions", "s")
        token = secrets.token_urlsafe(32)
        root_id = root_parent or sid
        env = claude.scrub_env(os.environ)
        env.update(p.env)
        env["TERM"] = p.env.get("TERM", "xterm-256color")
        env.setdefault("COLORTERM", "truecolor")
        bindir = str(Path(sys.executable).parent)
        path = env.get("PATH", os.defpath)
        if bindir not in path.split(os.pathsep):  # last: maestroctl found, the project's tools still win
            env["PATH"] = path + os.pathsep + bindir if path else bindir
        session_dir = app.data_dir / "sessions" / sid
        prompt_file = session_dir / briefing.SYSTEM_PROMPT_FILE
        env.update(
            {
                "MAESTRO_SESSION_ID": sid,
                "MAESTRO_SESSION_TOKEN": token,
                "MAESTRO_SOCKET": str(app.socket_path),
                "MAESTRO_PROJECT_ID": project_id,
                "MAESTRO_TASK_IDS": ",".join(task_ids),
                "MAESTRO_COORDINATOR_SESSION_ID": parent_id or "",
                "MAESTRO_ROOT_SESSION_ID": root_id,
                "MAESTRO_SYSTEM_PROMPT_FILE": str(prompt_file),
            }
        )

        claude_sid = transcript = None
        placeholder = briefing.ARGV_PLACEHOLDER.format(path=prompt_file)
        if p.agent == "claude":
            ccfg = app.config.claude
            binary = claude.find_claude(ccfg.bin, env)
            if binary is None:
                raise errors.RpcError(
                    errors.UNAVAILABLE,
                    "Claude Code not found: set `bin` in the [claude] section "
                    "of the config, or MAESTRO_CLAUDE_BIN, or put `claude` on the daemon's PATH",
                )
            claude_sid = str(uuid.uuid4())
            session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            settings = session_dir / "settings.json"
            settings.write_text(json.dumps(claude.hook_settings(), indent=2))
            # Stored (and shown) with a placeholder; the real text replaces it just before exec.
            argv = claude.claude_argv(
                binary,
                claude_sid,
                str(settings),
                allowed_tools=p.allowed_tools or ccfg.allowed_tools,
                permission_mode=p.permission_mode or ccfg.permission_mode,
                extra_args=[*ccfg.extra_args, *p.argv],
                append_system_prompt=placeholder,
            )
            transcript = claude.transcript_path(env, cwd, claude_sid)
        else:
            if not p.argv:
                raise errors.invalid_params(
                    ["argv: a command is needed (e.g. `session spawn ... -- bash -i`)"]
                )
            argv = list(p.argv)
            prog = argv[0]
            found = (
                shutil.which(prog, path=env.get("PATH"))
                if os.sep not in prog
                else (prog if os.access(os.path.join(cwd, prog), os.X_OK) else None)
            )
            if found is None:
                raise errors.invalid_params([f"argv: no such program: {prog}"])
            session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

        now = utcnow()
        stored_env = {
            k: ("<redacted>" if any(h in k.upper() for h in _SECRET_HINTS) else v) for k, v in p.env.items()
        }
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO sessions(id, project_id, name, role, parent_id, root_id, agent, argv, cwd, env, "
                "token_hash, claude_session_id, transcript_path, status, rows, cols, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (sid, project_id, p.name, p.role, parent_id, root_id, p.agent, json.dumps(argv), cwd,
                 json.dumps(stored_env), token_hash(token), claude_sid, transcript, "spawning", p.rows, p.cols,
                 now, now))
            c.executemany("INSERT INTO session_tasks(session_id, task_id, status, updated_at) VALUES (?,?,?,?)",
                          [(sid, tid, "assigned", now) for tid in task_ids])
            app.record(actor, "session", sid, "session.spawned",
                       {"name": p.name, "role": p.role, "agent": p.agent, "cwd": cwd, "parent_id": parent_id,
                        "root_id": root_id, "project_id": project_id, "task_ids": task_ids,
                        "template": template.name if template else None,
                        **({"argv": argv} if p.agent == "command" else {})},
                       event={"actor": actor, "session": unstructure(self.get(sid))})
            mail_id = None
            if directive is not None:
                # The directive is the first mail of the new session (a thread of its own).
                mail_id = app.mail.send_directive(
                    actor, sid, directive.subject, directive.message,
                    task_id=task_ids[0] if len(task_ids) == 1 else None,
                )["id"]
            text = briefing.compose(
                session={"id": sid, "name": p.name, "parent_id": parent_id},
                project=project,
                tasks=[app.tasks.get(t) for t in task_ids],
                role=p.role,
                directive=directive,
                sender=actor,
                mail_id=mail_id,
                template=template,
            )
            first = p.prompt
            if not first and directive is not None and p.agent == "claude":
                first = briefing.kickoff_prompt(directive, mail_id)
            if first:
                self._queue_prompt(c, sid, first, "send", prompt_source(actor), actor, now=False)
        try:
            prompt_file.write_text(text)
        except OSError as exc:
            log.warning("session %s: could not write %s: %s", sid, prompt_file, exc)
        if p.agent == "claude":
            real_argv = [text if a is placeholder else a for a in argv]
        else:
            real_argv = argv
            env["MAESTRO_SYSTEM_PROMPT"] = text
        try:
            pty = await PtyProcess.spawn(real_argv, cwd=cwd, env=env, rows=p.rows, cols=p.cols)
        except OSError as exc:
            self._write_status(sid, "spawning", "exited", SYSTEM,
                               {"exit_reason": "failed", "exit_code": None, "error": str(exc)})
            raise errors.RpcError(errors.UNAVAILABLE, f"could not start {argv[0]}: {exc}") from None
        live = LiveSession(sid, p.agent, pty, p.rows, p.cols, self.config.scrollback_bytes)
        self.sessions[sid] = live
        with self.db.transaction() as c:
            c.execute("UPDATE sessions SET pid=? WHERE id=?", (pty.pid, sid))
        log.info("session %s (%s) started: pid %d, %s", sid, p.name, pty.pid, argv[0])
        assert self._nursery is not None
        self._nursery.start_soon(self._run_session, live)
        if p.agent != "claude":
            # Nothing reports a plain program's turns: it is "idle" (prompts go straight in) until it exits.
            self._set_status(live, "idle", SYSTEM, source="process")
        return self.get(sid)

    # -- the per-session tasks --------------------------------------------------------------------

    async def _run_session(self, s: LiveSession) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_loop, s)
            nursery.start_soon(self._screen_loop, s)
            nursery.start_soon(self._delivery_loop, s)
            rc = await s.pty.wait()
            with trio.move_on_after(EXIT_DRAIN):
                await s.reader_done.wait()
            nursery.cancel_scope.cancel()
        s.pty.close()
        s.terminal.sync_now()
        self._finish(s, rc)

    def _finish(self, s: LiveSession, rc: int | None) -> None:
        if s.is_exited:
            return
        reason = "stopped" if s.stop_requested else ("completed" if rc == 0 else "failed")
        s.exit_code = rc
        self._set_status(s, "exited", s.stop_requested or SYSTEM, exit_reason=reason, exit_code=rc,
                         source="process")
        s.exited.set()
        for v in s.viewers:
            v.poke()
        self._exited_order.append(s.id)
        while len(self._exited_order) > KEEP_EXITED:
            self.sessions.pop(self._exited_order.popleft(), None)
        log.info("session %s exited: code %s (%s)", s.id, rc, reason)

    async def _read_loop(self, s: LiveSession) -> None:
        pty, term, scrollback = s.pty, s.terminal, s.scrollback
        try:
            while True:
                data = await pty.read()
                if not data:
                    return
                scrollback.append(data)
                out, replies = term.process(data)
                if replies:
                    self._reply(s, b"".join(replies))
                if out:
                    for v in s.viewers:
                        v.push(out)
                if term.pending_bytes and not s.screen_dirty.is_set():
                    s.screen_dirty.set()
                if term.bracketed_paste != s.last_paste_mode:  # the TUI came up (or is leaving)
                    s.last_paste_mode = term.bracketed_paste
                    s.kick()
        finally:
            s.reader_done.set()

    def _reply(self, s: LiveSession, data: bytes) -> None:
        """Answer a terminal query now; never makes the reader wait (a paste may hold the input)."""
        assert self._nursery is not None
        if not s.write_lock.locked():
            try:
                n = os.write(s.pty.master, data)
            except OSError:  # BlockingIOError included: the rest goes through the write lock
                n = 0
            data = data[n:]
            if not data:
                return
        self._nursery.start_soon(self._write_reply, s, data)

    async def _write_reply(self, s: LiveSession, data: bytes) -> None:
        try:
            await self._write(s, data)
        except errors.RpcError as exc:  # exited, or not reading: nobody is waiting for the answer
            log.debug("session %s: terminal reply not written: %s", s.id, exc.message)

    async def _write(self, s: LiveSession, *parts: bytes) -> None:
        """Type ``parts`` into the terminal, :data:`PASTE_SETTLE` apart, holding the write lock.

        CONFLICT if the session exits meanwhile; UNAVAILABLE if it does not read its input.
        """
        with trio.move_on_after(WRITE_TIMEOUT) as scope:
            async with s.write_lock:
                try:
                    for i, part in enumerate(parts):
                        if i:
                            await trio.sleep(PASTE_SETTLE)
                        await s.pty.write(part)
                except trio.ClosedResourceError:
                    raise errors.conflict(f"session {s.id} exited while its input was being typed",
                                          {"session": s.id, "status": "exited"}) from None
        if scope.cancelled_caught:
            raise errors.RpcError(errors.UNAVAILABLE,
                                  f"session {s.id} is not reading its input (gave up after {WRITE_TIMEOUT:g} s)")

    async def _screen_loop(self, s: LiveSession) -> None:
        term = s.terminal
        while True:
            await s.screen_dirty.wait()
            start = trio.current_time()
            while True:
                seen = s.scrollback.total
                await trio.sleep(SCREEN_QUIET)
                if s.scrollback.total == seen:
                    break
                if trio.current_time() - start >= SCREEN_MAX_DELAY:
                    if term.pending_bytes > 4 * FLOOD_TAIL:
                        term.drop_pending_to(FLOOD_TAIL)  # still flooding: only the newest output matters
                    break
            s.screen_dirty = trio.Event()
            await self._feed(s)

    async def _feed(self, s: LiveSession) -> None:
        """Feed what is pending now to the screen model, in slices, letting other tasks run between."""
        budget = s.terminal.pending_bytes
        while budget > 0 and s.terminal.pending_bytes:
            budget -= s.terminal.feed_some(SLICE) or budget
            await trio.lowlevel.checkpoint()

    async def _sync_screen(self, s: LiveSession) -> None:
        await self._feed(s)
        s.terminal.sync_now()

    # -- status -----------------------------------------------------------------------------------

    def _write_status(self, sid: str, cur: str, to: str, actor: str, extra: dict[str, Any]) -> None:
        """The status change in the store, its timeline row and its event; an exited session's queued
        prompts fail with it."""
        now = utcnow()
        with self.db.transaction() as c:
            if to == "exited":
                c.execute("UPDATE sessions SET status='exited', exit_reason=?, exit_code=?, exited_at=?, "
                          "updated_at=?, needs_attention=NULL WHERE id=?",
                          (extra.get("exit_reason"), extra.get("exit_code"), now, now, sid))
                c.execute("UPDATE session_prompts SET state='failed' WHERE session_id=? AND state='queued'",
                          (sid,))
            else:
                c.execute("UPDATE sessions SET status=?, updated_at=? WHERE id=?", (to, now, sid))
            r = c.execute("SELECT name, project_id FROM sessions WHERE id=?", (sid,)).fetchone()
            data = {"from": cur, "to": to, **extra}
            self.app.record(actor, "session", sid, "session.status", data,
                            event={"actor": actor, "session_id": sid, "name": r["name"],
                                   "project_id": r["project_id"], **data})

    def _set_status(self, s: LiveSession, to: str, actor: str, **extra: Any) -> None:
        if s.status == to or s.is_exited:
            return
        self._write_status(s.id, s.status, to, actor, extra)
        s.status = to
        s.status_changed_at = trio.current_time()
        if to != "waiting_input":
            s.waiting_kind = None
        s.kick()

    def _set_attention(self, s: LiveSession, reason: str | None, actor: str) -> None:
        cur = self.db.conn.execute("SELECT needs_attention FROM sessions WHERE id=?", (s.id,)).fetchone()[0]
        if cur == reason:
            return
        with self.db.transaction() as c:
            c.execute(
                "UPDATE sessions SET needs_attention=?, updated_at=? WHERE id=?", (reason, utcnow(), s.id)
            )
            self.app.record(actor, "session", s.id, "session.needs_attention", {"reason": reason})

    # -- input, resize, interrupt -------------------------------------------------------------------

    async def input(self, sid: str, data: bytes, actor: str, *, record: bool = True) -> int:
        s = self._running(sid, "type into it")
        if record:
            preview = data[:200].decode("utf-8", "replace")
            self.app.record(actor, "session", sid, "session.input", {"bytes": len(data), "text": preview})
        await self._write(s, data)
        return len(data)

    async def interrupt(self, sid: str, actor: str) -> str:
        s = self._running(sid, "interrupt it")
        key, name = (b"\x1b", "escape") if s.agent == "claude" else (b"\x03", "ctrl-c")
        self.app.record(actor, "session", sid, "session.input", {"bytes": 1, "key": name, "interrupt": True})
        await self._write(s, key)
        return name

    async def resize(self, sid: str, rows: int, cols: int, actor: str) -> None:
        s = self._running(sid, "resize it")
        term = s.terminal
        if (term.rows, term.cols) == (rows, cols):
            return
        await self._feed(s)  # the output so far was meant for the old size
        s.pty.resize(rows, cols)
        term.resize(rows, cols)
        with self.db.transaction() as c:
            c.execute(
                "UPDATE sessions SET rows=?, cols=?, updated_at=? WHERE id=?", (rows, cols, utcnow(), sid)
            )
            self.app.record(actor, "session", sid, "session.resized", {"rows": rows, "cols": cols})

    # -- stop and kill ----------------------------------------------------------------------------

    async def stop(self, sid: str, actor: str, *, kill: bool = False, wait: bool = True) -> Session:
        s = self._live(sid, "kill it" if kill else "stop it")
        if s.is_exited:
            return self.get(sid)
        if s.stop_requested is None:
            s.stop_requested = actor
        self.app.record(
            actor,
            "session",
            sid,
            "session.stop",
            {"how": "kill" if kill else "stop", "signals": ["KILL"] if kill else ["HUP", "TERM", "KILL"]},
        )
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

    # -- prompts ----------------------------------------------------------------------------------

    def _check_prompt_text(self, text: str) -> None:
        cap = self.config.prompt_max_chars
        if len(text) > cap:
            raise errors.RpcError(
                errors.TOO_LARGE,
                f"prompt is {len(text)} characters; the limit is {cap}",
                {"limit": cap, "length": len(text)},
            )
        if not text.strip():
            raise errors.invalid_params(["message: must not be empty"])

    def _check_rate(self, source: str, sid: str) -> None:
        limit = self.config.prompt_rate_per_minute
        now = trio.current_time()
        times = self._rates.setdefault((source, sid), deque())
        while times and now - times[0] >= RATE_WINDOW:
            times.popleft()
        if len(times) >= limit:
            retry = max(1, int(RATE_WINDOW - (now - times[0]) + 0.999))
            raise errors.RpcError(
                errors.RATE_LIMITED,
                f"too many prompts from {source} to {sid}: at most {limit} per minute; retry in {retry} s",
                {"retry_after": retry, "limit": limit, "window_s": 60},
            )
        times.append(now)

    def _queue_prompt(
        self, c: Any, sid: str, text: str, mode: str, source: str, actor: str, now: bool
    ) -> int:
        cur = c.execute(
            "INSERT INTO session_prompts(session_id, sender, text, mode, state, created_at) "
            "VALUES (?,?,?,?, 'queued', ?)",
            (sid, source, text, mode, utcnow()),
        )
        pid = int(cur.lastrowid or 0)
        self.app.record(
            actor,
            "session",
            sid,
            "session.prompt",
            {
                "prompt_id": pid,
                "source": source,
                "mode": mode,
                "chars": len(text),
                "now": now,
                "text": text[:200],
            },
        )
        return pid

    def _deliverable(self, s: LiveSession) -> bool:
        if s.is_exited or trio.current_time() < s.awaiting_confirm_until:
            return False
        if s.agent == "claude" and not s.terminal.bracketed_paste:
            return False  # the TUI is not up (or is leaving)
        return s.at_prompt

    async def prompt(self, sid: str, text: str, mode: str, now: bool, actor: str) -> dict[str, Any]:
        source = prompt_source(actor)
        s = self._running(sid, "prompt it")
        self._check_prompt_text(text)
        self._check_rate(source, sid)
        with self.db.transaction() as c:
            pid = self._queue_prompt(c, sid, text, mode, source, actor, now)
            ahead = c.execute(
                "SELECT COUNT(*) FROM session_prompts WHERE session_id=? AND state='queued' AND id<?",
                (sid, pid),
            ).fetchone()[0]
        if now or (not ahead and self._deliverable(s)):
            await self._deliver(s, pid, text, mode)
            return {"session_id": sid, "prompt_id": pid, "state": "delivered", "source": source}
        s.kick()
        return {"session_id": sid, "prompt_id": pid, "state": "queued", "source": source, "ahead": ahead,
                "status": s.status}

    async def _deliver(self, s: LiveSession, pid: int, text: str, mode: str) -> None:
        """Paste ``text`` (bracketed when the program enabled it), then Enter unless ``mode`` is paste."""
        body = text.replace("\r\n", "\n").replace("\r", "\n").encode().replace(PASTE_END, b"")
        paste = PASTE_START + body + PASTE_END if s.terminal.bracketed_paste else body
        # Claude confirms a submitted prompt (UserPromptSubmit); until then the next one waits.
        confirmable = s.agent == "claude" and mode == "send"
        s.awaiting_confirm_until = trio.current_time() + CONFIRM_TIMEOUT if confirmable else 0.0
        with self.db.transaction() as c:  # taken off the queue first: delivered exactly once
            c.execute("UPDATE session_prompts SET state='delivered', delivered_at=? WHERE id=?", (utcnow(), pid))
        self._wake_waiters(s.id)  # the queue changed (no event says so)
        try:
            await self._write(s, *((paste, b"\r") if mode == "send" else (paste,)))
        except errors.RpcError:
            s.awaiting_confirm_until = 0.0
            with self.db.transaction() as c:
                c.execute("UPDATE session_prompts SET state='failed' WHERE id=?", (pid,))
            self._wake_waiters(s.id)
            raise

    async def _delivery_loop(self, s: LiveSession) -> None:
        while not s.is_exited:
            changed = s.changed
            if s.agent == "claude" and s.status == "spawning" and s.terminal.bracketed_paste:
                self._set_status(s, "idle", SYSTEM, source="terminal")  # the TUI is up, even if no hook said so
                continue
            if self._deliverable(s):
                row = self.db.conn.execute(
                    "SELECT id, text, mode FROM session_prompts WHERE session_id=? AND state='queued' "
                    "ORDER BY id LIMIT 1",
                    (s.id,),
                ).fetchone()
                if row is not None:
                    try:
                        await self._deliver(s, row["id"], row["text"], row["mode"])
                    except errors.RpcError as exc:  # marked failed; the next one may fare better
                        log.warning(
                            "session %s: queued prompt %s not delivered: %s", s.id, row["id"], exc.message
                        )
                    continue
            wait = s.awaiting_confirm_until - trio.current_time()
            with trio.move_on_after(wait if wait > 0 else float("inf")):
                await changed.wait()

    def _confirm(self, s: LiveSession, prompt: str) -> bool:
        """Mark the delivered prompt that ``prompt`` (what the agent says it got) matches as confirmed."""
        rows = self.db.conn.execute(
            "SELECT id, sender, text FROM session_prompts WHERE session_id=? "
            "AND state='delivered' ORDER BY id",
            (s.id,),
        ).fetchall()
        want = _norm(prompt)
        match = next((r for r in rows if _norm(r["text"]) == want), None)
        if match is None:
            match = next(
                (r for r in rows if want and (_norm(r["text"]) in want or want in _norm(r["text"]))), None
            )
        if match is None:
            return False
        with self.db.transaction() as c:
            c.execute("UPDATE session_prompts SET state='confirmed', confirmed_at=? WHERE id=?",
                      (utcnow(), match["id"]))
            self.app.record(s.id, "session", s.id, "session.prompt_delivered",
                            {"prompt_id": match["id"], "source": match["sender"]})
        return True

    # -- hooks ------------------------------------------------------------------------------------

    async def hook(self, sid: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply one Claude Code hook report; answer what the hook should print."""
        app = self.app
        summary: dict[str, Any] = {"event": event}
        for key in ("source", "tool_name", "notification_type", "reason", "message"):
            if isinstance(payload.get(key), (str, int, float, bool)):
                summary[key] = payload[key] if not isinstance(payload[key], str) else payload[key][:200]
        app.record(sid, "session", sid, "session.hook", summary)
        s = self.sessions.get(sid)
        stdout = ""
        if event == "SessionStart":
            # The hook knows best where the transcript is (e.g. after a resume).
            with self.db.transaction() as c:
                for key, column in (
                    ("session_id", "claude_session_id"),
                    ("transcript_path", "transcript_path"),
                ):
                    if isinstance(payload.get(key), str):
                        c.execute(f"UPDATE sessions SET {column}=? WHERE id=?", (payload[key], sid))
            if s is not None and s.status == "spawning":
                self._set_status(s, "idle", sid, source="hook:SessionStart")
        elif event == "UserPromptSubmit":
            if s is not None:
                if isinstance(payload.get("prompt"), str) and self._confirm(s, payload["prompt"]):
                    s.awaiting_confirm_until = 0.0
                self._set_attention(s, None, sid)
                self._set_status(s, "working", sid, source="hook:UserPromptSubmit")
        elif event in ("PreToolUse", "PostToolUse", "PostToolUseFailure"):
            if s is not None:
                if s.status == "waiting_input" and s.waiting_kind in ATTENTION_TYPES:
                    self._set_attention(s, None, sid)
                self._set_status(s, "working", sid, source=f"hook:{event}")
        elif event == "Stop":
            blocked = False
            with trio.move_on_after(EXTENSION_TIMEOUT):
                decision = await app.hook_extensions.stop_decision(app, sid, payload)
                if decision:
                    stdout = json.dumps(decision)
                    blocked = decision.get("decision") == "block"
            if s is not None and not blocked:  # a blocked Stop: the agent goes on working
                self._set_status(s, "idle", sid, source="hook:Stop")
        elif event == "Notification":
            kind = payload.get("notification_type")
            if s is not None and (kind in ATTENTION_TYPES or kind == "idle_prompt"):
                if kind in ATTENTION_TYPES:
                    self._set_attention(s, str(payload.get("message") or kind)[:500], sid)
                self._set_status(s, "waiting_input", sid, source=f"hook:Notification:{kind}")
                if s.status == "waiting_input":  # now, or already (then the kind may have changed)
                    s.waiting_kind = kind
                    s.kick()
        if event in ("UserPromptSubmit", "PostToolUse"):
            with trio.move_on_after(EXTENSION_TIMEOUT):
                text = await app.hook_extensions.context(app, sid, event, payload)
                if text and event == "UserPromptSubmit":
                    stdout = text
                elif text:
                    stdout = json.dumps({"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}})
        with trio.move_on_after(EXTENSION_TIMEOUT):
            await app.hook_extensions.notify(app, sid, event, payload)
        return {"stdout": stdout}

    def transcript_state(self, sid: str, state: str) -> None:
        """The third status source: the turn state read from the session's transcript.

        Hooks are immediate, the transcript lags them, so it only corrects a status that has been
        stable for :data:`TRANSCRIPT_SETTLE` (re-checked then if it is too fresh now), and never moves
        a session out of ``spawning`` or ``exited``.
        """
        s = self.sessions.get(sid)
        if s is None or s.is_exited:
            return
        s.transcript_state = state
        self._apply_transcript(s)

    def _apply_transcript(self, s: LiveSession) -> None:
        target = TRANSCRIPT_STATUS.get(s.transcript_state or "")
        if target is None or s.is_exited or s.status in ("spawning", target):
            return
        if s.status == "waiting_input" and target == "idle":
            return  # a hook-reported dialog or idle prompt is more precise than "the turn ended"
        wait = s.status_changed_at + TRANSCRIPT_SETTLE - trio.current_time()
        if wait > 0:
            if self._nursery is not None:
                self._nursery.start_soon(self._recheck_transcript, s, s.transcript_state, wait)
            return
        self._set_status(s, target, SYSTEM, source=f"transcript:{s.transcript_state}")

    async def _recheck_transcript(self, s: LiveSession, state: str | None, delay: float) -> None:
        await trio.sleep(delay)
        if s.transcript_state == state:
            self._apply_transcript(s)

    # -- waiting for sessions -----------------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        if event["topic"] in WAIT_TOPICS:
            self._wake_waiters(event["data"].get("session_id"))

    def _wake_waiters(self, sid: str | None) -> None:
        for ev in self._waiters.get(sid or "", ()):
            ev.set()

    def reached(self, row: Any, until: str) -> tuple[bool, float | None]:
        """Whether the session of ``row`` is ``until`` now; when it might become so without an event, the
        time to look again.

        ``exited`` is final. ``idle`` means the agent will not go on by itself: status ``idle`` or
        ``waiting_input`` with no prompt queued and none delivered but unconfirmed (a just-spawned
        agent is briefly idle before its first prompt lands), or a dialog waiting for a person;
        an exited session is idle too.
        """
        sid, status = row["id"], row["status"]
        if status == "exited":
            return True, None
        if until == "exited" or status not in ("idle", "waiting_input"):
            return False, None
        if status == "waiting_input" and row["needs_attention"]:
            return True, None  # a dialog is open: nothing happens until someone answers it
        queued = self.db.conn.execute(
            "SELECT COUNT(*) FROM session_prompts WHERE session_id=? AND state='queued'", (sid,)
        ).fetchone()[0]
        if queued:
            return False, None
        live = self.sessions.get(sid)
        if live is not None and live.awaiting_confirm_until > trio.current_time():
            return False, live.awaiting_confirm_until
        return True, None

    def wait_state(self, sids: Sequence[str], until: str, done: bool) -> dict[str, Any]:
        sessions: list[dict[str, Any]] = []
        reached: list[str] = []
        pending: list[str] = []
        for sid in sids:
            row = self.row(sid)
            ok = self.reached(row, until)[0]
            (reached if ok else pending).append(sid)
            sessions.append({"id": sid, "name": row["name"], "status": row["status"], "reached": ok,
                             "exit_reason": row["exit_reason"], "exit_code": row["exit_code"],
                             "needs_attention": row["needs_attention"]})
        return {"until": until, "done": done, "reached": reached, "pending": pending, "sessions": sessions}

    async def wait(self, sids: Sequence[str], until: str, timeout: float | None) -> dict[str, Any]:
        """Until every session in ``sids`` is ``until`` (see :meth:`reached`) or ``timeout`` passes.

        Woken by the sessions' ``session.status`` / prompt events through the bus listener, never
        by polling; the only timer is the end of an unconfirmed prompt's confirmation window.
        """
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        while True:
            wake = trio.Event()
            for sid in sids:  # registered before looking: no event can slip in between
                self._waiters.setdefault(sid, set()).add(wake)
            try:
                recheck = math.inf
                pending = False
                for sid in sids:
                    ok, again = self.reached(self.row(sid), until)
                    if not ok:
                        pending = True
                        if again is not None:
                            recheck = min(recheck, again)
                if not pending or trio.current_time() >= deadline:
                    await trio.lowlevel.checkpoint()
                    return self.wait_state(sids, until, not pending)
                with trio.move_on_at(min(deadline, recheck)):
                    await wake.wait()
            finally:
                for sid in sids:
                    waiting = self._waiters.get(sid)
                    if waiting is not None:
                        waiting.discard(wake)
                        if not waiting:
                            del self._waiters[sid]

    def waiter_count(self) -> int:
        return sum(len(v) for v in self._waiters.values())

    # -- attach -----------------------------------------------------------------------------------

    async def attach(self, conn: Connection, sid: str, rows: int | None, cols: int | None, actor: str) -> str:
        """Stream the session's terminal to ``conn`` until detached, exited or disconnected; the reason."""
        s = self._live(sid, "attach to it")
        if rows and cols and not s.is_exited:
            await self.resize(sid, rows, cols, actor)
        viewer = Viewer()
        await self._sync_screen(s)
        repaint = s.terminal.render_ansi()
        offset = s.scrollback.total
        s.viewers.append(viewer)  # no checkpoint since the snapshot: nothing is missed or doubled
        mine = conn.extras.setdefault("attach", {}).setdefault(sid, [])
        mine.append(viewer)
        self.app.record(actor, "session", sid, "session.attach", {"attached": True, "viewers": len(s.viewers)})
        reason = "disconnected"
        try:
            # The attacher going away ends the stream at once, not at the next heartbeat.
            with conn.cancel_when_gone():
                await self._output(conn, sid, repaint, offset, repaint=True)
                reason = await self._stream(conn, s, viewer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            s.viewers.remove(viewer)
            mine.remove(viewer)
            try:
                self.app.record(actor, "session", sid, "session.attach",
                                {"attached": False, "reason": reason, "viewers": len(s.viewers)})
            except Exception:
                log.debug("detach of %s not recorded", sid, exc_info=True)
        return reason

    async def _stream(self, conn: Connection, s: LiveSession, viewer: Viewer) -> str:
        """The attach loop after the first repaint: ``detached`` or ``exited``."""
        while not viewer.detached:
            if viewer.needs_repaint:
                await self._sync_screen(s)
                viewer.needs_repaint = False
                viewer.take()
                await self._output(conn, s.id, s.terminal.render_ansi(), s.scrollback.total, repaint=True)
                continue
            data = viewer.take()
            if data:
                await self._output(conn, s.id, data, s.scrollback.total, repaint=False)
                continue
            if s.is_exited:
                await conn.notify("session.exited", {"id": s.id, "exit_code": s.exit_code,
                                                     "exit_reason": self.row(s.id)["exit_reason"]})
                return "exited"
            with trio.move_on_after(HEARTBEAT) as idle:
                await viewer.wait()
            if idle.cancelled_caught:
                await conn.notify("session.heartbeat", {"id": s.id})
        return "detached"

    @staticmethod
    async def _output(conn: Connection, sid: str, data: bytes, offset: int, *, repaint: bool) -> None:
        await conn.notify("session.output", {"id": sid, "repaint": repaint, "offset": offset,
                                             "data": base64.b64encode(data).decode()})

    def detach(self, conn: Connection, sid: str) -> int:
        viewers = list(conn.extras.get("attach", {}).get(sid, []))
        for v in viewers:
            v.detached = True
            v.poke()
        return len(viewers)

    @staticmethod
    def attached_on(conn: Connection | None, sid: str) -> bool:
        return bool(conn is not None and conn.extras.get("attach", {}).get(sid))


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
