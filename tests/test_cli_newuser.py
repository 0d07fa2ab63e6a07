"""The command line as a new user meets it: usage errors exit 2 and speak in flags, --version, maestrod's
real defaults in --help, `session digests` with no ids from a person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import shared
from maestroctl.usage import speak_in_flags
from tests.conftest import MAESTROCTL, MAESTROD, Daemon, EventLog, RawClient, add_project, maestroctl_env
from tests.session_support import TOKEN_CAT, _agent, _ctl, _spawn


def test_versions() -> None:
    for program, name in ((MAESTROCTL, "maestroctl"), (MAESTROD, "maestrod")):
        r = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stdout) == (0, f"{name} {shared.__version__}\n"), r.stderr
    # maestroctl's answers without building its parser (argparse stays unimported: start-up).
    code = ("import sys; from maestroctl.main import main; main(['--version']); "
            "print('argparse' in sys.modules, 'maestroctl.parser' in sys.modules)")
    r = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.stdout.splitlines() == [f"maestroctl {shared.__version__}", "False False"], r.stderr
    # --help lists it too.
    assert "--version" in subprocess.run([MAESTROCTL, "--help"], capture_output=True, text=True).stdout


def test_maestrod_help_shows_the_real_defaults() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "XDG_"))}
    env.update(COLUMNS="300", XDG_RUNTIME_DIR="/run/user/4242", XDG_DATA_HOME="/srv/data",
               XDG_CONFIG_HOME="/srv/conf")
    out = subprocess.run([MAESTROD, "--help"], capture_output=True, text=True, env=env).stdout
    assert "(default: /run/user/4242/maestro/maestrod.sock:" in out
    assert "(default: /srv/data/maestro:" in out and "(default: /srv/conf/maestro/config.toml:" in out
    env["MAESTRO_SOCKET"] = "/srv/sock/m.sock"
    out = subprocess.run([MAESTROD, "--help"], capture_output=True, text=True, env=env).stdout
    assert "(default: /srv/sock/m.sock:" in out


def test_speak_in_flags() -> None:
    names = {"older_than": "--older-than", "cascade": "--cascade", "ids": "ID", "my_workers": "--my-workers",
             "limit": "--limit"}
    assert speak_in_flags("Invalid params: older_than: expected a duration such as 30m, got '7x'; "
                          "limit: must be between 1 and 1000, got 0", names) == (
        "Invalid params: --older-than: expected a duration such as 30m, got '7x'; "
        "--limit: must be between 1 and 1000, got 0")
    assert speak_in_flags("task t-1 has 2 descendant task(s); pass cascade to delete them too", names) == (
        "task t-1 has 2 descendant task(s); pass --cascade to delete them too")
    assert speak_in_flags("Invalid params: give ids, or my_workers (the sessions you spawned)", names) == (
        "Invalid params: give ID, or --my-workers (the sessions you spawned)")
    assert speak_in_flags("env[0]: unknown field", names) == "env[0]: unknown field"  # not this command's
    assert speak_in_flags("cascade", {}) == "cascade"


async def test_usage_errors_exit_2_and_speak_in_flags(daemon: Daemon, client: RawClient,
                                                      short_tmp: Path) -> None:
    env = maestroctl_env(daemon.socket_path)
    pid = add_project(daemon.app, "p", str(short_tmp))
    s = await _spawn(client, ["cat"], name="out")
    # The commands' own checks.
    assert "--tail must be at least 1" in await _ctl(env, "session", "output", "out", "--tail", "0", code=2)
    assert "--text and/or --key" in await _ctl(env, "session", "input", s["id"], code=2)
    assert "--timeout must be >= 0" in await _ctl(env, "mail", "wait", "--timeout", "-1", code=2)
    assert "--project is required" in await _ctl(env, "task", "create", "--title", "x", code=2)
    assert "--env wants KEY=VALUE" in await _ctl(env, "session", "spawn", "--project", "p", "--name", "e", "--env", "X",
                                                 "--", "cat", code=2)
    # argparse's own.
    assert "invalid choice" in await _ctl(env, "task", "list", "--project", "p", "--status", "x", code=2)
    # -32602 from the daemon on a command's arguments: exit 2, the param spelled as the flag.
    err = await _ctl(env, "session", "prune", "--older-than", "7x", code=2)
    assert "--older-than: expected a duration such as 30m" in err and "older_than" not in err
    err = await _ctl(env, "session", "digests", "--my-workers", code=2)
    assert "--my-workers is relative to the calling session" in err and "my_workers" not in err
    # The raw escape hatch keeps the daemon's words and its exit code.
    err = await _ctl(env, "rpc", "session.prune", '{"older_than": "7x"}', code=1)
    assert "older_than: expected a duration" in err
    # A refusal is the daemon's answer (exit 1), but it too speaks in flags.
    parent = await client.call("task.create", {"project": pid, "title": "parent"})
    await client.call("task.create", {"project": pid, "title": "child", "parent": parent["id"]})
    err = await _ctl(env, "task", "delete", parent["id"], code=1)
    assert "pass --cascade to delete them too" in err
    await client.call("session.kill", {"id": s["id"]})
    err = await _ctl(env, "project", "delete", "p", code=1)
    assert "first or pass --cascade" in err and "pass cascade" not in err


async def test_digests_without_ids_from_a_person_shows_every_live_session(
        daemon: Daemon, client: RawClient, short_tmp: Path, events: EventLog) -> None:
    env = maestroctl_env(daemon.socket_path)
    add_project(daemon.app, "p", str(short_tmp))
    one = await _spawn(client, ["cat"], name="one")
    two = await _spawn(client, TOKEN_CAT, name="two")
    gone = await _spawn(client, ["true"], name="gone")
    await events.status(gone["id"], "exited")
    got = json.loads(await _ctl(env, "--json", "session", "digests"))
    assert sorted(s["id"] for s in got["sessions"]) == sorted([one["id"], two["id"]])
    human = await _ctl(env, "session", "digests")
    assert "one" in human and "two" in human and "gone" not in human
    # An agent must still say which: its own workers or ids (spoken in flags on the command line).
    sid, agent, token = await _agent(daemon, client, "lead", role="coordinator")
    resp = await agent.request("session.digests", {})
    assert resp["error"]["code"] == -32602 and "my_workers" in resp["error"]["message"]
    err = await _ctl(dict(env, MAESTRO_SESSION_TOKEN=token), "session", "digests", code=2)
    assert "give ID, or --my-workers" in err
