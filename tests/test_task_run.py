"""``task run`` in a real daemon (real socket, real PTYs, real SQLite) with ``command`` workers: small
scripts that call the real ``maestroctl task report``. The real Claude Code runs the same graph in
tests/test_e2e_task_run.py; here the scheduler's own decisions are checked without its start-up time."""

from __future__ import annotations

from pathlib import Path


from tests.conftest import MAESTROCTL, Daemon, EventLog, RawClient, maestroctl_env
from tests.session_support import _ctl, _project

PRIO = {"critical": 0, "high": 1, "medium": 2, "low": 3}
#: A worker that reports its task complete, then waits to be stopped by the run.
REPORTS = ["sh", "-c", '"$CTL" task report complete "$MAESTRO_TASK_IDS" --message done >/dev/null; exec cat']


async def graph(client: RawClient) -> dict[str, str]:
    """A diamond (a -> b, c -> d) and a chain (e -> f), with priorities that make the order checkable."""
    ids: dict[str, str] = {}

    async def task(name: str, priority: str, *deps: str) -> None:
        t = await client.call("task.create", {"project": "p", "title": name, "priority": priority,
                                              "depends_on": [ids[d] for d in deps]})
        ids[name] = t["id"]

    await task("a", "medium")
    await task("e", "low")
    await task("b", "high", "a")
    await task("c", "low", "a")
    await task("d", "critical", "b", "c")
    await task("f", "high", "e")
    return ids


def check_schedule(events: EventLog, ids: dict[str, str], limit: int, run_sessions: set[str]) -> list[str]:
    """Replays the events: never more than ``limit`` live run workers; every task started only after its
    dependencies completed, and never while a ready task of higher priority waited. The start order."""
    deps = {"a": [], "e": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "f": ["e"]}
    prio = {"a": "medium", "e": "low", "b": "high", "c": "low", "d": "critical", "f": "high"}
    name = {v: k for k, v in ids.items()}
    status = {n: "todo" for n in ids}
    live: dict[str, str] = {}
    peak = 0
    started: list[str] = []
    for e in events.items:
        if e["topic"] == "session.status" and e["data"]["session_id"] in run_sessions:
            live[e["data"]["session_id"]] = e["data"]["to"]
            peak = max(peak, sum(1 for s in live.values() if s not in ("exited", "hibernated", "queued")))
        if e["topic"] == "task.status_changed" and e["data"]["task"]["id"] in name:
            n = name[e["data"]["task"]["id"]]
            to = e["data"]["to"]
            if to == "in_progress" and status[n] == "todo":
                assert all(status[d] == "completed" for d in deps[n]), (n, status)
                waiting = [m for m in ids if status[m] == "todo" and m != n
                           and all(status[d] == "completed" for d in deps[m])]
                assert all(PRIO[prio[m]] >= PRIO[prio[n]] for m in waiting), (n, waiting)
                started.append(n)
            status[n] = to
    assert peak <= limit, peak
    assert all(s == "completed" for s in status.values()), status
    return started


async def run_sessions(client: RawClient, rid: str) -> set[str]:
    return {w["session_id"] for w in (await client.call("run.status", {"id": rid}))["workers"]}


async def test_run_drains_a_graph_with_two_workers(daemon: Daemon, client: RawClient, events: EventLog,
                                                   short_tmp: Path) -> None:
    await _project(client, short_tmp)
    ids = await graph(client)
    run = await client.call("run.start", {"project": "p", "workers": 2, "agent": "command", "argv": REPORTS,
                                          "env": {"CTL": MAESTROCTL}})
    assert run["state"] == "running" and run["workers_max"] == 2
    done = await events.wait_for(lambda e: e["topic"] == "run.finished", timeout=60)
    assert done["data"]["state"] == "done"
    status = await client.call("run.status", {"id": run["id"]})
    assert status["counts"]["done"] == 6 and status["counts"]["failed"] == 0 and status["counts"]["queued"] == 0
    assert len(status["workers"]) == 6 and all(w["status"] == "exited" for w in status["workers"])
    started = check_schedule(events, ids, 2, await run_sessions(client, run["id"]))
    assert started[:2] == ["a", "e"] and started[-1] == "d"
    # each worker was given its task in its context, and stopped by the run once it reported
    w = await client.call("session.get", {"id": status["workers"][0]["session_id"]})
    assert w["task_ids"] == [ids["a"]] and w["exit_reason"] == "stopped"
    history = await client.call("task.history", {"id": ids["d"]})
    assert any(h["type"] == "task.report" for h in history)
    # the workers' --env values (secrets, maybe) stay out of the database and out of the status
    assert status["options"]["env"] == {"CTL": "***"}
    stored = daemon.app.db.conn.execute("SELECT options FROM task_runs WHERE id=?", (run["id"],)).fetchone()[0]
    assert MAESTROCTL not in stored
    env_file = daemon.app.data_dir / "runs" / run["id"] / "env.json"
    assert env_file.stat().st_mode & 0o777 == 0o600


async def test_reuse_keeps_two_workers(daemon: Daemon, client: RawClient, events: EventLog, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    ids = await graph(client)
    # A reused worker is prompted with its next task: the script reports each task named in a prompt line.
    loop = ('"$CTL" task report complete "$MAESTRO_TASK_IDS" --message done >/dev/null; '
            'while read -r line; do t=$(echo "$line" | sed -n "s/.*Your task is \\(t-[0-9a-f]*\\).*/\\1/p"); '
            '[ -n "$t" ] && "$CTL" task report complete "$t" --message done >/dev/null; done')
    run = await client.call("run.start", {"project": "p", "workers": 2, "agent": "command", "reuse": True,
                                          "argv": ["sh", "-c", loop], "env": {"CTL": MAESTROCTL}})
    done = await events.wait_for(lambda e: e["topic"] == "run.finished", timeout=60)
    assert done["data"]["state"] == "done"
    status = await client.call("run.status", {"id": run["id"]})
    assert status["counts"]["done"] == 6
    assert len(status["workers"]) <= 3  # reused: not one session per task
    check_schedule(events, ids, 2, await run_sessions(client, run["id"]))


async def test_a_worker_that_exits_without_reporting_blocks_its_task(daemon: Daemon, client: RawClient,
                                                                    events: EventLog, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    bad = await client.call("task.create", {"project": "p", "title": "fails", "priority": "high"})
    after = await client.call("task.create", {"project": "p", "title": "after", "depends_on": [bad["id"]]})
    other = await client.call("task.create", {"project": "p", "title": "other"})
    # the "fails" task's worker exits 3 without a word; the others report
    script = ('[ "$MAESTRO_TASK_IDS" = "%s" ] && exit 3; '
              '"$CTL" task report complete "$MAESTRO_TASK_IDS" --message done >/dev/null; exec cat') % bad["id"]
    run = await client.call("run.start", {"project": "p", "workers": 1, "agent": "command",
                                          "argv": ["sh", "-c", script], "env": {"CTL": MAESTROCTL}, "retries": 1})
    done = await events.wait_for(lambda e: e["topic"] == "run.finished", timeout=60)
    assert done["data"]["state"] == "done"
    status = await client.call("run.status", {"id": run["id"]})
    failed = [t for t in status["tasks"] if t["state"] == "failed"]
    assert [t["task_id"] for t in failed] == [bad["id"], bad["id"]]  # tried, retried once, then left blocked
    assert "exited (failed, code 3) without reporting" in failed[0]["reason"]
    task = await client.call("task.get", {"id": bad["id"]})
    assert task["status"] == "blocked"
    assert (await client.call("task.get", {"id": other["id"]}))["status"] == "completed"
    assert (await client.call("task.get", {"id": after["id"]}))["status"] == "todo"  # its dependency is blocked
    assert status["queued_tasks"] == [after["id"]]
    history = await client.call("task.history", {"id": bad["id"]})
    reasons = [h["data"].get("reason", "") for h in history if h["type"] == "task.status_changed"]
    assert any("retry 1 of 1" in r for r in reasons) and any(r.endswith("without reporting") for r in reasons)


async def test_stop_lets_running_workers_finish(daemon: Daemon, client: RawClient, events: EventLog,
                                                short_tmp: Path) -> None:
    await _project(client, short_tmp)
    flag = short_tmp / "go"
    for i in range(4):
        await client.call("task.create", {"project": "p", "title": f"t{i}"})
    waits = ('while [ ! -e %s ]; do sleep 0.05; done; '
             '"$CTL" task report complete "$MAESTRO_TASK_IDS" --message done >/dev/null; exec cat') % flag
    run = await client.call("run.start", {"project": "p", "workers": 2, "agent": "command",
                                          "argv": ["sh", "-c", waits], "env": {"CTL": MAESTROCTL}})
    await events.wait_for(lambda e: e["topic"] == "run.task_started" and len(
        [x for x in events.items if x["topic"] == "run.task_started"]) == 2)
    env = maestroctl_env(daemon.socket_path)
    out = await _ctl(env, "task", "run", "--stop", "--project", "p")
    assert "stopping" in out
    flag.touch()
    done = await events.wait_for(lambda e: e["topic"] == "run.finished", timeout=30)
    assert done["data"]["state"] == "stopped"
    status = await client.call("run.status", {"id": run["id"]})
    assert status["counts"]["done"] == 2 and status["counts"]["queued"] == 2 and len(status["workers"]) == 2


async def test_cli_and_errors(daemon: Daemon, client: RawClient, events: EventLog, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    await client.call("task.create", {"project": "p", "title": "only"})
    env = maestroctl_env(daemon.socket_path)
    err = await _ctl(env, "task", "run", "--project", "p", "--agent", "command", code=2)
    assert "ARGV" in err
    err = await _ctl(env, "task", "run", "--project", "p", "--workers", "0", "--agent", "command", "--", "true",
                     code=2)
    assert "workers" in err
    err = await _ctl(env, "task", "run", "--project", "p", "--root", "t-nope", "--", "true", code=2)
    assert "root" in err
    flag = short_tmp / "go"
    waits = 'while [ ! -e %s ]; do sleep 0.05; done; ' % flag + REPORTS[2]
    out = await _ctl(env, "--json", "task", "run", "--project", "p", "--workers", "1", "--env", f"CTL={MAESTROCTL}",
                     "--", "sh", "-c", waits)
    assert '"state":"running"' in out
    err = await _ctl(env, "task", "run", "--project", "p", "--", "true", code=1)
    assert "already has an active run" in err
    flag.touch()
    await events.wait_for(lambda e: e["topic"] == "run.finished", timeout=30)
    out = await _ctl(env, "task", "run", "--status", "--project", "p")
    assert "done" in out and "1 done" in out


async def test_a_coordinator_starts_and_watches_a_run_a_worker_may_not(daemon: Daemon, client: RawClient,
                                                                       events: EventLog, short_tmp: Path) -> None:
    from tests.session_support import _agent

    await _project(client, short_tmp)
    await client.call("task.create", {"project": "p", "title": "only"})
    coord, as_coord, _ = await _agent(daemon, client, "coord", role="coordinator")
    worker, as_worker, _ = await _agent(daemon, client, "worker")
    params = {"project": "p", "workers": 1, "agent": "command", "argv": REPORTS, "env": {"CTL": MAESTROCTL}}
    refused = await as_worker.request("run.start", params)
    assert refused["error"]["code"] == -32003 and "only coordinator sessions" in refused["error"]["message"]
    run = await as_coord.call("run.start", params)
    assert run["started_by"] == coord
    done = await events.wait_for(lambda e: e["topic"] == "run.finished", timeout=30)
    assert done["data"]["state"] == "done"
    status = await as_coord.call("run.status", {})  # its own project's latest run
    assert status["id"] == run["id"] and status["counts"]["done"] == 1
    # the worker was the coordinator's child: its report reached the coordinator's mailbox
    w = await client.call("session.get", {"id": status["workers"][0]["session_id"]})
    assert w["parent_id"] == coord
    inbox = await as_coord.call("mail.inbox", {})
    assert any(m["type"] == "status_update" and m["from"] == w["id"] for m in inbox)
    assert (await as_worker.call("run.list", {}))[0]["id"] == run["id"]
