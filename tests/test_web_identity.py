"""A WebSocket client started inside an agent's process tree is that agent (its pid found through
/proc/net/tcp, then the process-tree rule), token or not; ``maestroctl web token|url`` refuse agents."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from maestrod.web.tcp_peer import (diag_lookup, diag_request, diag_response, encode_endpoint, find_in_text,
                                   find_socket, parse_table, peer_process)
from tests.conftest import MAESTROCTL, Daemon, RawClient, maestroctl_env, wait_screen
from tests.session_support import _agent, _ctl, _project, _spawn
from tests.web_support import start_feed

#: An agent's program: trio-websocket's client asks who it is, and writes the answer to a file.
WS_WHOAMI = r'''
import json, os, sys, trio
from trio_websocket import open_websocket_url

async def main():
    async with open_websocket_url(sys.argv[1]) as ws:
        await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "system.whoami"}))
        who = json.loads(await ws.get_message())["result"]
        await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "web.info"}))
        info = json.loads(await ws.get_message())
    with open(sys.argv[2] + ".tmp", "w") as f:
        json.dump({"who": who, "pid": os.getpid(), "web_info": info}, f)
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])

trio.run(main)
'''


async def _json_file(path: Path, timeout: float = 20) -> dict[str, object]:
    import json

    with trio.fail_after(timeout):
        while not path.exists():
            await trio.sleep(0.02)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


async def test_an_agents_websocket_is_that_agent(nursery: trio.Nursery, daemon: Daemon, client: RawClient,
                                                 tmp_path: Path) -> None:
    endpoint = await start_feed(nursery, daemon)
    await _project(client, tmp_path)
    out = tmp_path / "who.json"
    # The token the person's dashboard uses, presented from inside an agent: still that agent.
    agent = await _spawn(client, ["sh", "-c", 'env -u MAESTRO_SESSION_TOKEN "$0" -c "$1" "$2" "$3"; exec cat',
                                  sys.executable, WS_WHOAMI, f"{endpoint.rpc_url}?token={endpoint.token}",
                                  str(out)], name="wsagent")
    got = await _json_file(out)
    who = got["who"]
    assert isinstance(who, dict)
    assert who["session_id"] == agent["id"] and who["actor"] == agent["id"]
    assert who["peer_pid"] == got["pid"]
    # ... with that agent's rights: the token is not handed to it.
    info = got["web_info"]
    assert isinstance(info, dict) and info["error"]["code"] == -32003
    assert "not agents" in info["error"]["message"]


async def test_web_token_and_url_refuse_agents(nursery: trio.Nursery, daemon: Daemon, client: RawClient,
                                              tmp_path: Path) -> None:
    endpoint = await start_feed(nursery, daemon)
    await _project(client, tmp_path)
    # By its session token in the environment ...
    _sid, _conn, token = await _agent(daemon, client, "tok")
    env = maestroctl_env(daemon.socket_path, MAESTRO_SESSION_TOKEN=token)
    for cmd in ("token", "url"):
        err = await _ctl(env, "web", cmd, code=1)
        assert "the web token is for the person, not agents" in err and endpoint.token not in err
    # ... and by its process tree without it.
    script = (f"env -u MAESTRO_SESSION_TOKEN {MAESTROCTL} web url; echo RC=$?; exec cat")
    agent = await _spawn(client, ["sh", "-c", script], name="treeagent")
    text = await wait_screen(daemon.app, agent["id"], lambda t: "RC=" in t, timeout=20)
    assert "RC=1" in text and "not agents" in text and endpoint.token not in text
    # The person gets both.
    person = maestroctl_env(daemon.socket_path)
    assert (await _ctl(person, "web", "token")).strip() == endpoint.token
    assert (await _ctl(person, "web", "url")).strip() == endpoint.dashboard_url


# --- the /proc/net/tcp parsing, on sample text ------------------------------------------------------

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1E35 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 41001 1 0 100 0 0 10 0
   1: 0100007F:D2C4 0100007F:1E35 01 00000000:00000000 00:00000000 00000000  1000        0 41077 1 0 20 4 30 10 -1
   2: 0100007F:1E35 0100007F:D2C4 01 00000000:00000000 00:00000000 00000000  1000        0 41078 1 0 20 4 30 10 -1
   3: 0100007F:D2C6 0100007F:1E35 06 00000000:00000000 03:00000F85 00000000     0        0 0 3 0
   garbage line
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:D2C8 0000000000000000FFFF00000100007F:1E35 01 00000000:00000000 00:00000000 00000000  1001        0 52000 1 0 20 4 30 10 -1
   1: 00000000000000000000000001000000:D2CA 00000000000000000000000001000000:1E35 01 00000000:00000000 00:00000000 00000000  1000        0 52001 1 0 20 4 30 10 -1
"""


def test_parse_tcp_table() -> None:
    rows = list(parse_table(TCP))
    assert len(rows) == 4  # the header and the garbage line are skipped
    assert rows[1].local == ("127.0.0.1", 0xD2C4) and rows[1].remote == ("127.0.0.1", 7733)
    assert rows[1].uid == 1000 and rows[1].inode == 41077
    # The client's end of 127.0.0.1:53956 -> 127.0.0.1:7733, not the server's end of the same connection.
    found = find_socket(rows, ("127.0.0.1", 0xD2C4), ("127.0.0.1", 7733))
    assert found is not None and found.inode == 41077
    # A socket in TIME_WAIT (inode 0) belongs to nobody: no answer rather than a wrong one.
    assert find_socket(rows, ("127.0.0.1", 0xD2C6), ("127.0.0.1", 7733)) is None
    assert find_socket(rows, ("127.0.0.1", 1), ("127.0.0.1", 7733)) is None


def test_parse_tcp6_table() -> None:
    rows = list(parse_table(TCP6))
    # IPv4-mapped addresses are the same peer as plain IPv4.
    assert rows[0].local == ("127.0.0.1", 0xD2C8) and rows[0].uid == 1001
    assert rows[1].local == ("::1", 0xD2CA)
    found = find_socket(rows, ("::ffff:127.0.0.1", 0xD2C8), ("127.0.0.1", 7733))
    assert found is not None and found.inode == 52000
    assert find_socket(rows, ("::1", 0xD2CA), ("::1", 7733)) is not None


def test_find_in_text_matches_the_full_parse() -> None:
    assert encode_endpoint(("127.0.0.1", 7733), v6=False) == "0100007F:1E35"
    assert encode_endpoint(("127.0.0.1", 7733), v6=True) == "0000000000000000FFFF00000100007F:1E35"
    for peer, ours, text, v6 in [((("127.0.0.1", 0xD2C4)), ("127.0.0.1", 7733), TCP, False),
                                 (("127.0.0.1", 0xD2C6), ("127.0.0.1", 7733), TCP, False),
                                 (("127.0.0.1", 0xD2C8), ("127.0.0.1", 7733), TCP6, True),
                                 (("::1", 0xD2CA), ("::1", 7733), TCP6, True),
                                 (("::1", 0xD2CA), ("::1", 7733), TCP, False),
                                 (("127.0.0.1", 1), ("127.0.0.1", 7733), TCP, False)]:
        assert find_in_text(text, peer, ours, v6=v6) == find_socket(parse_table(text), peer, ours)


def test_sock_diag_request_and_answer() -> None:
    import socket
    import struct

    req = diag_request(("127.0.0.1", 0xD2C4), ("127.0.0.1", 7733), seq=9)
    length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", req)
    assert (length, kind, flags, seq) == (len(req), 20, 1, 9) and len(req) == 16 + 8 + 48
    family, proto = struct.unpack_from("=BB", req, 16)
    assert (family, proto) == (socket.AF_INET, socket.IPPROTO_TCP)
    # The socket id names the peer's end: source = the peer, destination = us (ports in network order).
    assert struct.unpack_from("!HH", req, 24) == (0xD2C4, 7733)
    assert req[28:32] == bytes([127, 0, 0, 1]) and req[44:48] == bytes([127, 0, 0, 1])
    six = diag_request(("::1", 5), ("::1", 7733))
    assert struct.unpack_from("=B", six, 16)[0] == socket.AF_INET6 and six[28:44] == bytes(15) + b"\x01"
    # An answer: inet_diag_msg with uid 1000 and inode 4242.
    msg = struct.pack("=BBBB", 2, 1, 0, 0) + bytes(48) + struct.pack("=IIIII", 0, 0, 0, 1000, 4242)
    answer = struct.pack("=IHHII", 16 + len(msg), 20, 0, 9, 0) + msg
    row = diag_response(answer, ("127.0.0.1", 0xD2C4), ("127.0.0.1", 7733))
    assert row is not None and (row.uid, row.inode) == (1000, 4242)
    error = struct.pack("=IHHII", 36, 2, 0, 9, 0) + struct.pack("=i", -2) + bytes(16)
    assert diag_response(error, ("127.0.0.1", 1), ("127.0.0.1", 7733)) is None
    assert diag_response(b"", ("127.0.0.1", 1), ("127.0.0.1", 7733)) is None


def test_peer_process_on_a_real_connection() -> None:
    import os
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with server, socket.create_connection(server.getsockname()) as cli:
        conn, addr = server.accept()
        with conn:
            found = peer_process(addr, conn.getsockname())
            assert found is not None and found.pid == os.getpid() and found.uid == os.getuid()
            assert cli.getsockname() == addr
            # The kernel's answer and the table's are the same socket: the client's end.
            row = diag_lookup(addr, conn.getsockname())
            text = Path("/proc/net/tcp").read_text()
            assert row is not None and row == find_in_text(text, addr, conn.getsockname(), v6=False)
            assert row.inode == os.fstat(cli.fileno()).st_ino
