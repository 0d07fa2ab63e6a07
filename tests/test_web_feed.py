"""The WebSocket feed against an in-process daemon: token and Origin gate, JSON-RPC over WebSocket
(requests, batches, events with seq, resume by replay), the HTTP front (page, errors, bounds)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import trio

from maestrod.web import feed as feed_module
from maestrod.web.feed import PAGE, WebFeed, endpoint_files
from maestrod.web.gate import inline_script_hashes
from tests.conftest import Daemon, RawClient
from tests.web_support import get, http_request, start_feed, ws_client, ws_rejected


async def test_refused_without_token_with_a_wrong_one_and_from_a_foreign_origin(
        nursery: trio.Nursery, daemon: Daemon) -> None:
    endpoint = await start_feed(nursery, daemon)
    assert (await ws_rejected(endpoint, token="")).status_code == 403
    assert (await ws_rejected(endpoint, token=endpoint.token[:-1] + "x")).status_code == 403
    assert (await ws_rejected(endpoint, token=endpoint.token + "x")).status_code == 403
    foreign = await ws_rejected(endpoint, origin="http://evil.example")
    assert foreign.status_code == 403 and b"Origin" in (foreign.body or b"")
    # The page's own origin under another port is foreign too.
    assert (await ws_rejected(endpoint, origin=f"http://127.0.0.1:{endpoint.port + 1}")).status_code == 403
    # Without any query at all.
    status, _, body = await http_request(endpoint.port, get("/rpc", endpoint.port, "Upgrade: websocket",
                                                            "Connection: Upgrade"))
    assert status == 403 and b"token" in body


async def test_allowed_without_origin_and_from_the_pages_own(nursery: trio.Nursery, daemon: Daemon) -> None:
    endpoint = await start_feed(nursery, daemon)
    for origin in (None, f"http://127.0.0.1:{endpoint.port}", f"http://localhost:{endpoint.port}"):
        async with ws_client(endpoint, origin=origin) as c:
            assert await c.call("system.ping") == "pong"
            who = await c.call("system.whoami")
            # The test process is outside every agent's tree: the person; its pid found via /proc/net/tcp.
            assert who["actor"] == "human" and who["peer_pid"] == __import__("os").getpid()


async def test_a_request_and_a_batch_are_answered(nursery: trio.Nursery, daemon: Daemon) -> None:
    endpoint = await start_feed(nursery, daemon)
    async with ws_client(endpoint) as c:
        proj = await c.call("project.create", {"name": "webp", "dir": "/tmp"})
        assert proj["name"] == "webp"
        await c.send([{"jsonrpc": "2.0", "id": "a", "method": "system.ping"},
                      {"jsonrpc": "2.0", "method": "system.ping"},  # a notification: no answer
                      {"jsonrpc": "2.0", "id": "b", "method": "project.get", "params": {"id": "webp"}},
                      {"jsonrpc": "2.0", "id": "c", "method": "no.such"}])
        batch = await c.recv_response()
        assert [r["id"] for r in batch] == ["a", "b", "c"]
        assert batch[0]["result"] == "pong", batch
        assert batch[1]["result"]["id"] == proj["id"], batch
        assert batch[2]["error"]["code"] == -32601
        # Bad JSON gets the socket's parse error, and the connection goes on.
        await c.ws.send_message("{nope")
        assert (await c.recv())["error"]["code"] == -32700
        # Pretty-printed JSON (newlines between tokens) is one request, not several lines.
        await c.ws.send_message('{\n  "jsonrpc": "2.0",\n  "id": 7,\n  "method": "system.ping"\n}')
        assert await c.recv() == {"jsonrpc": "2.0", "id": 7, "result": "pong"}
        # A raw newline inside a string is not JSON: refused, not repaired.
        await c.ws.send_message('{"jsonrpc": "2.0", "id": 8, "method": "system.\nping"}')
        assert (await c.recv())["error"]["code"] == -32700
        assert await c.call("system.ping") == "pong"


async def test_events_arrive_with_seq(nursery: trio.Nursery, daemon: Daemon, client: RawClient) -> None:
    endpoint = await start_feed(nursery, daemon)
    async with ws_client(endpoint) as c:
        sub = await c.call("events.subscribe", {"topics": ["project."]})
        await client.call("project.create", {"name": "evp", "dir": "/tmp"})
        note = await c.next_notification()
        assert note["method"] == "event"
        assert note["params"]["topic"].startswith("project.")
        assert note["params"]["seq"] > sub["last_seq"]


async def test_reconnect_resumes_by_replay_without_gap_or_repeat(
        nursery: trio.Nursery, daemon: Daemon, client: RawClient) -> None:
    endpoint = await start_feed(nursery, daemon)
    seen: list[int] = []
    async with ws_client(endpoint) as c:
        await c.call("events.subscribe", {"topics": ["project."]})
        for i in range(3):
            await client.call("project.create", {"name": f"r{i}", "dir": "/tmp"})
        while len(seen) < 3:
            seen.append((await c.next_notification())["params"]["seq"])
    # Disconnected: more changes happen.
    for i in range(3, 7):
        await client.call("project.create", {"name": f"r{i}", "dir": "/tmp"})
    async with ws_client(endpoint) as c:
        sub = await c.call("events.subscribe", {"topics": ["project."]})
        await client.call("project.create", {"name": "r7", "dir": "/tmp"})  # live, after the subscribe
        # The resume protocol: replay from the last seq seen up to the subscription's start; after it,
        # the live events.
        missed = await c.call("events.replay", {"since": seen[-1], "topics": ["project."]})
        seen += [e["seq"] for e in missed["events"] if e["seq"] <= sub["last_seq"]]
        assert seen[-1] == sub["last_seq"]
        seen.append((await c.next_notification())["params"]["seq"])
    names = [e["data"]["project"]["name"] for e in (await client.call("events.replay", {"since": 0, "topics": ["project."]}))
             ["events"]]
    assert names == [f"r{i}" for i in range(8)]
    assert len(seen) == 8 and seen == sorted(set(seen))  # every one, once, in order
    all_seqs = [e["seq"] for e in (await client.call("events.replay", {"since": 0,
                                                                        "topics": ["project."]}))["events"]]
    assert seen == all_seqs


async def test_get_serves_the_page_with_a_strict_policy(nursery: trio.Nursery, daemon: Daemon) -> None:
    endpoint = await start_feed(nursery, daemon)
    port = endpoint.port
    status, headers, body = await http_request(port, get("/", port))
    assert status == 200
    assert body == PAGE.read_bytes()
    assert headers["content-type"] == "text/html; charset=utf-8"
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert f"connect-src 'self' ws://127.0.0.1:{port} ws://localhost:{port}" in csp
    # The page's own inline scripts may run (by hash), and nothing else inline.
    for digest in inline_script_hashes(body):
        assert digest in csp.split("script-src")[1].split(";")[0]
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    # The same page by its other name; not by a name that is not this machine's (DNS rebinding).
    assert (await http_request(port, get("/", port, host=f"localhost:{port}")))[0] == 200
    assert (await http_request(port, get("/", port, host=f"evil.example:{port}")))[0] == 403
    # The fragment is the browser's: the server never sees the token in a page request.
    assert (await http_request(port, get("/favicon.ico", port)))[0] == 404
    assert (await http_request(port, get("/rpcx", port)))[0] == 404
    status, _, _ = await http_request(port, f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                            "Content-Length: 0\r\n\r\n".encode())
    assert status == 405


async def test_bad_requests_and_bounds(nursery: trio.Nursery, daemon: Daemon,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = await start_feed(nursery, daemon)
    port = endpoint.port
    assert (await http_request(port, b"GARBAGE\r\n\r\n"))[0] == 400
    huge = get("/", port, "X-Big: " + "a" * (feed_module.MAX_HEAD + 10))
    assert (await http_request(port, huge))[0] == 431
    # A token but no upgrade: 400 (the token is good, the request is not a WebSocket).
    assert (await http_request(port, get(f"/rpc?token={endpoint.token}", port)))[0] == 400
    # A client that sends half a head and stops is answered 408 and dropped, never held.
    monkeypatch.setattr(feed_module, "HEAD_TIMEOUT", 0.3)
    status, _, _ = await http_request(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
    assert status == 408
    # The feed still serves.
    async with ws_client(endpoint) as c:
        assert await c.call("system.ping") == "pong"


async def test_port_file_and_token_file_are_private(nursery: trio.Nursery, daemon: Daemon) -> None:
    endpoint = await start_feed(nursery, daemon)
    port_file, token_file = endpoint_files(daemon.socket_path)
    assert port_file.parent == daemon.socket_path.parent
    assert port_file.read_text().strip() == str(endpoint.port)
    assert token_file.read_text().strip() == endpoint.token
    for f in (port_file, token_file):
        assert f.stat().st_mode & 0o777 == 0o600
    assert (await (await daemon.connect()).call("system.version"))["web"] == endpoint.url


async def test_port_taken_runs_without_the_feed_and_says_so(
        nursery: trio.Nursery, daemon: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with caplog.at_level(logging.WARNING, logger="maestrod.web"):
            assert await nursery.start(WebFeed(daemon.app, port).run) is None
        assert f"cannot listen on 127.0.0.1:{port}" in caplog.text
        assert daemon.app.web is None
        assert not endpoint_files(daemon.socket_path)[1].exists()
        c = await daemon.connect()
        assert await c.call("system.ping") == "pong"
        assert (await c.call("web.info"))["enabled"] is False
    finally:
        taken.close()


def test_page_file_exists() -> None:
    # The dashboard ships in the package (hatch includes the file with maestrod/web/).
    assert Path(PAGE).is_file()
