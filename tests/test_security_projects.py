"""Hardening item 5: an agent acts within its own project unless ``[policy]`` grants more; humans act on
everything. Real daemon, real sessions (acting through their token, and through their process tree)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maestrod.config import PolicyGrant
from shared import errors
from tests.conftest import Daemon, EventLog, RawClient, wait_screen
from tests.session_support import _agent, _error, _spawn


async def _two_projects(client: RawClient, tmp_path: Path) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    for name in ("alpha", "beta", "gamma"):
        d = tmp_path / name
        d.mkdir()
        ids[name] = (await client.call("project.create", {"name": name, "dir": str(d)}))["id"]
    ids["alpha_task"] = (await client.call("task.create", {"project": "alpha", "title": "a1"}))["id"]
    ids["beta_task"] = (await client.call("task.create", {"project": "beta", "title": "b1"}))["id"]
    ids["gamma_task"] = (await client.call("task.create", {"project": "gamma", "title": "g1"}))["id"]
    return ids


async def _forbidden(conn: RawClient, method: str, params: dict[str, Any], project: str, action: str) -> str:
    err = await _error(conn, method, params)
    assert err["code"] == errors.FORBIDDEN, (method, err)
    assert err["data"]["project"] == project and err["data"]["action"] == action, (method, err)
    assert f"may not {action}" in err["message"] and f"in project {project}" in err["message"], err
    assert "[policy]" in err["message"]
    return str(err["message"])


async def test_an_agent_stays_in_its_own_project(
        daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    ids = await _two_projects(client, tmp_path)
    sid, agent, _token = await _agent(daemon, client, "w1", project="alpha")
    beta, bt = ids["beta"], ids["beta_task"]

    msg = await _forbidden(agent, "task.get", {"id": bt}, beta, "read")
    assert f"of project {ids['alpha']} (alpha)" in msg and f"project {beta} (beta)" in msg
    await _forbidden(agent, "task.list", {"project": "beta"}, beta, "read")
    await _forbidden(agent, "task.ready", {"project": "beta"}, beta, "read")
    await _forbidden(agent, "task.children", {"id": bt}, beta, "read")
    await _forbidden(agent, "task.history", {"id": bt}, beta, "read")
    await _forbidden(agent, "task.update", {"id": bt, "status": "completed"}, beta, "write")
    await _forbidden(agent, "task.delete", {"id": bt}, beta, "write")
    await _forbidden(agent, "task.create", {"project": "beta", "title": "x"}, beta, "write")
    await _forbidden(agent, "project.get", {"id": "beta"}, beta, "read")
    await _forbidden(agent, "project.update", {"id": "beta", "description": "mine"}, beta, "write")
    await _forbidden(agent, "project.delete", {"id": "beta", "cascade": True}, beta, "write")
    err = await _error(agent, "project.create", {"name": "delta", "dir": str(tmp_path)})
    assert err["code"] == errors.FORBIDDEN and "a new project" in err["message"]

    # unscoped listings cover its own project only
    assert [t["id"] for t in await agent.call("task.list", {})] == [ids["alpha_task"]]
    assert [t["id"] for t in await agent.call("task.ready", {})] == [ids["alpha_task"]]
    assert [p["name"] for p in await agent.call("project.list", {})] == ["alpha"]
    # its own project: everything
    assert (await agent.call("task.update", {"id": ids["alpha_task"], "status": "in_progress"}))["status"] \
        == "in_progress"
    assert (await agent.call("task.create", {"project": "alpha", "title": "a2"}))["project_id"] == ids["alpha"]
    assert (await agent.call("project.get", {"id": "alpha"}))["name"] == "alpha"

    # the human: every project, unchanged
    assert {p["name"] for p in await client.call("project.list", {})} == {"alpha", "beta", "gamma"}
    assert (await client.call("task.update", {"id": bt, "status": "completed"}))["status"] == "completed"
    assert len(await client.call("task.list", {})) == 4
    # nothing the agent tried changed beta
    assert (await client.call("project.get", {"id": "beta"}))["description"] == ""
    assert (await client.call("task.get", {"id": bt}))["title"] == "b1"
    assert sid


async def test_cross_project_read_is_granted_by_config(
        daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    ids = await _two_projects(client, tmp_path)
    daemon.app.config.policy.cross_project = ["read"]
    _sid, agent, _token = await _agent(daemon, client, "w1", project="alpha")
    assert (await agent.call("task.get", {"id": ids["beta_task"]}))["title"] == "b1"
    assert [t["title"] for t in await agent.call("task.list", {"project": "gamma"})] == ["g1"]
    assert {p["name"] for p in await agent.call("project.list", {})} == {"alpha", "beta", "gamma"}
    # reading is not writing
    await _forbidden(agent, "task.update", {"id": ids["beta_task"], "title": "x"}, ids["beta"], "write")


async def test_a_per_project_grant_covers_only_its_projects_and_actions(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path) -> None:
    ids = await _two_projects(client, tmp_path)
    daemon.app.config.policy.grants = [PolicyGrant(agents_of="alpha", projects=["beta"], allow=["read", "write"])]
    coord, agent, _token = await _agent(daemon, client, "lead", project="alpha", role="coordinator")
    assert (await agent.call("task.update", {"id": ids["beta_task"], "title": "b1!"}))["title"] == "b1!"
    await _forbidden(agent, "task.get", {"id": ids["gamma_task"]}, ids["gamma"], "read")
    # a worker spawned into beta (write granted); mailing it needs `mail`, not granted
    worker = await _spawn(agent, ["cat"], name="helper", project="beta")
    assert worker["project_id"] == ids["beta"]
    await _forbidden(agent, "mail.send", {"to": [worker["id"]], "subject": "hi", "body": "b"}, ids["beta"], "mail")
    await _forbidden(agent, "mail.broadcast", {"scope": "my-workers", "subject": "hi", "body": "b"},
                     ids["beta"], "mail")
    daemon.app.config.policy.grants[0].allow.append("mail")
    sent = await agent.call("mail.send", {"to": [worker["id"]], "subject": "hi", "body": "b"})
    assert sent["to"] == [worker["id"]]
    # agents of beta got nothing
    _b, beta_agent, _t = await _agent(daemon, client, "b-agent", project="beta")
    await _forbidden(beta_agent, "task.get", {"id": ids["alpha_task"]}, ids["alpha"], "read")
    assert coord


async def test_from_inside_an_agents_tree_without_token_the_project_rule_holds(
        daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    ids = await _two_projects(client, tmp_path)
    script = (f"env -u MAESTRO_SESSION_TOKEN maestroctl task update {ids['beta_task']} --title stolen; "
              "echo RC=$?; exec cat")
    s = await _spawn(client, ["sh", "-c", script], name="sneaky", project="alpha")
    text = (await wait_screen(daemon.app, s["id"], lambda t: "RC=" in t)).replace("\n", "")
    assert "RC=1" in text and "may not write" in text and f"in project {ids['beta']} (beta)" in text, text
    assert (await client.call("task.get", {"id": ids["beta_task"]}))["title"] == "b1"


async def test_an_agent_lists_the_sessions_of_its_own_project(
        daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    ids = await _two_projects(client, tmp_path)
    other = await _spawn(client, ["cat"], name="other", project="beta")
    sid, agent, _token = await _agent(daemon, client, "w1", project="alpha")
    assert [s["id"] for s in await agent.call("session.list", {})] == [sid]
    await _forbidden(agent, "session.list", {"project": "beta"}, ids["beta"], "read")
    daemon.app.config.policy.cross_project = ["read"]
    assert {s["id"] for s in await agent.call("session.list", {})} == {sid, other["id"]}
    assert {s["id"] for s in await client.call("session.list", {})} == {sid, other["id"]}
