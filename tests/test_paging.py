"""Paged lists: every list method takes ``limit`` + ``cursor`` and answers {total, next_cursor, items};
keyset pages (no item repeated or lost when others are inserted or deleted between pages); a bad cursor is
-32602 naming ``cursor``; maestroctl follows the cursor to the end unless ``--limit``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from maestrod.paging import decode, encode
from maestrod.store.db import utcnow
from shared import errors
from tests.conftest import MAESTROCTL, Daemon, RawClient, maestroctl_env

PRIORITIES = ["low", "medium", "high", "critical"]


async def _project(client: RawClient, tmp: Path, name: str = "big") -> str:
    return (await client.call("project.create", {"name": name, "dir": str(tmp)}))["id"]  # type: ignore[no-any-return]


def _bulk_tasks(daemon: Daemon, pid: str, n: int, prefix: str = "t", status: str = "todo") -> list[str]:
    """``n`` tasks straight into the store (10,000 RPCs would test task.create, not paging). Every 7 share
    one created_at, so the keyset's tie-breaker (rowid) matters."""
    rows = []
    stamp = utcnow()
    for i in range(n):
        if i % 7 == 0:
            stamp = utcnow()
        rows.append((f"{prefix}-{i:08x}", pid, f"task {i}", PRIORITIES[i % 4], status, stamp, stamp))
    with daemon.app.db.transaction() as c:
        c.executemany("INSERT INTO tasks(id, project_id, title, priority, status, created_at, updated_at) "
                      "VALUES (?,?,?,?,?,?,?)", rows)
    return [r[0] for r in rows]


async def _walk(client: RawClient, method: str, params: dict[str, Any], limit: int,
                between: Any = None) -> tuple[list[Any], list[int]]:
    """Every item, page by page; ``between(page_number)`` runs after each page. Also each page's total."""
    items: list[Any] = []
    totals: list[int] = []
    cursor = None
    for number in range(100_000):
        page = await client.call(method, {**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert set(page) == {"total", "next_cursor", "items"} and len(page["items"]) <= limit
        items += page["items"]
        totals.append(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, totals
        assert len(page["items"]) == limit  # a page that is not the last is full
        if between is not None:
            await between(number)
    raise AssertionError("the pages never ended")


async def test_ten_thousand_tasks_paged_exactly_once_in_list_order(daemon: Daemon, client: RawClient,
                                                                    short_tmp: Path) -> None:
    pid = await _project(client, short_tmp)
    _bulk_tasks(daemon, pid, 10_000)
    whole = [t["id"] for t in await client.call("task.list", {"project": pid})]  # unpaged: as before
    assert len(whole) == 10_000
    for limit in (1000, 777):
        items, totals = await _walk(client, "task.list", {"project": pid}, limit)
        assert [t["id"] for t in items] == whole  # same order, none twice, none missing
        assert set(totals) == {10_000}
    # filters hold across pages
    items, totals = await _walk(client, "task.list", {"project": pid, "priority": ["high"]}, 300)
    assert len(items) == 2500 == totals[0] and {t["priority"] for t in items} == {"high"}


async def test_inserts_and_deletes_between_pages(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    pid = await _project(client, short_tmp)
    original = _bulk_tasks(daemon, pid, 3000)
    order = [t["id"] for t in await client.call("task.list", {"project": pid})]
    inserted: list[str] = []
    deleted: list[str] = []

    async def meddle(number: int) -> None:
        # a critical task sorts before every cursor (never shown), a low one after it (shown once)
        for prio in ("critical", "low"):
            t = await client.call("task.create", {"project": pid, "title": f"new {number}", "priority": prio})
            inserted.append(t["id"])
        if number < 5:  # the last five (low, and oldest-created last) are not shown before page 11
            victim = order[-1 - number]
            await client.call("task.delete", {"id": victim})
            deleted.append(victim)

    items, totals = await _walk(client, "task.list", {"project": pid}, 250, meddle)
    seen = [t["id"] for t in items]
    assert len(seen) == len(set(seen)), "an item came twice"
    assert set(original) - set(deleted) <= set(seen), "an item that was there all along went missing"
    assert not set(deleted) & set(seen)
    # a new low task sorts after every cursor: each shows (once); a new critical one only while the
    # pages were still in the critical tasks (its created_at is the newest of them)
    assert set(inserted[1::2]) <= set(seen)
    assert set(seen) - set(original) <= set(inserted)
    assert set(inserted[0::2]) & set(seen) and set(inserted[0::2]) - set(seen)
    assert totals[0] == 3000 and totals[-1] == 3000 + len(inserted) - len(deleted)


async def test_bad_cursor_and_limit_are_named(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    pid = await _project(client, short_tmp)
    _bulk_tasks(daemon, pid, 5)
    other = (await client.call("project.list", {"limit": 1}))["next_cursor"]
    assert other is None
    cases: list[Any] = ["garbage!", "", "eyJ", encode("project.list", ("big",)), encode("task.list", ("x",)),
                        encode("task.list", (0, "2026", "7")), encode("task.list", (0, "2026", 2**64 - 1)),
                        encode("task.list", (True, "2026", 1)), "é" * 8, "A" * 5000, 17]
    for cursor in cases:
        resp = await client.request("task.list", {"project": pid, "limit": 2, "cursor": cursor})
        err = resp["error"]
        assert err["code"] == errors.INVALID_PARAMS and err["data"]["errors"][0].startswith("cursor:"), err
    for limit in (0, -1, 1001, 2**63):
        err = (await client.request("task.list", {"project": pid, "limit": limit}))["error"]
        assert err["code"] == errors.INVALID_PARAMS and "limit" in err["message"], err
    err = (await client.request("task.list", {"project": pid, "limit": 5, "tree": True}))["error"]
    assert err["code"] == errors.INVALID_PARAMS and "tree" in err["message"]
    # a cursor alone pages with the default size
    page = await client.call("task.list", {"project": pid, "limit": 2})
    rest = await client.call("task.list", {"project": pid, "cursor": page["next_cursor"]})
    assert rest["next_cursor"] is None and len(rest["items"]) == 3


@given(st.one_of(st.text(max_size=300), st.builds(
    lambda key: encode("task.list", tuple(key)),
    st.lists(st.one_of(st.integers(-(1 << 63), (1 << 64) - 1), st.text(max_size=20), st.booleans(), st.none(), st.floats()), max_size=4))))
def test_any_cursor_is_a_key_or_invalid_params(cursor: str) -> None:
    try:
        key = decode("task.list", cursor, (int, str, int))
    except errors.RpcError as exc:
        assert exc.code == errors.INVALID_PARAMS and exc.data["errors"][0].startswith("cursor: ")
    else:
        assert [type(k) for k in key] == [int, str, int] and all(-(1 << 63) <= k < 1 << 63 for k in key[::2])


async def _sessions(client: RawClient, pid: str, n: int) -> None:
    for i in range(n):
        await client.call("session.spawn", {"project": pid, "name": f"s{i}", "cwd": "/tmp", "agent": "command",
                                            "argv": ["sh", "-c", "exit 0"]})


async def test_every_list_method_pages(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    """Each list method, one item per page, gives what its unpaged answer gives."""
    (short_tmp / "p2").mkdir()
    pid = await _project(client, short_tmp)
    await _project(client, short_tmp / "p2", "another")
    root = await client.call("task.create", {"project": pid, "title": "root"})
    for i in range(4):
        child = await client.call("task.create", {"project": pid, "title": f"c{i}", "parent": root["id"]})
        await client.call("task.create", {"project": pid, "title": f"g{i}", "parent": child["id"]})
        await client.call("task.update", {"id": root["id"], "title": f"root {i}"})
    await _sessions(client, pid, 3)
    first = await client.call("mail.send", {"to": ["human"], "subject": "s0", "body": "b", "priority": "high"})
    for i in range(5):
        await client.call("mail.reply", {"id": first["id"], "body": f"r{i}"})
        await client.call("mail.send", {"to": ["human"], "subject": f"s{i}", "body": "b",
                                        "priority": ["low", "normal", "critical"][i % 3]})
    await client.call("mail.read", {"id": first["id"]})
    cases: list[tuple[str, dict[str, Any], bool]] = [
        ("project.list", {}, False), ("template.list", {}, False), ("task.list", {"project": pid}, True),
        ("task.ready", {"project": pid}, True), ("task.children", {"id": root["id"]}, True),
        ("task.children", {"id": root["id"], "recursive": True}, True), ("session.list", {"project": pid}, True),
        ("mail.inbox", {}, True), ("mail.inbox", {"unread": True}, True), ("mail.thread", {"id": first["id"]}, True),
    ]
    for method, params, same_order in cases:
        whole = await client.call(method, params)
        assert isinstance(whole, list) and len(whole) >= 2, (method, whole)
        items, totals = await _walk(client, method, params, 1)
        key = "name" if method == "template.list" else "id"
        got, want = [i[key] for i in items], [i[key] for i in whole]
        assert (got if same_order else sorted(got)) == (want if same_order else sorted(want)), method
        assert set(totals) == {len(whole)}, method
    # task.history: pages newest first; unpaged, the latest 200 oldest first
    whole = await client.call("task.history", {"id": root["id"]})
    items, _ = await _walk(client, "task.history", {"id": root["id"]}, 2)
    assert [e["id"] for e in items] == [e["id"] for e in reversed(whole)] and len(items) == 5


async def test_inbox_keyset_survives_new_mail(daemon: Daemon, client: RawClient) -> None:
    for i in range(30):
        await client.call("mail.send", {"to": ["human"], "subject": f"m{i}", "body": "b",
                                        "priority": ["low", "normal", "high"][i % 3]})
    original = {m["id"] for m in (await client.call("mail.inbox", {"limit": 1000}))["items"]}

    async def more(number: int) -> None:
        await client.call("mail.send", {"to": ["human"], "subject": f"late {number}", "body": "b"})

    items, _ = await _walk(client, "mail.inbox", {}, 4, more)
    ids = [m["id"] for m in items]
    assert len(ids) == len(set(ids)) and original <= set(ids)


# -- maestroctl ---------------------------------------------------------------------------------------

async def _ctl(daemon: Daemon, *argv: str) -> tuple[int, str, str]:
    env = maestroctl_env(daemon.socket_path)
    proc = await trio.run_process([MAESTROCTL, *argv], env=env, capture_stdout=True, capture_stderr=True,
                                  check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


async def test_maestroctl_follows_the_cursor_to_the_end(daemon: Daemon, client: RawClient,
                                                         short_tmp: Path) -> None:
    pid = await _project(client, short_tmp)
    _bulk_tasks(daemon, pid, 2345)  # more than two of maestroctl's pages
    whole = [t["id"] for t in await client.call("task.list", {"project": pid})]
    code, out, err = await _ctl(daemon, "--json", "task", "list", "--project", pid)
    assert code == 0, err
    assert [t["id"] for t in json.loads(out)] == whole and not err  # one array, every task, in order
    code, out, err = await _ctl(daemon, "task", "list", "--project", pid)  # the table too
    assert code == 0 and len(out.splitlines()) == 2345 + 1, err
    code, out, err = await _ctl(daemon, "--json", "task", "ready", "--project", pid)
    assert code == 0 and len(json.loads(out)) == 2345


async def test_maestroctl_limit_shows_at_most_n_and_the_cursor(daemon: Daemon, client: RawClient,
                                                               short_tmp: Path) -> None:
    pid = await _project(client, short_tmp)
    _bulk_tasks(daemon, pid, 12)
    whole = [t["id"] for t in await client.call("task.list", {"project": pid})]
    code, out, err = await _ctl(daemon, "--json", "task", "list", "--project", pid, "--limit", "5")
    assert code == 0 and [t["id"] for t in json.loads(out)] == whole[:5]
    assert "12 in all" in err
    cursor = err.split("--cursor ")[1].strip()
    code, out, err = await _ctl(daemon, "--json", "task", "list", "--project", pid, "--cursor", cursor)
    assert code == 0 and [t["id"] for t in json.loads(out)] == whole[5:] and not err
    code, _, err = await _ctl(daemon, "task", "list", "--project", pid, "--cursor", "nonsense")
    assert code in (1, 2) and "cursor" in err, err  # 2 once -32602 from a command line counts as usage
    code, _, err = await _ctl(daemon, "task", "list", "--project", pid, "--limit", "0")
    assert code != 0 and "--limit" in err


@pytest.mark.parametrize("argv", [["project", "list"], ["template", "list"], ["mail", "inbox"],
                                  ["session", "list"]])
async def test_other_list_commands_print_one_array(daemon: Daemon, client: RawClient, short_tmp: Path,
                                                   argv: list[str]) -> None:
    pid = await _project(client, short_tmp)
    await _project(client, short_tmp / "..", "another")
    await _sessions(client, pid, 2)
    for i in range(3):
        await client.call("mail.send", {"to": ["human"], "subject": f"m{i}", "body": "b"})
    code, out, err = await _ctl(daemon, "--json", *argv, "--limit", "1")
    assert code == 0 and len(json.loads(out)) == 1 and "--cursor" in err, (out, err)
    code, out, err = await _ctl(daemon, "--json", *argv)
    assert code == 0 and len(json.loads(out)) >= 2 and not err, (out, err)


async def test_maestroctl_reads_a_page_head_without_decoding(daemon: Daemon, client: RawClient,
                                                              short_tmp: Path) -> None:
    """maestroctl joins pages from the daemon's bytes: the head (total, next_cursor) must come first, as
    maestrod encodes it, or it falls back to decoding every page."""
    from maestroctl import paging as ctl_paging
    from maestroctl import wire

    pid = await _project(client, short_tmp)
    _bulk_tasks(daemon, pid, 30)
    stream = await trio.open_unix_socket(str(daemon.socket_path))
    try:
        heads = []
        cursor = None
        for rid in (1, 2):
            params: dict[str, Any] = {"project": pid, "limit": 20, **({"cursor": cursor} if cursor else {})}
            await stream.send_all(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "task.list",
                                              "params": params}).encode() + b"\n")
            line = b""
            while not line.endswith(b"\n"):
                line += await stream.receive_some(1 << 20)
            raw = wire.raw_result(line, rid)
            assert raw is not None
            head = ctl_paging._head(raw)
            assert head is not None, raw[:120]
            heads.append(head)
            cursor = head[1]
    finally:
        await stream.aclose()
    (total1, cursor1, items1), (total2, cursor2, items2) = heads
    assert total1 == total2 == 30 and cursor1 and cursor2 is None
    assert len(json.loads(items1)) == 20 and len(json.loads(items2)) == 10


async def test_worktree_list_pages(daemon: Daemon, client: RawClient, short_tmp: Path) -> None:
    from tests.session_support import _spawn
    from tests.test_worktrees import GIT_ID, _git

    repo = short_tmp / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("a\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    await client.call("project.create", {"name": "p", "dir": str(repo)})
    for i in range(3):
        await _spawn(client, ["cat"], name=f"w{i}", cwd=str(repo), worktree=True, env=GIT_ID)
    whole = await client.call("worktree.list", {})
    items, totals = await _walk(client, "worktree.list", {}, 2)
    assert [w["id"] for w in items] == [w["id"] for w in whole] and len(whole) == 3 and set(totals) == {3}
    code, out, err = await _ctl(daemon, "--json", "worktree", "list", "--limit", "1")
    assert code == 0 and len(json.loads(out)) == 1 and "3 in all" in err
    for s in await client.call("session.list", {}):
        await client.call("session.kill", {"id": s["id"]})
