"""The governor (maestrod/scheduler/governor.py): admission by live agents and memory, the queue served in
priority order, stopping a queued spawn, hibernation of idle Claude sessions to make room (the scripted
stand-in for Claude Code, which resumes like it), and per-session RSS/CPU from /proc."""

from __future__ import annotations

import os
import re
from pathlib import Path

from maestrod.scheduler.admission import (IdleAgent, Room, Waiting, mem_available, pressure_some_avg10, rank,
                                          refuse, serve_order, to_hibernate)
from maestrod.scheduler.config import GIB, MIB, GovernorConfig
from maestrod.scheduler.resources import ProcessTrees
from tests.conftest import Daemon, EventLog, RawClient, maestroctl_env
from tests.session_support import _ctl, _error, _fake_claude, _project, _spawn


def test_refuse_names_the_limit() -> None:
    cfg = GovernorConfig(max_live_agents=2)
    assert refuse(Room(0, available=0, pressure=99.0), cfg) is None  # the first agent always starts
    assert refuse(Room(1, available=8 * GIB), cfg) is None
    assert "max_live_agents is 2" in (refuse(Room(2, available=8 * GIB), cfg) or "")
    low = refuse(Room(1, available=2 * GIB + 100 * MIB, agent_mean=300 * MIB), cfg) or ""
    assert "MemAvailable is 2148 MiB" in low and "~300 MiB" in low and "2048 MiB" in low
    assert refuse(Room(1, available=2 * GIB + 500 * MIB, agent_mean=300 * MIB), cfg) is None
    assert "memory pressure is 30.0%" in (refuse(Room(1, available=8 * GIB, pressure=30.0), cfg) or "")
    assert refuse(Room(5, available=None, pressure=None), GovernorConfig()) is None


def test_proc_parsers() -> None:
    assert mem_available("MemTotal: 100 kB\nMemAvailable:  2048 kB\n") == 2048 * 1024
    assert mem_available("MemTotal: 100 kB\n") is None
    psi = "some avg10=1.50 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    assert pressure_some_avg10(psi) == 1.5


def test_process_tree_usage_counts_children() -> None:
    trees = ProcessTrees(ttl=0.0)
    mine = trees.usage(os.getpid())
    assert mine is not None and mine.rss_bytes > 1 * MIB and mine.cpu_percent is None
    assert trees.usage(os.getpid()) is not None
    assert trees.usage(2 ** 22 + 1) is None


async def test_third_spawn_is_queued_and_starts_when_one_exits(daemon: Daemon, client: RawClient,
                                                              events: EventLog, short_tmp: Path) -> None:
    daemon.app.config.governor.max_live_agents = 2
    await _project(client, short_tmp)
    one = await _spawn(client, ["cat"], name="one")
    two = await _spawn(client, ["cat"], name="two")
    low = await client.call("task.create", {"project": "p", "title": "low", "priority": "low"})
    high = await client.call("task.create", {"project": "p", "title": "high", "priority": "high"})
    three = await _spawn(client, ["cat"], name="three", task_ids=[low["id"]])
    four = await _spawn(client, ["cat"], name="four", task_ids=[high["id"]])
    five = await _spawn(client, ["cat"], name="five")
    assert [s["status"] for s in (one, two, three, four, five)] == ["idle", "idle", "queued", "queued", "queued"]
    explained = await client.call("session.explain", {"id": three["id"]})
    assert "max_live_agents is 2" in explained["reason"] and explained["status"] == "queued"
    got = await client.call("session.get", {"id": one["id"]})
    assert got["rss_bytes"] > 0 and got["status"] == "idle"
    assert (await client.call("session.get", {"id": three["id"]}))["rss_bytes"] is None
    # People see them too: `session list` and `session get` show the tree's memory and CPU.
    env = maestroctl_env(daemon.socket_path)
    listed = await _ctl(env, "session", "list")
    row = next(line for line in listed.splitlines() if " one " in f" {line} ")
    assert "RSS/CPU" in listed.splitlines()[0] and re.search(r" \d+M \d+% ", row), listed
    assert re.search(r"resources +\d+M \d+%", await _ctl(env, "session", "get", one["id"]))

    # a queued spawn stopped before it started ends exited (stopped) and leaves the queue
    stopped = await client.call("session.stop", {"id": five["id"]})
    assert stopped["status"] == "exited" and stopped["exit_reason"] == "stopped"

    mark = len(events.items)
    await client.call("session.stop", {"id": one["id"]})
    # the high-priority spawn goes first, though it was queued later
    await events.status(four["id"], "idle", start=mark)
    assert (await client.call("session.get", {"id": three["id"]}))["status"] == "queued"
    await client.call("session.stop", {"id": two["id"]})
    await events.status(three["id"], "idle", start=mark)
    history = (await client.call("session.history", {"id": three["id"]}))["entries"]
    kinds = [h["type"] for h in history]
    assert "session.queued" in kinds and "session.admitted" in kinds
    statuses = events.statuses(three["id"])
    assert statuses[:3] == ["queued", "spawning", "idle"], statuses


async def test_idle_claude_is_hibernated_to_make_room_and_wakes_on_prompt(
        daemon: Daemon, client: RawClient, events: EventLog, short_tmp: Path, fake_claude: Path) -> None:
    cfg = daemon.app.config.governor
    cfg.max_live_agents, cfg.hibernate_after_seconds = 1, 0.0
    await _project(client, short_tmp)
    sleeper = await _fake_claude(daemon, client, fake_claude, events, name="sleeper")
    mark = len(events.items)
    queued = await _spawn(client, ["cat"], name="needs-room")
    assert queued["status"] == "queued"
    await events.status(sleeper["id"], "hibernated", start=mark)
    await events.status(queued["id"], "idle", start=mark)
    # a prompt wakes the hibernated one, through admission: no room (the live one is a plain command, which
    # cannot be hibernated), so the wake waits queued and the prompt with it, typed once the agent is up
    mark = len(events.items)
    answer = await client.call("session.prompt", {"id": sleeper["id"], "message": "back to work"})
    assert answer["state"] == "queued" and "waits for room" in answer["held"], answer
    assert (await client.call("session.get", {"id": sleeper["id"]}))["status"] == "queued"
    explained = await client.call("session.explain", {"id": sleeper["id"]})
    assert "max_live_agents is 1" in explained["reason"], explained
    await client.call("session.stop", {"id": queued["id"]})
    delivered = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered"
                                      and e["data"]["session_id"] == sleeper["id"], start=mark)
    assert events.statuses(sleeper["id"])[-4:] == ["queued", "spawning", "idle", "working"], events.statuses(
        sleeper["id"])
    assert delivered["data"]["prompt_id"] == answer["prompt_id"]
    resumed = [h for h in (await client.call("session.history", {"id": sleeper["id"]}))["entries"]
               if h["type"] == "session.resumed"]
    assert resumed and "prompt" in resumed[-1]["data"]["reason"]
    err = await _error(client, "session.hibernate", {"id": queued["id"]})
    assert "exited" in err["message"]


def test_starts_are_served_coordinators_first_then_priority_then_first_come() -> None:
    assert rank("coordinator", ["low"]) == -1
    assert rank("worker", ["low", "high"]) == 1 and rank("worker", []) == 2
    waiting = [Waiting("spawn-low", rank("worker", ["low"]), 0), Waiting("wake-none", rank("worker", []), 1),
               Waiting("spawn-none", rank("worker", []), 2), Waiting("wake-crit", rank("worker", ["critical"]), 3),
               Waiting("coord", rank("coordinator", []), 4)]
    # a wake takes its place among the spawns by the same rule
    assert serve_order(waiting) == ["coord", "wake-crit", "wake-none", "spawn-none", "spawn-low"]


def test_hibernation_for_room_spares_the_woken_and_takes_the_oldest_idle_claude() -> None:
    cfg = GovernorConfig(hibernate_after_seconds=10.0)
    idle = [IdleAgent("old-codex", "codex", 0.0), IdleAgent("old", "claude", 1.0), IdleAgent("new", "claude", 5.0),
            IdleAgent("fresh", "claude", 95.0)]
    assert to_hibernate(idle, 100.0, cfg) == "old"
    # never the one being woken (nor one whose prompt waits to be typed)
    assert to_hibernate(idle, 100.0, cfg, spare={"old"}) == "new"
    # idle for less than hibernate_after_seconds, or not Claude: nothing to hibernate -> the start waits
    assert to_hibernate(idle, 100.0, cfg, spare={"old", "new"}) is None
    assert to_hibernate(idle, 100.0, GovernorConfig(hibernate_idle=False)) is None
    # a wake is refused room like a spawn: the woken agent would be one more live
    assert "max_live_agents is 1" in (refuse(Room(1), GovernorConfig(max_live_agents=1)) or "")


def _peak_live(events: EventLog, sids: set[str]) -> int:
    live: dict[str, str] = {}
    peak = 0
    for e in events.items:
        if e["topic"] == "session.status" and e["data"]["session_id"] in sids:
            live[e["data"]["session_id"]] = e["data"]["to"]
            peak = max(peak, sum(1 for s in live.values() if s not in ("exited", "hibernated", "queued")))
    return peak


async def test_a_wake_goes_through_admission(daemon: Daemon, client: RawClient, events: EventLog,
                                             short_tmp: Path, fake_claude: Path) -> None:
    """max_live_agents = 1 with two Claude sessions (the scripted stand-in): a wake makes room by hibernating the
    other idle one, never itself; when the only live one may not be hibernated (it was just woken and has not
    worked since) the next wake waits queued, its prompt with it, and both go once room frees."""
    cfg = daemon.app.config.governor
    cfg.max_live_agents, cfg.hibernate_after_seconds = 1, 0.0
    cfg.min_available_bytes, cfg.max_pressure = 0, 0.0  # only the live count decides here
    await _project(client, short_tmp)
    one = await _fake_claude(daemon, client, fake_claude, events, name="one")
    mark = len(events.items)
    two = await client.call("session.spawn", {"project": "p", "name": "two"})
    assert two["status"] == "queued"
    await events.status(one["id"], "hibernated", start=mark)  # room for two: one is hibernated
    await events.status(two["id"], "idle", start=mark)

    # `session wake one`: no room; two (idle, Claude) is hibernated for it
    mark = len(events.items)
    woke = await client.call("session.wake", {"id": one["id"]})
    assert woke["status"] == "queued", woke
    await events.status(two["id"], "hibernated", start=mark)
    await events.status(one["id"], "idle", start=mark)
    assert events.statuses(one["id"])[-3:] == ["queued", "spawning", "idle"]
    history = (await client.call("session.history", {"id": one["id"]}))["entries"]
    admitted = [h["data"] for h in history if h["type"] == "session.admitted"]
    assert admitted and admitted[-1]["wake"] is True and "max_live_agents is 1" in admitted[-1]["waited_for"]

    # a prompt to two: its wake waits (one was just woken and is spared), the prompt is queued with it
    mark = len(events.items)
    answer = await client.call("session.prompt", {"id": two["id"], "message": "your turn"})
    assert answer["state"] == "queued" and (await client.call("session.get", {"id": two["id"]}))["status"] == "queued"
    assert (await client.call("session.get", {"id": one["id"]}))["status"] == "idle"
    # a second wake asks nothing more
    assert (await client.call("session.wake", {"id": two["id"]}))["status"] == "queued"
    await client.call("session.stop", {"id": one["id"]})
    delivered = await events.wait_for(lambda e: e["topic"] == "session.prompt_delivered"
                                      and e["data"]["session_id"] == two["id"], start=mark)
    assert delivered["data"]["prompt_id"] == answer["prompt_id"]
    assert _peak_live(events, {one["id"], two["id"]}) == 1
    prompts = (await client.call("session.history", {"id": two["id"]}))["entries"]
    assert sum(1 for h in prompts if h["type"] == "session.prompt_delivered") == 1
    await client.call("session.stop", {"id": two["id"]})
