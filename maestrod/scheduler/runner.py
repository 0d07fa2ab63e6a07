"""The run service: carries out what :func:`maestrod.scheduler.core.decide` decides, for every active run.

One loop for all runs, woken by the events that can change a decision (a session's status, a task report, a
task's status or dependencies): each wake re-reads the facts from the store, asks the pure core and acts --
settles assignments, blocks or re-queues tasks, stops or reuses workers, spawns new ones, ends the run. One
loop means one decision at a time: a spawn is never decided on facts an earlier action of the same wake has
already changed. The runs are in SQLite (:class:`~maestrod.scheduler.store.RunStore`): after a daemon restart
the loop picks them up where they were (see :meth:`Runner.recover`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from maestrod.lifecycle import ShuttingDown
from maestrod.recorder import Recorder
from maestrod.scheduler import core
from maestrod.scheduler.store import RunStore
from maestrod.sessions.store import SessionStore
from maestrod.store.projects import ProjectStore
from maestrod.store.tasks import TaskStore
from shared import errors
from shared.convert import structure_params, unstructure
from shared.messages.run import RunStart
from shared.messages.session import Session, SessionSpawn
from shared.messages.task import Task

log = logging.getLogger("maestrod.scheduler")

SYSTEM = "system"
#: Event topics after which a run may decide something new.
WAKE_TOPICS = ("session.status", "task.", "run.")
#: Options of ``run.start`` that become the workers' ``session.spawn`` params as they are.
SPAWN_KEYS = ("template", "agent", "cwd", "allowed_tools", "permission_mode", "env", "argv", "worktree")

SpawnFn = Callable[[SessionSpawn], Awaitable[Session]]
StopFn = Callable[[str], Awaitable[Any]]
PromptFn = Callable[[str, str], Awaitable[Any]]


def first_prompt(run_id: str, task: Task, extra: str | None) -> str:
    """What a worker is told first: its task, and how the run learns that it is done."""
    text = (f"You are a worker of maestro run {run_id}. Your task is {task.id}: {task.title}. Do it now. When it "
            f"is done and verified, run `maestroctl task report complete {task.id} --message \"<what changed>\"`; "
            f"if you cannot finish it, `maestroctl task report blocked {task.id} --message \"<why>\"`.")
    return text + ("\n\n" + extra if extra else "")


def spawn_params(row: Any, options: dict[str, Any], task: Task, name: str, parent: str | None) -> SessionSpawn:
    spawn = {k: options[k] for k in SPAWN_KEYS if k in options and options[k] not in (None, [], {})}
    if options.get("template") is None:
        spawn.pop("template", None)
    prompt = None if options.get("agent") == "command" else first_prompt(row["id"], task, options.get("prompt"))
    return structure_params({**spawn, "project": row["project_id"], "name": name, "task_ids": [task.id],
                             **({"prompt": prompt} if prompt else {}), **({"parent": parent} if parent else {})},
                            SessionSpawn)


def check_options(p: RunStart, project_id: str) -> None:
    """The workers' spawn params must be valid before the run starts (-32602 naming the field)."""
    options = unstructure(p)
    spawn = {k: options[k] for k in SPAWN_KEYS if options.get(k) not in (None, [], {})}
    structure_params({**spawn, "project": project_id, "name": "check"}, SessionSpawn)
    if p.agent == "command" and not p.argv:
        raise errors.invalid_params(["argv: a command worker needs the program to run"])


class Runner:
    def __init__(self, store: RunStore, tasks: TaskStore, projects: ProjectStore, sessions: SessionStore,
                 recorder: Recorder, *, spawn: SpawnFn, stop: StopFn, prompt: PromptFn,
                 shutting_down: ShuttingDown) -> None:
        self.store = store
        self.tasks = tasks
        self.projects = projects
        self.sessions = sessions
        self.recorder = recorder
        self._spawn = spawn
        self._stop = stop
        self._prompt = prompt
        self.shutting_down = shutting_down
        self._changed = trio.Event()
        #: Workers the run asked to stop (they keep their slot until their process has exited).
        self._stopping: set[str] = set()
        self._nursery: trio.Nursery | None = None
        #: Workers handing their task over (maestrod/scheduler/handoff.py): they keep their slot, even
        #: hibernated, until their successor holds the assignment.
        self.handing_off: set[str] = set()
        #: A Claude worker's context use from its transcript (``run.status``), set by the app from the hand-off
        #: service: {model, tokens, window, share} or None.
        self.context_of: Callable[[str | None], dict[str, Any] | None] = lambda path: None
        #: Highest number of live workers seen per run (``run.status``: ``peak_live``).
        self.peak_live: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        if event["topic"].startswith(WAKE_TOPICS):
            self._changed.set()

    def poke(self) -> None:
        self._changed.set()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.recover()
            task_status.started()
            while True:
                await self._changed.wait()
                self._changed = trio.Event()
                if self.shutting_down.is_set():
                    continue  # workers ending because the daemon stops are not failures (see recover)
                for row in self.store.active():
                    try:
                        await self.step(row["id"])
                    except Exception:
                        log.exception("run %s: step failed", row["id"])

    def recover(self) -> None:
        """At start-up: an assignment whose worker ended while no daemon watched (the daemon stopped, or
        crashed) was not the worker's failure: its task goes back to ``todo`` (recorded), and the run goes on."""
        for row in self.store.active():
            for a in self.store.running(row["id"]):
                s = self.sessions.find(a.session_id)
                if s is not None and s["status"] != "exited":
                    continue
                reason = (f"its worker {a.session_id} ended while the daemon was down or stopping; the task goes "
                          "back to the run's queue")
                self.store.settle(row["id"], a, "interrupted", reason)
                self._release(a)
                self._task_status(a.task_id, "todo", row["id"], reason)
        self._changed.set()

    # -- one step of one run --------------------------------------------------------------------------

    def view(self, rid: str) -> tuple[core.RunView, dict[str, Any]]:
        row = self.store.row(rid)
        options = self._options(row)
        running = self.store.running(rid)
        busy = {a.session_id for a in running}
        workers = []
        for sid in self.store.sessions(rid):
            s = self.sessions.find(sid)
            if s is None or (s["status"] == "exited" and sid not in busy):
                self._stopping.discard(sid)
                continue
            status = "working" if sid in self.handing_off and s["status"] == "hibernated" else s["status"]
            workers.append(core.Worker(sid, status, s["exit_reason"], s["exit_code"], sid in self._stopping))
        tasks: dict[str, core.TaskState] = {}
        for a in running:
            try:
                t = self.tasks.get(a.task_id)
            except errors.RpcError:
                continue
            tasks[a.task_id] = core.TaskState(t.status, self._part(a.session_id, a.task_id))
        scope = self._scope(row["root_task_id"])
        ready = [t.id for t in self.tasks.ready(row["project_id"]) if scope is None or t.id in scope]
        live = sum(1 for w in workers if w.status not in core.PARKED and w.status != "queued")
        self.peak_live[rid] = max(self.peak_live.get(rid, 0), live)
        view = core.RunView(row["workers"], bool(options.get("reuse")), int(options.get("retries", 0)),
                            row["state"], running, workers, tasks, ready, self.store.failures(rid))
        return view, options

    def _options(self, row: Any) -> dict[str, Any]:
        """The run's options as it was started, the workers' environment values read back."""
        options: dict[str, Any] = json.loads(row["options"])
        options["env"] = self.store.env(row["id"])
        return options

    def _part(self, sid: str, tid: str) -> str | None:
        r = self.sessions.db.conn.execute("SELECT status FROM session_tasks WHERE session_id=? AND task_id=?",
                                          (sid, tid)).fetchone()
        return None if r is None else str(r[0])

    def _scope(self, root: str | None) -> set[str] | None:
        if root is None:
            return None
        try:
            return {root, *(t.id for t in self.tasks.descendants(root))}
        except errors.RpcError:
            return set()

    async def step(self, rid: str) -> None:
        view, options = self.view(rid)
        for action in core.decide(view):
            await self._act(rid, options, action)

    async def _act(self, rid: str, options: dict[str, Any], action: core.Action) -> None:
        if isinstance(action, core.Settle):
            a = action.assignment
            self.store.settle(rid, a, action.outcome, action.reason)
            if action.outcome == "failed":
                self._release(a)
            self.recorder.record(SYSTEM, "run", rid, f"run.task_{action.outcome}",
                                 {"run_id": rid, "task_id": a.task_id, "session_id": a.session_id,
                                  "attempt": a.attempt, "reason": action.reason})
        elif isinstance(action, core.BlockTask):
            self._task_status(action.task_id, "blocked", rid, action.reason)
        elif isinstance(action, core.RetryTask):
            self._task_status(action.task_id, "todo", rid, action.reason)
        elif isinstance(action, core.StopWorker):
            self._stopping.add(action.session_id)
            assert self._nursery is not None
            self._nursery.start_soon(self._stop_worker, action.session_id)
        elif isinstance(action, core.Assign):
            await self._assign(rid, options, action.session_id, action.task_id)
        elif isinstance(action, core.Spawn):
            await self._spawn_worker(rid, options, action.task_id)
        elif isinstance(action, core.EndRun):
            self.store.set_state(rid, action.state, action.reason)
            self.peak_live.pop(rid, None)
            self.recorder.record(SYSTEM, "run", rid, "run.finished",
                                 {"run_id": rid, "state": action.state, "reason": action.reason})

    def _release(self, a: core.Assignment) -> None:
        """The worker's part of the task no longer holds it back: another worker may complete it."""
        with self.sessions.db.transaction() as c:
            self.sessions.set_task_part(c, a.session_id, a.task_id, core.RELEASED)

    async def _stop_worker(self, sid: str) -> None:
        try:
            await self._stop(sid)
        except errors.RpcError as exc:
            log.info("run worker %s: not stopped: %s", sid, exc.message)

    def _task_status(self, tid: str, status: str, rid: str, reason: str) -> None:
        try:
            old = self.tasks.get(tid)
            if old.status == status or old.status in ("completed", "cancelled", "archived"):
                return
            _, task = self.tasks.set_status(tid, status)
        except errors.RpcError as exc:
            log.info("run %s: task %s not moved to %s: %s", rid, tid, status, exc.message)
            return
        data = unstructure(task)
        data.pop("children", None)
        self.recorder.record(SYSTEM, "task", tid, "task.status_changed",
                             {"from": old.status, "to": status, "via": "run", "run_id": rid, "reason": reason},
                             event={"actor": SYSTEM, "task": data, "from": old.status, "to": status, "via": "run",
                                    "run_id": rid, "reason": reason})

    async def _assign(self, rid: str, options: dict[str, Any], sid: str, tid: str) -> None:
        """``--reuse``: the worker takes the next task (a prompt names it)."""
        task = self.tasks.get(tid)
        self._task_status(tid, "in_progress", rid, f"given to worker {sid}")
        with self.sessions.db.transaction() as c:
            self.sessions.set_task_part(c, sid, tid, "in_progress")
        self.store.assign(rid, tid, sid, self.store.next_attempt(rid, tid))
        self.recorder.record(SYSTEM, "run", rid, "run.task_started",
                             {"run_id": rid, "task_id": tid, "session_id": sid, "reused": True})
        assert self._nursery is not None
        self._nursery.start_soon(self._prompt_worker, sid, first_prompt(rid, task, options.get("prompt")))

    async def _prompt_worker(self, sid: str, text: str) -> None:
        try:
            await self._prompt(sid, text)
        except errors.RpcError as exc:
            log.warning("run worker %s: its next task could not be prompted: %s", sid, exc.message)

    async def _spawn_worker(self, rid: str, options: dict[str, Any], tid: str) -> None:
        row = self.store.row(rid)
        task = self.tasks.get(tid)
        attempt = self.store.next_attempt(rid, tid)
        number = len(self.store.sessions(rid)) + 1
        parent = row["started_by"] if row["started_by"] != "human" else None
        if parent is not None:
            s = self.sessions.find(parent)
            parent = parent if s is not None and s["status"] != "exited" else None
        name = f"{rid}-w{number}"
        self._task_status(tid, "in_progress", rid, f"a worker is spawned for it ({name})")
        try:
            params = spawn_params(row, options, task, name, parent)
            session = await self._spawn(params)
        except errors.RpcError as exc:
            failed = exc.data.get("session") if isinstance(exc.data, dict) else None
            reason = f"its worker could not be started: {exc.message}"
            if failed:
                self.store.assign(rid, tid, str(failed), attempt)
                self.store.settle(rid, core.Assignment(tid, str(failed), attempt), "failed", reason)
            self._task_status(tid, "blocked", rid, reason)
            self.recorder.record(SYSTEM, "run", rid, "run.task_failed",
                                 {"run_id": rid, "task_id": tid, "session_id": failed, "reason": reason})
            return
        self.store.assign(rid, tid, session.id, attempt)
        self.recorder.record(SYSTEM, "run", rid, "run.task_started",
                             {"run_id": rid, "task_id": tid, "session_id": session.id, "name": name,
                              "attempt": attempt, "session_status": session.status})

    # -- context hand-off (maestrod/scheduler/handoff.py) ----------------------------------------------

    def assignment_of(self, sid: str) -> tuple[str, str] | None:
        found = self.store.assignment_of(sid)
        return None if found is None else (found[0], found[1].task_id)

    async def successor(self, rid: str, tid: str, predecessor: str, seed: str) -> str:
        """Spawn the session that takes ``predecessor``'s task over (same run options; its worktree or its
        directory) and move the assignment to it."""
        found = self.store.assignment_of(predecessor)
        if found is None:
            raise errors.conflict(f"session {predecessor} no longer holds a task of run {rid}")
        _, a = found
        row = self.store.row(rid)
        options = self._options(row)
        prev = self.sessions.row(predecessor)
        if options.pop("worktree", False):
            options["worktree_of"] = predecessor
        else:
            options["cwd"] = prev["cwd"]
        task = self.tasks.get(tid)
        name = f"{rid}-w{len(self.store.sessions(rid)) + 1}"
        params = spawn_params(row, options, task, name, prev["parent_id"])
        params = attrs.evolve(params, prompt=seed, worktree_of=options.get("worktree_of"))
        try:
            session = await self._spawn(params)
            with self.sessions.db.transaction() as c:
                self.sessions.set_task_part(c, predecessor, tid, core.RELEASED)
            reason = f"its context filled up; {session.id} took the task over"
            attempt = self.store.hand_over(rid, a, session.id, reason)
        finally:
            self.handing_off.discard(predecessor)
            self._changed.set()
        self.recorder.record(SYSTEM, "run", rid, "run.task_started",
                             {"run_id": rid, "task_id": tid, "session_id": session.id, "name": name,
                              "attempt": attempt, "predecessor": predecessor, "session_status": session.status})
        return session.id

    # -- requests -------------------------------------------------------------------------------------

    def start(self, p: RunStart, project_id: str, root: str | None, actor: str) -> str:
        check_options(p, project_id)
        if self.store.active(project_id):
            other = self.store.active(project_id)[0]["id"]
            raise errors.conflict(f"project {project_id} already has an active run ({other}); stop it first "
                                  f"(`maestroctl task run --stop {other}`)", {"run": other})
        options = unstructure(p)
        for key in ("project", "workers", "root"):
            options.pop(key, None)
        options["env"] = sorted(p.env)  # the names only: the values go to a 0600 file
        rid = self.store.create(project_id, root, p.workers, options, actor)
        self.store.save_env(rid, p.env)
        self.recorder.record(actor, "run", rid, "run.started",
                             {"run_id": rid, "project_id": project_id, "workers": p.workers, "root_task_id": root,
                              "agent": p.agent, "reuse": p.reuse, "retries": p.retries})
        self._changed.set()
        return rid

    def stop(self, rid: str, actor: str) -> None:
        row = self.store.row(rid)
        if row["state"] != "running":
            return
        self.store.set_state(rid, "stopping", "stop requested: the running workers finish, no new ones start")
        self.recorder.record(actor, "run", rid, "run.stopping", {"run_id": rid})
        self._changed.set()

    def status(self, rid: str) -> dict[str, Any]:
        row = self.store.row(rid)
        options = json.loads(row["options"])
        options["env"] = {k: "***" for k in options.get("env", [])}  # values may be secrets
        assignments = self.store.assignments(rid)
        running = {a["session_id"]: a["task_id"] for a in assignments if a["state"] == "running"}
        workers = []
        for sid in self.store.sessions(rid):
            s = self.sessions.find(sid)
            if s is None:
                continue
            live = s["status"] not in ("exited", "hibernated", "queued") and s["agent"] == "claude"
            workers.append({"session_id": sid, "name": s["name"], "status": s["status"],
                            "task_id": running.get(sid), "needs_attention": s["needs_attention"],
                            "exit_reason": s["exit_reason"],
                            "context": self.context_of(s["transcript_path"]) if live else None})
        scope = self._scope(row["root_task_id"])
        todo = [t for t in self.tasks.list(row["project_id"], ["todo"]) if scope is None or t.id in scope]
        ready = {t.id for t in self.tasks.ready(row["project_id"])}
        counts = {"running": len(running), "queued": len(todo), "ready": sum(1 for t in todo if t.id in ready),
                  "done": sum(1 for a in assignments if a["state"] == "done"),
                  "failed": sum(1 for a in assignments if a["state"] == "failed"),
                  "live_workers": sum(1 for w in workers if w["status"] not in ("exited", "hibernated", "queued"))}
        titles = {t.id: t.title for t in self.tasks.get_many(list({a["task_id"] for a in assignments}))}
        return {"id": rid, "project_id": row["project_id"], "root_task_id": row["root_task_id"],
                "state": row["state"], "reason": row["reason"], "workers_max": row["workers"],
                "started_by": row["started_by"], "options": options, "counts": counts,
                "peak_live": self.peak_live.get(rid), "workers": workers,
                "tasks": [{"task_id": a["task_id"], "title": titles.get(a["task_id"]), "attempt": a["attempt"],
                           "session_id": a["session_id"], "state": a["state"], "reason": a["reason"],
                           "started_at": a["started_at"], "ended_at": a["ended_at"]} for a in assignments],
                "queued_tasks": [t.id for t in todo],
                "created_at": row["created_at"], "updated_at": row["updated_at"], "finished_at": row["finished_at"]}
