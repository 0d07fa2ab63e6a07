"""The run scheduler's pure decision core (maestrod/scheduler/core.py): facts in, actions out, no sockets."""

from __future__ import annotations

from maestrod.scheduler.core import (Assign, Assignment, BlockTask, EndRun, RetryTask, RunView, Settle, Spawn,
                                     StopWorker, TaskState, Worker, decide)


def view(**kw: object) -> RunView:
    base: dict[str, object] = dict(workers_max=2, reuse=False, retries=0, state="running", running=[], workers=[],
                                   tasks={}, ready=[], failures={})
    base.update(kw)
    return RunView(**base)  # type: ignore[arg-type]


def test_free_slots_take_ready_tasks_in_order() -> None:
    assert decide(view(ready=["t1", "t2", "t3"])) == [Spawn("t1"), Spawn("t2")]


def test_a_queued_or_stopping_worker_holds_its_slot() -> None:
    a = Assignment("t1", "s1", 1)
    actions = decide(view(running=[a], workers=[Worker("s1", "queued")], tasks={"t1": TaskState("in_progress")},
                          ready=["t2", "t3"]))
    assert actions == [Spawn("t2")]
    # s2's task is done and it was asked to stop: its slot is free only once it has exited
    actions = decide(view(running=[a], workers=[Worker("s1", "working"), Worker("s2", "working", stopping=True)],
                          tasks={"t1": TaskState("in_progress")}, ready=["t3"]))
    assert actions == []


def test_hibernated_workers_do_not_count() -> None:
    a = Assignment("t1", "s1", 1)
    actions = decide(view(workers_max=1, running=[a], workers=[Worker("s1", "hibernated")],
                          tasks={"t1": TaskState("in_progress")}, ready=["t2"]))
    assert actions == [Spawn("t2")]


def test_complete_stops_the_worker_before_anything_is_spawned() -> None:
    a = Assignment("t1", "s1", 1)
    actions = decide(view(workers_max=1, running=[a], workers=[Worker("s1", "idle")],
                          tasks={"t1": TaskState("completed", "completed")}, ready=["t2"]))
    assert actions == [Settle(a, "done", "the worker reported it complete"), StopWorker("s1", "its task ended")]


def test_reuse_gives_the_next_task() -> None:
    a = Assignment("t1", "s1", 1)
    actions = decide(view(workers_max=1, reuse=True, running=[a], workers=[Worker("s1", "idle")],
                          tasks={"t1": TaskState("completed", "completed")}, ready=["t2", "t3"]))
    assert actions == [Settle(a, "done", "the worker reported it complete"), Assign("s1", "t2")]


def test_exit_without_report_blocks_the_task_or_retries() -> None:
    a = Assignment("t1", "s1", 1)
    facts = dict(running=[a], workers=[Worker("s1", "exited", "failed", 3)], tasks={"t1": TaskState("in_progress")})
    actions = decide(view(**facts))
    why = "its worker s1 exited (failed, code 3) without reporting"
    assert actions[:2] == [Settle(a, "failed", why), BlockTask("t1", why)]
    actions = decide(view(retries=1, **facts))
    assert actions[:2] == [Settle(a, "failed", why), RetryTask("t1", why + "; retry 1 of 1", 1)]
    # the retry was used up
    assert isinstance(decide(view(retries=1, failures={"t1": 1}, **facts))[1], BlockTask)


def test_blocked_report_fails_the_assignment_and_stops_the_worker() -> None:
    a = Assignment("t1", "s1", 1)
    actions = decide(view(running=[a], workers=[Worker("s1", "idle")], tasks={"t1": TaskState("blocked", "blocked")}))
    assert actions == [Settle(a, "failed", "the worker reported blocked"), StopWorker("s1", "its task ended")]


def test_stopping_starts_nothing_and_ends_when_workers_are_gone() -> None:
    a = Assignment("t1", "s1", 1)
    assert decide(view(state="stopping", running=[a], workers=[Worker("s1", "working")],
                       tasks={"t1": TaskState("in_progress")}, ready=["t2"])) == []
    assert decide(view(state="stopping", workers=[], ready=["t2"])) == [
        EndRun("stopped", "stopped on request; every worker has finished")]


def test_done_when_nothing_runs_and_nothing_is_ready() -> None:
    assert decide(view()) == [EndRun("done", "no task is ready and no worker is running")]
    # not while a worker still has a process (it was asked to stop)
    assert decide(view(workers=[Worker("s1", "idle", stopping=True)])) == []


def test_idle_reused_worker_waits_while_others_run_then_stops() -> None:
    a = Assignment("t1", "s1", 1)
    workers = [Worker("s1", "working"), Worker("s2", "idle")]
    assert decide(view(reuse=True, running=[a], workers=workers, tasks={"t1": TaskState("in_progress")})) == []
    assert decide(view(reuse=True, workers=[Worker("s2", "idle")])) == [StopWorker("s2", "no task for it")]
