"""Hardening item 8: every field a client can make the daemon store is capped; at the cap it passes, one
over it is refused with -32005 naming the field, before anything is stored. Real daemon over its socket."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shared import errors, limits
from shared.methods import CATALOGUE
from tests.conftest import Daemon, RawClient, maestroctl_env
from tests.session_support import _agent, _ctl

ROOT = Path(__file__).resolve().parent.parent

#: The method that takes each capped params class.
METHOD_OF = {spec.params.__name__: name for name, spec in CATALOGUE.items()}


def _value(cap: limits.Cap, size: int, which: str) -> Any:
    """A value exactly ``size`` long in the dimension ``which`` (chars / items / key_chars)."""
    if which == "items":
        return [f"i{i}" for i in range(size)]
    if which == "key_chars":
        return {"K" * size: "v"}
    return "x" * size


def _cases() -> list[tuple[str, str, str, int]]:
    out = []
    for cls, fields in limits.FIELD_CAPS.items():
        for field, cap in fields.items():
            for which in ("chars", "items", "key_chars"):
                n = getattr(cap, which)
                if n is not None:
                    out.append((cls, field, which, n))
    return out


async def _base(client: RawClient, cls: str, tmp_path: Path, n: list[int]) -> dict[str, Any]:
    """Valid params for ``cls`` that a capped field is then set on (unique names each time)."""
    n[0] += 1
    if cls == "ProjectCreate":
        return {"name": f"proj{n[0]}", "dir": str(tmp_path)}
    if cls == "ProjectUpdate":
        return {"id": "p"}
    if cls == "TaskCreate":
        return {"project": "p", "title": "t"}
    if cls == "TaskUpdate":
        return {"id": (await client.call("task.create", {"project": "p", "title": "t"}))["id"]}
    if cls == "TaskReport":
        return {"task": "t-none", "status": "progress", "message": "m"}
    if cls == "MailSend":
        return {"to": ["human"], "subject": "s", "body": "b"}
    if cls == "SessionSpawn":
        return {"project": "p", "name": f"s{n[0]}", "agent": "command", "argv": ["true"]}
    if cls == "HookEvent":
        return {"event": "Notification", "payload": {}}
    raise AssertionError(f"no base params for {cls}: add one")


def _shaped(field: str, which: str, size: int) -> Any:
    if field == "env":
        if which == "items":
            return {f"K{i}": "v" for i in range(size)}
        if which == "chars":
            return {"K": "x" * size}
    if field == "argv" and which == "chars":
        return ["x" * size]
    if field in ("to",) and which == "chars":
        return ["x" * size]
    return _value(limits.Cap(), size, which)


async def test_every_cap_passes_at_the_cap_and_refuses_one_over(
        daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    await client.call("project.create", {"name": "p", "dir": str(tmp_path)})
    n = [0]
    for cls, field, which, size in _cases():
        method = METHOD_OF[cls]
        params = await _base(client, cls, tmp_path, n)
        params[field] = _shaped(field, which, size)
        at = await client.request(method, params)
        assert at.get("error", {}).get("code") != errors.TOO_LARGE, (method, field, which, at["error"])
        params = await _base(client, cls, tmp_path, n)
        params[field] = _shaped(field, which, size + 1)
        over = (await client.request(method, params))["error"]
        assert over["code"] == errors.TOO_LARGE, (method, field, which, over)
        assert over["data"]["fields"][0].split("[")[0] == field, over
        assert f"at most {size}" in over["message"] and str(size + 1) in over["message"], over


async def test_capped_text_is_stored_whole_at_the_cap_and_nothing_over_it(
        daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    proj = await client.call("project.create", {"name": "n" * limits.NAME_MAX, "dir": str(tmp_path),
                                                "description": "d" * limits.TEXT_MAX})
    assert len((await client.call("project.get", {"id": proj["id"]}))["description"]) == limits.TEXT_MAX
    task = await client.call("task.create", {"project": proj["id"], "title": "t" * limits.TITLE_MAX,
                                             "description": "d" * limits.TEXT_MAX})
    assert (await client.call("task.get", {"id": task["id"]}))["title"] == "t" * limits.TITLE_MAX
    err = (await client.request("task.create", {"project": proj["id"], "title": "t" * (limits.TITLE_MAX + 1)}))
    assert err["error"]["code"] == errors.TOO_LARGE and "title" in err["error"]["message"]
    err = await client.request("task.update", {"id": task["id"], "description": "d" * (limits.TEXT_MAX + 1)})
    assert err["error"]["data"]["fields"] == ["description"]
    assert [t["id"] for t in await client.call("task.list", {"project": proj["id"]})] == [task["id"]]
    assert len((await client.call("task.get", {"id": task["id"]}))["description"]) == limits.TEXT_MAX
    # a session name at the cap, and the listing that failed with 15 MiB names works
    s = await client.call("session.spawn", {"project": proj["id"], "name": "s" * limits.NAME_MAX,
                                            "agent": "command", "argv": ["cat"]})
    assert s["name"] == "s" * limits.NAME_MAX
    out = await _ctl(maestroctl_env(daemon.socket_path), "task", "list", "--project", proj["id"])
    assert "t" * 40 in out


async def test_every_other_string_and_array_has_a_default_cap(client: RawClient) -> None:
    err = (await client.request("task.get", {"id": "x" * (limits.STRING_MAX + 1)}))["error"]
    assert err["code"] == errors.TOO_LARGE and err["data"]["fields"] == ["id"]
    assert (await client.request("task.get", {"id": "x" * limits.STRING_MAX}))["error"]["code"] == errors.NOT_FOUND
    err = (await client.request("events.subscribe", {"topics": ["t"] * (limits.LIST_MAX + 1)}))["error"]
    assert err["code"] == errors.TOO_LARGE and err["data"]["fields"] == ["topics"]


async def test_config_caps_name_their_field(daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    """Mail's caps are in the config ([mail] max_subject_chars, max_body_bytes): -32005 too."""
    cap = daemon.app.config.mail.max_subject_chars
    ok = await client.call("mail.send", {"to": ["human"], "subject": "s" * cap, "body": "b"})
    assert ok["subject"] == "s" * cap
    err = (await client.request("mail.send", {"to": ["human"], "subject": "s" * (cap + 1), "body": "b"}))["error"]
    assert err["code"] == errors.TOO_LARGE and err["data"]["fields"] == ["subject"]
    body = daemon.app.config.mail.max_body_bytes
    assert (await client.call("mail.send", {"to": ["human"], "subject": "s", "body": "b" * body}))["id"]
    err = (await client.request("mail.send", {"to": ["human"], "subject": "s", "body": "b" * (body + 1)}))["error"]
    assert err["code"] == errors.TOO_LARGE and err["data"]["fields"] == ["body"]


async def test_an_agent_is_capped_like_anyone(daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    await client.call("project.create", {"name": "p", "dir": str(tmp_path)})
    _sid, agent, _token = await _agent(daemon, client, "w1")
    err = (await agent.request("task.create", {"project": "p", "title": "t" * (limits.TITLE_MAX + 1)}))["error"]
    assert err["code"] == errors.TOO_LARGE and err["data"]["fields"] == ["title"]


@pytest.mark.parametrize("cls,field,which,size", _cases())
def test_docs_list_every_cap(cls: str, field: str, which: str, size: int) -> None:
    """docs/limits.md has a row per capped field with the same figure."""
    doc = (ROOT / "docs" / "limits.md").read_text()
    row = re.search(rf"^\| `{re.escape(METHOD_OF[cls])}` \| `{re.escape(field)}` \|(.*)$", doc, re.M)
    assert row is not None, (cls, field)
    assert f"{size:,}" in row.group(1), (cls, field, which, size, row.group(1))
