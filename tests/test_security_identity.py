"""Hardening items 3 and 4: a connection from inside an agent's process tree is that agent, token or not;
a token of another session is refused there; a connection of an exited session stops acting.

Real daemon, real PTY sessions running the real maestroctl from inside their process tree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import trio

from maestrod.identity import PeerIdentity, ProcessRoot, read_stat
from shared import errors
from tests.conftest import Daemon, EventLog, RawClient, maestroctl_env, wait_screen
from tests.session_support import _agent, _ctl, _error, _project, _spawn


async def _done(app: object, sid: str, marker: str = "RC=") -> str:
    return await wait_screen(app, sid, lambda t: marker in t, timeout=20)  # type: ignore[arg-type]


async def _file(path: Path, timeout: float = 20) -> str:
    """The file's text once its writer finished (it ends with an RC= line)."""
    with trio.fail_after(timeout):
        while not (path.exists() and "RC=" in path.read_text()):
            await trio.sleep(0.02)
    return path.read_text()


async def test_an_agent_without_its_token_is_still_that_agent(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path) -> None:
    await _project(client, tmp_path)
    victim = await _spawn(client, ["cat"], name="victim")
    script = (f"env -u MAESTRO_SESSION_TOKEN maestroctl session kill {victim['id']}; echo RC=$?; "
              "env -u MAESTRO_SESSION_TOKEN maestroctl rpc system.whoami; echo WHO=$?; exec cat")
    agent = await _spawn(client, ["sh", "-c", script], name="agent")
    text = await _done(daemon.app, agent["id"], "WHO=")
    assert "RC=1" in text, text
    assert f"may not kill session {victim['id']}" in text.replace("\n", ""), text
    # whoami from the same tree, still without the token: the agent
    assert agent["id"] in text.split("RC=1", 1)[1], text
    assert (await client.call("session.get", {"id": victim["id"]}))["status"] != "exited"


async def test_a_token_of_another_session_is_refused_inside_an_agents_tree(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path) -> None:
    await _project(client, tmp_path)
    other, _conn, other_token = await _agent(daemon, client, "other")
    script = ('MAESTRO_SESSION_TOKEN="$OTHER_TOKEN" maestroctl rpc system.whoami; echo RC=$?; exec cat')
    agent = await _spawn(client, ["sh", "-c", script], name="agent", env={"OTHER_TOKEN": other_token})
    text = await _done(daemon.app, agent["id"])
    flat = text.replace("\n", "")
    assert "RC=1" in flat, text
    assert f"the token names session {other}" in flat and f"inside session {agent['id']}" in flat, text


async def test_a_raw_connection_with_another_sessions_token_gets_the_reason(
        daemon: Daemon, client: RawClient, tmp_path: Path) -> None:
    """The same refusal, seen by a client that sends system.auth as a request (the code and data)."""
    await _project(client, tmp_path)
    other, _conn, other_token = await _agent(daemon, client, "other")
    helper = tmp_path / "auth.py"
    helper.write_text(
        "import json, os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(os.environ['MAESTRO_SOCKET'])\n"
        "f = s.makefile('rwb')\n"
        "for i, (m, p) in enumerate([('system.auth', {'token': sys.argv[1]}), ('system.whoami', {})]):\n"
        "    f.write(json.dumps({'jsonrpc': '2.0', 'id': i, 'method': m, 'params': p}).encode() + b'\\n')\n"
        "    f.flush(); print('REPLY', f.readline().decode().strip(), flush=True)\n"
        "print('RC=0')\n")
    out = tmp_path / "out.txt"
    agent = await _spawn(client, ["sh", "-c", f"python3 {helper} {other_token} > {out} 2>&1; exec cat"],
                         name="agent")
    replies = [json.loads(line.split(" ", 1)[1]) for line in (await _file(out)).splitlines()
               if line.startswith("REPLY ")]
    assert replies[0]["error"]["code"] == errors.FORBIDDEN
    assert replies[0]["error"]["data"] == {"token_session": other, "peer_session": agent["id"],
                                           "reason": "token_mismatch"}
    # the connection stays refused, never falling back to acting as anyone
    assert replies[1]["error"]["code"] == errors.FORBIDDEN


async def test_a_person_outside_every_agent_is_the_human(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path) -> None:
    await _project(client, tmp_path)
    victim = await _spawn(client, ["cat"], name="victim")
    env = maestroctl_env(daemon.socket_path)
    who = json.loads(await _ctl(env, "rpc", "system.whoami", "--json"))
    assert who["actor"] == "human" and who["session_id"] is None
    await _ctl(env, "session", "kill", victim["id"])
    await events.status(victim["id"], "exited")


async def test_an_orphaned_background_child_is_still_its_agent(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path) -> None:
    """Re-parented to init when its shell exits: the terminal session still names the agent."""
    await _project(client, tmp_path)
    victim = await _spawn(client, ["cat"], name="victim")
    out = tmp_path / "out.txt"
    go = tmp_path / "go"
    # The subshell exits at once; its child waits for `go` (so it is surely orphaned), then acts.
    script = (f"( (while [ ! -e {go} ]; do sleep 0.05; done; "
              f"echo PPID=$(awk '{{print $4}}' /proc/self/stat) > {out}.ppid; "
              f"env -u MAESTRO_SESSION_TOKEN maestroctl session kill {victim['id']} > {out} 2>&1; "
              f"echo RC=$? >> {out}) & ); exec cat")
    agent = await _spawn(client, ["sh", "-c", script], name="agent")
    root = daemon.app.sessions.sessions[agent["id"]].pty.pid
    go.touch()
    text = await _file(out)
    assert "RC=1" in text and f"session {agent['id']}" in text and "may not kill" in text, text
    assert f"PPID={root}" not in Path(f"{out}.ppid").read_text()


async def test_an_exited_sessions_connection_is_refused_on_its_next_request(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path) -> None:
    await _project(client, tmp_path)
    sid, conn, _token = await _agent(daemon, client, "w1")
    assert (await conn.call("system.whoami"))["session_id"] == sid
    await client.call("session.kill", {"id": sid})
    await events.status(sid, "exited")
    err = await _error(conn, "session.list", {})  # the same, already authenticated connection
    assert err["code"] == errors.FORBIDDEN
    assert err["data"] == {"session": sid, "reason": "session_exited"}
    assert f"session {sid} has exited" in err["message"]


async def test_a_leftover_process_of_an_exited_agent_is_refused(
        daemon: Daemon, client: RawClient, events: EventLog, tmp_path: Path) -> None:
    """A background child that outlives its agent is not taken for the human."""
    await _project(client, tmp_path)
    victim = await _spawn(client, ["cat"], name="victim")
    out = tmp_path / "out.txt"
    go = tmp_path / "go"
    script = (f"trap '' HUP; (trap '' HUP; while [ ! -e {go} ]; do sleep 0.05; done; "
              f"env -u MAESTRO_SESSION_TOKEN maestroctl session kill {victim['id']} > {out} 2>&1; "
              f"echo RC=$? >> {out}) & echo STARTED; read line")
    agent = await _spawn(client, ["sh", "-c", script], name="agent")
    await _done(daemon.app, agent["id"], "STARTED")
    await client.call("session.input", {"id": agent["id"], "text": "bye\r"})
    await events.status(agent["id"], "exited")
    go.touch()
    text = await _file(out)
    assert "RC=1" in text and f"session {agent['id']} has exited" in text, text
    assert (await client.call("session.get", {"id": victim["id"]}))["status"] != "exited"


def test_pids_are_matched_with_their_start_time(tmp_path: Path) -> None:
    """A recorded root whose pid now belongs to another process (another start time) matches nothing."""
    me = os.getpid()
    st = read_stat(me)
    assert st is not None
    roots = [ProcessRoot("s-1", me, True)]
    ident = PeerIdentity(lambda: roots, lambda sid: "working")
    assert ident.session_for_pid(me) == "s-1"
    assert ident.session_for_pid(os.getppid()) is None  # our parent is above the root
    # a fake /proc where pid `me` started later than the recorded root: a reused pid
    proc = tmp_path / "proc"
    (proc / str(me)).mkdir(parents=True)
    fields = ["S", "1", str(me), str(me)] + ["0"] * 15 + [str(st.start + 100)] + ["0"] * 10
    (proc / str(me) / "stat").write_text(f"{me} (x) y) " + " ".join(fields))
    fresh = PeerIdentity(lambda: roots, lambda sid: "working")
    fresh._refresh_roots()  # records the real start time
    fresh._proc = proc
    assert fresh.session_for_pid(me) is None
