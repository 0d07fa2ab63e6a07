"""What a run does next: a pure function of what is known now (no I/O, no clock), tested without sockets.

A run (``task run --project P --workers N``) owns worker sessions, each working on one task (an
*assignment*). :func:`decide` is called whenever something may have changed (a session's status, a task
report, a task's status) with a :class:`RunView` and answers a list of actions, in the order they must be
carried out:

1. every running assignment is settled first: its task completed (the worker reported complete) -> done;
   the worker reported ``blocked`` or ``error`` -> failed; its process exited without reporting -> failed,
   and the task is ``blocked`` with the reason (or, with ``retries`` left, back to ``todo``: a retry is
   counted and recorded, never silent);
2. a worker whose assignment ended is stopped -- or, with ``reuse``, given the next ready task -- *before*
   anything is spawned, and a stopped worker keeps its slot until its process has exited, so the run never
   has more than ``workers`` live sessions;
3. free slots take the ready tasks in the order ``task ready`` lists them (priority, then age);
4. a run with nothing running, nothing ready and no live worker is over (``done``, or ``stopped`` after
   ``task run --stop``).

A worker session counts toward the slots while it is queued (admission: it becomes live when admitted),
starting, working, idle or waiting for input; hibernated and exited ones do not (they hold no process).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Union

import attrs

#: Session statuses that hold no process and will not get one by themselves.
PARKED = frozenset({"exited", "hibernated"})
#: A worker's part of its task (``session_tasks.status``) that means it gave up.
GAVE_UP = frozenset({"blocked", "error"})
#: The part (``session_tasks.status``) of a worker whose assignment failed: the run took the task back, and
#: that part no longer holds the task's completion back (maestrod/handlers/report.py).
RELEASED = "released"
#: Task statuses that end an assignment as failed (someone else decided).
DROPPED = frozenset({"cancelled", "archived"})


@attrs.frozen
class Assignment:
    task_id: str
    session_id: str
    attempt: int


@attrs.frozen
class Worker:
    session_id: str
    #: The session's status (``queued``, ``spawning``, ``working``, ``idle``, ..., ``exited``).
    status: str
    exit_reason: str | None = None
    exit_code: int | None = None
    #: The run already asked it to stop.
    stopping: bool = False


@attrs.frozen
class TaskState:
    status: str
    #: The assigned worker's own part (``in_progress``, ``completed``, ``blocked``, ``error``), if any.
    part: str | None = None


@attrs.frozen
class RunView:
    workers_max: int
    reuse: bool
    retries: int
    #: ``running``, or ``stopping`` (``task run --stop``: let the running finish, start no more).
    state: Literal["running", "stopping"]
    running: Sequence[Assignment]
    #: Every session of the run not yet retired (an exited one is retired once nothing refers to it).
    workers: Sequence[Worker]
    tasks: dict[str, TaskState]
    #: Ready task ids in scope, in ``task ready`` order (priority, then oldest).
    ready: Sequence[str]
    #: Failed attempts so far, per task.
    failures: dict[str, int] = attrs.Factory(dict)


@attrs.frozen
class Settle:
    """The assignment is over: ``done`` or ``failed`` (with why)."""

    assignment: Assignment
    outcome: Literal["done", "failed"]
    reason: str


@attrs.frozen
class BlockTask:
    task_id: str
    reason: str


@attrs.frozen
class RetryTask:
    """Back to ``todo`` for another worker (``--retries``)."""

    task_id: str
    reason: str
    attempt: int


@attrs.frozen
class StopWorker:
    session_id: str
    reason: str


@attrs.frozen
class Assign:
    """``--reuse``: a live worker whose task ended takes the next ready one."""

    session_id: str
    task_id: str


@attrs.frozen
class Spawn:
    task_id: str


@attrs.frozen
class EndRun:
    state: Literal["done", "stopped"]
    reason: str


Action = Union[Settle, BlockTask, RetryTask, StopWorker, Assign, Spawn, EndRun]


def _exit_text(w: Worker) -> str:
    why = w.exit_reason or "exited"
    return f"{why}, code {w.exit_code}" if w.exit_code is not None else why


def decide(view: RunView) -> list[Action]:
    actions: list[Action] = []
    workers = {w.session_id: w for w in view.workers}
    ready = list(view.ready)
    freed: list[str] = []
    holding: set[str] = set()

    # 1. settle what ended
    for a in view.running:
        w = workers.get(a.session_id)
        t = view.tasks.get(a.task_id)
        if t is None:
            actions.append(Settle(a, "failed", "the task was deleted"))
            freed.append(a.session_id)
            continue
        if t.status == "completed" or t.part == "completed":
            actions.append(Settle(a, "done", "the worker reported it complete"))
            freed.append(a.session_id)
        elif t.part in GAVE_UP or t.status in DROPPED:
            why = (f"the worker reported {t.part}" if t.part in GAVE_UP else f"the task was {t.status}")
            actions.append(Settle(a, "failed", why))
            freed.append(a.session_id)
        elif w is None or w.status == "exited":
            why = (f"its worker {a.session_id} exited ({_exit_text(w)}) without reporting"
                   if w is not None else f"its worker {a.session_id} is gone")
            actions.append(Settle(a, "failed", why))
            failures = view.failures.get(a.task_id, 0) + 1
            if failures <= view.retries:
                actions.append(RetryTask(a.task_id, f"{why}; retry {failures} of {view.retries}", failures))
            else:
                actions.append(BlockTask(a.task_id, why))
        else:
            holding.add(a.session_id)

    # 2. workers whose task ended: the next task (reuse) or stop, before anything is spawned
    running = view.state == "running"
    for sid in freed:
        w = workers.get(sid)
        if w is None or w.status in PARKED:
            continue
        if view.reuse and running and ready and not w.stopping:
            task_id = ready.pop(0)
            actions.append(Assign(sid, task_id))
            holding.add(sid)
        elif not w.stopping:
            actions.append(StopWorker(sid, "its task ended"))
    # Idle live workers of a reused run (their last task ended earlier and nothing was ready then).
    for w in view.workers:
        if w.session_id in holding or w.session_id in freed or w.status in PARKED or w.stopping:
            continue
        if view.reuse and running and ready:
            actions.append(Assign(w.session_id, ready.pop(0)))
            holding.add(w.session_id)
        elif not view.reuse or not running or not _could_get_work(view, freed):
            actions.append(StopWorker(w.session_id, "no task for it"))

    # 3. free slots take the ready tasks in order
    occupying = sum(1 for w in view.workers if w.status not in PARKED)
    if running:
        for task_id in ready[:max(0, view.workers_max - occupying)]:
            actions.append(Spawn(task_id))
        ready = ready[max(0, view.workers_max - occupying):]

    # 4. over?
    settled_all = len(holding) == 0
    if settled_all and occupying == 0 and not any(isinstance(x, (Spawn, Assign, RetryTask)) for x in actions):
        if not running:
            actions.append(EndRun("stopped", "stopped on request; every worker has finished"))
        elif not view.ready:
            actions.append(EndRun("done", "no task is ready and no worker is running"))
    return actions


def _could_get_work(view: RunView, freed: Sequence[str]) -> bool:
    """A reused worker with nothing ready stays while tasks are still running (their completion may make
    more ready); once nothing else runs it is stopped."""
    return any(a.session_id not in freed for a in view.running)
