"""TranscriptService: tail every Claude session's transcript, keep its digest, push changes, escalate.

One instance per daemon, ``app.transcripts``.  Why it exists: a coordinator cannot afford to read its
workers' raw transcripts, so the daemon follows each one as it is written and keeps a small
:class:`shared.digest.SessionDigest` per session (issue 4).

Per watched session there is one trio task.  It sleeps until a change hint arrives (inotify/watchfiles,
see :mod:`maestrod.transcripts.watch`) or the stat-poll interval passes, then lets the session's tailers
(:class:`maestrod.transcripts.tailer.TranscriptTailer`: the main transcript, plus every
``<transcript dir>/<claude session uuid>/subagents/agent-*.jsonl``, attributed to the session) feed new bytes
into the digest, and publishes what changed:

* ``session.digest`` - new entries (both modes), entries whose ``×N`` grew, state, attention, totals;
* ``session.needs_attention`` - at once, in the same transaction, when the escalation verdict changes
  (also the ``sessions.needs_attention`` column and a timeline row);
* the transcript turn state, the session's third status source, to the session service's
  ``transcript_state`` (given at construction).

Checkpoints (the digest's state, parser offsets and file fingerprints) go to the store's
``transcript_checkpoints`` table, debounced (``[digest] checkpoint_interval``), on unwatch and at shutdown,
so a restart neither loses nor repeats entries: a checkpoint always pairs an offset with the state
derived from exactly the bytes before it.

Public API (for the session manager and the handlers): :meth:`watch`, :meth:`unwatch`, :meth:`digest`,
:meth:`ensure`, and ``context`` (the coordinator context, :mod:`maestrod.transcripts.context`).  How
sessions reach it is in :func:`wire_sessions` - the one place to rewire.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs
import orjson
import trio
import trio.lowlevel

from maestrod.config import ContextSettings, DigestSettings
from maestrod.events import EventBus
from maestrod.recorder import Recorder
from maestrod.sessions.hooks import HookExtensions
from maestrod.sessions.store import SessionStore
from maestrod.store.db import Database, utcnow
from maestrod.store.tasks import TaskStore
from maestrod.transcripts.context import CoordinatorContexts
from maestrod.transcripts.tailer import TranscriptTailer
from maestrod.transcripts.watch import DirWatcher, make_watcher
from shared.digest import (
    MODES,
    DigestConfig,
    DigestEntry,
    DigestUpdate,
    SessionDigest,
    agent_label_for_path,
)
from shared.transcript import PromptEvent, TurnState

log = logging.getLogger("maestrod.transcripts")

SYSTEM = "system"
#: Exited sessions whose digests stay in memory (others are loaded from the store on demand).
KEEP_CLOSED = 64
#: Give up waiting for a just-watched session's first read after this long (it is still being read).
FIRST_POLL_WAIT = 5.0


def digest_config(settings: DigestSettings) -> DigestConfig:
    """The pure digest's tunables from the ``[digest]`` config section: every :class:`DigestConfig` field is
    the setting of the same name, except that ``retain`` keeps at least a ``window``."""
    same = {f.name: getattr(settings, f.name) for f in attrs.fields(DigestConfig) if f.name != "retain"}
    return DigestConfig(retain=max(settings.retain, settings.window, 1), **same)


def subagent_dir(transcript_path: str) -> tuple[str, str]:
    """``(<dir>/<uuid>, <dir>/<uuid>/subagents)`` for ``<dir>/<uuid>.jsonl``: where Claude Code (>= 2.1)
    writes the session's subagent transcripts."""
    base = transcript_path[:-6] if transcript_path.endswith(".jsonl") else transcript_path + ".d"
    return base, os.path.join(base, "subagents")


class _Sink:
    """Feeds one file's bytes into the session digest and collects the updates (see TailSink)."""

    __slots__ = ("label", "session")

    def __init__(self, session: _Session, label: str | None) -> None:
        self.session = session
        self.label = label

    def feed(self, data: bytes) -> None:
        s = self.session
        now = s.clock()
        if self.label is None:
            update = s.digest.feed(data, now)
            # A prompt the agent received, as its transcript records it: a witness of delivery.
            s.prompts.extend(e.text for e in update.events
                             if type(e) is PromptEvent and e.source in ("user", "queued"))
        else:
            update = s.digest.feed_subagent(self.label, data, now)
        s.dirty = True
        if update.changed:
            s.updates.append(update)

    def reset(self) -> None:
        digest = self.session.digest
        parser = digest.parser if self.label is None else digest.subagents.get(self.label)
        if parser is not None:
            parser.reset(0)  # keeps the uuid set: records read again are not events again
        self.session.dirty = True


class _Session:
    """One session's digest and tailers, plus what the loop needs between polls."""

    def __init__(self, sid: str, path: str, digest: SessionDigest, clock: Callable[[], float],
                 files: dict[str, Any] | None = None) -> None:
        self.id = sid
        self.path = path
        self.digest = digest
        self.clock = clock
        self.name: str | None = None
        self.updates: list[DigestUpdate] = []
        #: Prompt texts read since the last publish (they confirm delivered prompts).
        self.prompts: list[str] = []
        self.dirty = False
        self.closing = False
        self.closed = False
        self.caught_up = False
        self.running = False
        self.wake = trio.Event()
        self.polled = trio.Event()
        #: polls started / finished, and an event kicked after each (see TranscriptService.sync)
        self.generation = 0
        self.done_generation = 0
        self.done = trio.Event()
        self.last_saved = 0.0
        self.last_state: TurnState | None = None
        self.attention = digest.attention()
        #: the reason this service wrote into ``sessions.needs_attention`` (cleared only if still ours)
        self.attention_written: str | None = None
        #: directories this session asked the watcher for (see TranscriptService._arm)
        self.armed: set[str] = set()
        self.subdir_stamp: int | None = None
        files = files or {}
        main_info = files.get("main")
        kwargs = TranscriptTailer.restore_kwargs(main_info) if main_info and main_info.get("path") == path else {}
        if kwargs:
            kwargs["offset"] = digest.parser.offset
        elif digest.parser.offset or digest.parser.pending_bytes:
            digest.parser.reset(0)  # another file than the checkpoint's: read it from its start
        self.main = TranscriptTailer(path, _Sink(self, None), **kwargs)
        self.subs: dict[str, TranscriptTailer] = {}
        saved_subs = files.get("subagents") or {}
        for label, info in saved_subs.items():
            parser = digest.subagents.get(label)
            if parser is None or not info or not info.get("path"):
                continue
            sub_kwargs = TranscriptTailer.restore_kwargs(info)
            sub_kwargs["offset"] = parser.offset
            self.subs[label] = TranscriptTailer(info["path"], _Sink(self, label), **sub_kwargs)

    def kick_done(self) -> None:
        done, self.done = self.done, trio.Event()
        done.set()

    def set_path(self, path: str) -> None:
        """Follow another main transcript (``/clear`` started a new file): same digest, new file from 0."""
        self.main.close()
        self.path = path
        self.digest.parser.reset(0)
        self.main = TranscriptTailer(path, _Sink(self, None))
        for tailer in self.subs.values():
            tailer.close()
        self.subs = {}
        self.subdir_stamp = None
        self.dirty = True

    def files_info(self) -> dict[str, Any]:
        digest = self.digest
        return {
            "main": self.main.checkpoint_info(digest.parser.offset),
            "subagents": {
                label: tailer.checkpoint_info(digest.subagents[label].offset)
                for label, tailer in self.subs.items() if label in digest.subagents
            },
        }

    def tail_stats(self) -> dict[str, Any]:
        return {"main": self.main.stats.to_dict(),
                "subagents": {label: t.stats.to_dict() for label, t in self.subs.items()}}

    def close_files(self) -> None:
        self.main.close()
        for tailer in self.subs.values():
            tailer.close()


class TranscriptService:
    """See the module docstring.  Built once at start-up (``maestrod/app.py``), which also runs :meth:`run`
    as a service and :meth:`shutdown` as a shutdown hook.

    What it uses: the database (its ``transcript_checkpoints`` table and transactions), the session store
    (paths, names, the attention column), the recorder (``session.needs_attention`` rows, ``session.digest``
    events), the bus and the hook extensions (how sessions reach it, :func:`wire_sessions`; the coordinator
    context providers), the task store (the coordinator's task board), the ``[digest]`` and ``[context]``
    settings, and ``transcript_state``: the session service's third status source, told every turn-state
    change."""

    def __init__(self, db: Database, session_store: SessionStore, recorder: Recorder, bus: EventBus,
                 hook_extensions: HookExtensions, task_store: TaskStore, settings: DigestSettings,
                 context_settings: ContextSettings, transcript_state: Callable[[str, str, float | None], None],
                 transcript_prompt: Callable[[str, str], None] | None = None) -> None:
        self.db = db
        self.session_store = session_store
        self.recorder = recorder
        self.settings = settings
        #: Where turn-state changes go (``SessionManager.transcript_state``), with the age in seconds of the
        #: newest record they rest on.
        self.transcript_state = transcript_state
        #: Where prompts read from the transcript go (``SessionManager.transcript_prompt``: they confirm
        #: delivery, like the UserPromptSubmit hook).
        self.transcript_prompt = transcript_prompt
        #: Wall clock for the digest's time rules (stuck, waiting, idle); tests may replace it.
        self.clock: Callable[[], float] = time.time
        self._sessions: dict[str, _Session] = {}
        self._closed: OrderedDict[str, _Session] = OrderedDict()
        self._routes: dict[str, dict[str, str | None]] = {}  # directory -> {session id: name filter}
        self._nursery: trio.Nursery | None = None
        #: Change hints; the real backend (an inotify fd, a watchfiles thread) is made when the service runs.
        self.watcher: DirWatcher = DirWatcher(self._on_change)
        #: ``<coordinator_context>``: rendering and the hook providers (registered by wire_sessions).
        self.context = CoordinatorContexts(session_store, task_store, self, context_settings)
        wire_sessions(bus, hook_extensions, self)

    @property
    def config(self) -> DigestConfig:
        """Digest tunables from ``[digest]`` (read when a digest is created or restored)."""
        return digest_config(self.settings)

    # ------------------------------------------------------------------------------------- public API

    def watch(self, session_id: str, transcript_path: str) -> None:
        """Tail ``transcript_path`` for ``session_id`` (at spawn; again with the new path after ``/clear``).

        Idempotent for the same path; another path keeps the digest and follows the new file from 0."""
        transcript_path = os.path.abspath(os.path.expanduser(transcript_path))
        s = self._sessions.get(session_id)
        if s is not None:
            s.closing = False
            if s.path != transcript_path:
                log.info("session %s: transcript is now %s", session_id, transcript_path)
                self._unroute(s)
                s.set_path(transcript_path)
            s.wake.set()
            return
        s = self._closed.pop(session_id, None) or self._load(session_id, transcript_path)
        if s.path != transcript_path:
            s.set_path(transcript_path)
        s.closing = s.closed = s.caught_up = False
        s.name = self._name(session_id)
        current = self.session_store.attention(session_id)
        if current is not None and current == s.attention.reason:
            s.attention_written = current  # ours, from before a restart: ours to clear
        self._sessions[session_id] = s
        self._start(s)

    def unwatch(self, session_id: str) -> None:
        """Stop tailing (the session exited): read what is left, close the files, save a checkpoint.  The
        digest stays readable (:meth:`digest`)."""
        s = self._sessions.get(session_id)
        if s is None:
            return
        s.closing = True
        if s.running:
            s.wake.set()
        else:
            self._close_session(s)

    def digest(self, session_id: str) -> SessionDigest | None:
        """The session's digest: live, recently closed, or restored from its checkpoint; None if never
        tailed."""
        s = self._sessions.get(session_id) or self._closed.get(session_id)
        if s is not None:
            return s.digest
        s = self._load_saved(session_id)
        if s is None:
            return None
        self._remember_closed(s)
        return s.digest

    def watched(self) -> list[str]:
        return list(self._sessions)

    def tail_stats(self, session_id: str) -> dict[str, Any] | None:
        s = self._sessions.get(session_id) or self._closed.get(session_id)
        return s.tail_stats() if s is not None else None

    async def sync(self, session_id: str, timeout: float = 5.0) -> bool:
        """Wait until everything written to the session's files before this call has been read (a poll
        that starts after the call has finished).  False if the session is not being tailed or the time
        ran out.  For tests and read-your-writes callers; live readers do not need it."""
        s = self._sessions.get(session_id)
        if s is None or not s.running:
            return False
        target = s.generation + 1
        s.wake.set()
        with trio.move_on_after(timeout):
            while s.done_generation < target and s.running:
                await s.done.wait()
        return s.done_generation >= target

    async def ensure(self, session_id: str) -> SessionDigest | None:
        """A fresh digest for a handler.  A live session not watched yet (e.g. its row was written by
        something else than the session manager) starts being watched; an exited one is brought up to
        the end of its file once per daemon run (its checkpoint may predate its last writes)."""
        s = self._sessions.get(session_id)
        if s is None:
            row = self.session_store.find(session_id)
            if row is None or not row["transcript_path"]:
                return self.digest(session_id)
            if row["status"] == "exited":
                return await self._catch_up(session_id, row["transcript_path"])
            if self._nursery is None:
                return self.digest(session_id)
            self.watch(session_id, row["transcript_path"])
            s = self._sessions[session_id]
        if s.running and not s.polled.is_set():
            with trio.move_on_after(FIRST_POLL_WAIT):
                await s.polled.wait()
        return s.digest

    async def _catch_up(self, session_id: str, path: str) -> SessionDigest | None:
        s = self._closed.get(session_id) or self._load_saved(session_id)
        if s is None:
            if not os.path.exists(path):
                return None
            s = self._load(session_id, path)
        if not s.caught_up:
            await self._poll(s, publish=False)
            s.updates.clear()
            s.digest.finish(self.clock())
            s.close_files()
            s.caught_up = True
            self._save(s)
        self._remember_closed(s)
        return s.digest

    # -------------------------------------------------------------------------------------- lifecycle

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The app service: the watcher plus one task per watched session."""
        self.watcher = make_watcher(self.settings.watcher, self._on_change,
                                    debounce_ms=self.settings.debounce_ms, step_ms=self.settings.step_ms)
        for s in self._sessions.values():
            s.armed.clear()  # nothing was armed on the placeholder watcher
        self._routes.clear()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.watcher.run)
                self._nursery = nursery
                self._resume_live()
                for s in list(self._sessions.values()):
                    self._start(s)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self.flush()

    async def shutdown(self) -> None:
        """Daemon stopping: read what is left and save every checkpoint (also done when cancelled)."""
        for s in list(self._sessions.values()):
            try:
                self._poll_once(s)
            except Exception:
                log.exception("session %s: final read failed", s.id)
        self.flush()

    def flush(self) -> None:
        """Save every dirty checkpoint now."""
        for s in list(self._sessions.values()) + list(self._closed.values()):
            if s.dirty:
                try:
                    self._save(s)
                except sqlite3.ProgrammingError:
                    return  # the store is closed already (tests tear the app down first)
                except Exception:
                    log.exception("session %s: checkpoint not saved", s.id)

    def _resume_live(self) -> None:
        """Sessions the store says are running (not started by this daemon's session manager, e.g. rows
        written directly) are watched too; the session manager marks a previous daemon's sessions lost
        before this runs."""
        for sid, path in self.session_store.live_transcripts():
            if sid not in self._sessions:
                self.watch(sid, path)

    def _start(self, s: _Session) -> None:
        if self._nursery is not None and not s.running:
            s.running = True
            self._nursery.start_soon(self._session_loop, s)

    async def _session_loop(self, s: _Session) -> None:
        interval = self.settings.poll_interval
        try:
            while not s.closing:
                s.wake = trio.Event()  # set by hints that arrive while we read: no change is missed
                s.generation += 1
                generation = s.generation
                try:
                    await self._poll(s)
                except sqlite3.ProgrammingError:
                    return  # the store was closed under us: the daemon is ending
                except Exception:
                    log.exception("session %s: reading the transcript failed; retrying", s.id)
                    await trio.sleep(interval)
                s.polled.set()
                s.done_generation = generation
                s.kick_done()
                if s.closing:
                    break
                self._arm(s)
                with trio.move_on_after(interval):
                    await s.wake.wait()
            self._close_session(s)
        finally:
            s.running = False
            s.kick_done()

    def _close_session(self, s: _Session) -> None:
        try:
            self._poll_once(s)
            update = s.digest.finish(self.clock())
            if update.changed:
                s.updates.append(update)
                self._publish(s)
        except sqlite3.ProgrammingError:
            return
        except Exception:
            log.exception("session %s: final read failed", s.id)
        s.close_files()
        self._unroute(s)
        s.caught_up = True
        s.closed = True
        try:
            self._save(s)
        except sqlite3.ProgrammingError:
            pass
        if self._sessions.get(s.id) is s:
            del self._sessions[s.id]
        self._remember_closed(s)

    def _remember_closed(self, s: _Session) -> None:
        self._closed[s.id] = s
        self._closed.move_to_end(s.id)
        while len(self._closed) > KEEP_CLOSED:
            _sid, old = self._closed.popitem(last=False)
            if old.dirty:
                self._save(old)

    # ------------------------------------------------------------------------------------------ reading

    async def _poll(self, s: _Session, *, publish: bool = True) -> None:
        """Read everything new (yielding between big batches), publish, re-check the time rules, and save
        a checkpoint when due; or, ``publish=False``, only read."""
        while self._poll_once(s, publish=publish):
            await trio.lowlevel.checkpoint()

    def _poll_once(self, s: _Session, *, publish: bool = True) -> bool:
        more = s.main.poll()
        self._discover_subagents(s)
        for tailer in list(s.subs.values()):
            more = tailer.poll() or more
        if publish:
            self._publish(s)
            if s.dirty and time.monotonic() - s.last_saved >= self.settings.checkpoint_interval:
                self._save(s)
        return more

    def _discover_subagents(self, s: _Session) -> None:
        _base, subdir = subagent_dir(s.path)
        try:
            stamp = os.stat(subdir).st_mtime_ns
        except OSError:
            return
        if stamp == s.subdir_stamp:
            return
        s.subdir_stamp = stamp
        try:
            names = sorted(os.listdir(subdir))
        except OSError:
            return
        for name in names:
            if not name.endswith(".jsonl"):
                continue
            path = os.path.join(subdir, name)
            label = agent_label_for_path(path)
            if label is None or label in s.subs:
                continue
            s.subs[label] = TranscriptTailer(path, _Sink(s, label))

    # ------------------------------------------------------------------------------------------ output

    def _publish(self, s: _Session) -> None:
        """Turn the collected updates (and the clock) into events: attention first, as it is urgent."""
        now = self.clock()
        updates, s.updates = s.updates, []
        appended: dict[str, list[DigestEntry]] = {mode: [] for mode in MODES}
        updated: dict[str, list[DigestEntry]] = {mode: [] for mode in MODES}
        for update in updates:
            for mode in MODES:
                appended[mode].extend(update.appended[mode])
                for entry in update.updated[mode]:
                    if not any(entry is e for e in appended[mode]) and not any(entry is e for e in updated[mode]):
                        updated[mode].append(entry)
        s.digest.poll(now)  # time rules (stuck, waiting too long) without new bytes
        attention = s.digest.last_attention
        attention_changed = not attention.same_verdict(s.attention)
        state = s.digest.state(now)
        # no state from no evidence: a transcript that has no record yet says nothing about the turn
        state_changed = state is not s.last_state and s.digest.parser.stats.records > 0
        if attention_changed:
            s.dirty = True
        if not (any(appended.values()) or any(updated.values()) or state_changed or attention_changed):
            return
        window = s.digest.window("tools", 0, now)
        with self.db.transaction() as c:
            if attention_changed:
                # The column, a timeline row and the session.needs_attention event; a reason someone else
                # wrote (a permission prompt, via the hooks) is never cleared here.
                s.attention_written = self.session_store.set_transcript_attention(
                    c, s.id, attention.reason if attention.needs_attention else None, attention.kind,
                    s.attention_written, needs_attention=attention.needs_attention, actor=SYSTEM)
            self.recorder.publish("session.digest", {
                "session_id": s.id,
                "name": s.name,
                "state": state.value,
                "needs_attention": attention.needs_attention,
                "attention_reason": attention.reason,
                "appended": {mode: [e.to_dict() for e in entries] for mode, entries in appended.items()},
                "updated": {mode: [e.to_dict() for e in entries] for mode, entries in updated.items()},
                "total_entries": {mode: s.digest.total_entries(mode) for mode in MODES},
                "running": list(window.running),
                "usage": window.usage.to_dict(),
                "cost_usd": round(window.cost_usd, 6),
                "last_activity": window.last_activity,
            })
        s.attention = attention
        prompts, s.prompts = s.prompts, []
        if self.transcript_prompt is not None:
            for text in prompts:
                try:
                    self.transcript_prompt(s.id, text)
                except Exception:
                    log.exception("session %s: prompt listener failed", s.id)
        if state_changed:
            s.last_state = state
            written = s.digest.newest_record_time()
            age = None if written is None else now - written
            try:
                self.transcript_state(s.id, state.value, age)
            except Exception:
                log.exception("session %s: turn-state listener failed", s.id)

    # ---------------------------------------------------------------------------------------- persistence

    def _save(self, s: _Session) -> None:
        checkpoint = orjson.dumps(s.digest.checkpoint())
        files = orjson.dumps(s.files_info())
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO transcript_checkpoints(session_id, path, checkpoint, files, updated_at) "
                "VALUES (?,?,?,?,?) ON CONFLICT(session_id) DO UPDATE SET path=excluded.path, "
                "checkpoint=excluded.checkpoint, files=excluded.files, updated_at=excluded.updated_at",
                (s.id, s.path, checkpoint.decode(), files.decode(), utcnow()))
        s.dirty = False
        s.last_saved = time.monotonic()

    def _load_saved(self, session_id: str) -> _Session | None:
        row = self.db.conn.execute(
            "SELECT path, checkpoint, files FROM transcript_checkpoints WHERE session_id=?",
            (session_id,)).fetchone()
        if row is None:
            return None
        try:
            digest = SessionDigest.from_checkpoint(orjson.loads(row["checkpoint"]), self.config)
            files = orjson.loads(row["files"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("session %s: unusable transcript checkpoint (%s); reading from the start", session_id, exc)
            return None
        s = _Session(session_id, row["path"], digest, self.clock, files)
        s.name = self._name(session_id)
        if digest.parser.stats.records:
            s.last_state = digest.state(self.clock())
        return s

    def _load(self, session_id: str, path: str) -> _Session:
        saved = self._load_saved(session_id)
        if saved is not None:
            return saved
        s = _Session(session_id, path, SessionDigest(config=self.config, format=self._format(session_id)),
                     self.clock)
        s.name = self._name(session_id)
        return s

    def _format(self, session_id: str) -> str:
        """The transcript format of the session's agent (a Codex session's rollout, else Claude Code's)."""
        row = self.session_store.find(session_id)
        return "codex" if row is not None and row["agent"] == "codex" else "claude"

    def _name(self, session_id: str) -> str | None:
        return self.session_store.name(session_id)

    # --------------------------------------------------------------------------------------- change hints

    def _arm(self, s: _Session) -> None:
        """Ask for hints on the directories that exist now: the transcript's, ``<uuid>/`` and
        ``<uuid>/subagents/`` (created later by Claude Code; retried on every poll until they exist)."""
        base, subdir = subagent_dir(s.path)
        # in the (shared) project directory only our file and our <uuid>/ directory matter
        wanted = ((os.path.dirname(s.path), os.path.basename(s.path)), (base, None), (subdir, None))
        for directory, name in wanted:
            directory = os.path.normpath(directory)
            if directory in s.armed or not self.watcher.add(directory):
                continue
            s.armed.add(directory)
            self._routes.setdefault(directory, {})[s.id] = name

    def _unroute(self, s: _Session) -> None:
        for directory in s.armed:
            routes = self._routes.get(directory)
            if routes is not None:
                routes.pop(s.id, None)
                if not routes:
                    del self._routes[directory]
            self.watcher.discard(directory)
        s.armed.clear()

    def _on_change(self, directory: str, name: str | None) -> None:
        routes = self._routes.get(directory)
        if not routes:
            return
        for sid, want in routes.items():
            if want is not None and name is not None and name != want and name != want[:-6]:
                continue  # another session's file in a shared project directory
            s = self._sessions.get(sid)
            if s is not None:
                s.wake.set()


def wire_sessions(bus: EventBus, hook_extensions: HookExtensions, service: TranscriptService) -> None:
    """How sessions reach the service, without the session code knowing about it: a spawned Claude
    session (``session.spawned`` with a transcript path) is watched, an exited one unwatched, and a
    SessionStart hook switches to the transcript path the store holds after it (``/clear``, a fork: the
    hook intake stores the hook's path only once it passed its checks); the coordinator
    context providers are plugged into the hooks too.  Replace this with direct calls from the session
    manager if preferred."""

    def on_event(event: dict[str, Any]) -> None:
        topic = event["topic"]
        data = event["data"]
        if topic == "session.spawned":
            session = data.get("session") or {}
            if session.get("transcript_path") and session.get("id"):
                service.watch(session["id"], session["transcript_path"])
        elif topic == "session.resumed":
            # A relaunched agent (--resume) goes on writing the same transcript: tailing goes on from the
            # checkpoint; a fork's new file would be switched to by its SessionStart hook.
            if data.get("transcript_path") and data.get("session_id"):
                service.watch(data["session_id"], data["transcript_path"])
        elif topic == "session.transcript":
            # A Codex session's rollout became known (its first prompt created it; docs/codex.md).
            if data.get("transcript_path") and data.get("session_id"):
                service.watch(data["session_id"], data["transcript_path"])
        elif topic == "session.status" and data.get("to") in ("exited", "hibernated"):
            sid = data.get("session_id")
            if sid:
                service.unwatch(sid)

    bus.add_listener(on_event)

    def on_session_start(session_id: str, _event: str, _payload: dict[str, Any]) -> None:
        # Never the hook's own path: the one the hook intake accepted and stored (it refuses a path outside
        # the session's Claude project directory, or a FIFO, a symbolic link...).
        row = service.session_store.find(session_id) if session_id in service._sessions else None
        if row is not None and row["transcript_path"]:
            service.watch(session_id, row["transcript_path"])

    hook_extensions.add_listener("SessionStart", on_session_start)
    service.context.register(hook_extensions)
