"""How maestrod starts a Codex session (maestrod/sessions/codex.py, launch.codex_launch, the hook intake's
rollout check): what it writes (only the session's own directory), its argv and environment, and which
rollout paths a hook may name. No Codex binary here: a stand-in executable is found as `bin`."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from maestrod.config import CodexConfig
from maestrod.sessions import briefing, codex, launch
from shared import errors
from shared.messages.session import SessionSpawn
from tests.conftest import Daemon, EventLog, RawClient, wait_screen
from tests.session_support import _as


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    binary = tmp_path / "bin" / "codex"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    return binary


def spawn(**kw: object) -> SessionSpawn:
    return SessionSpawn(project="p", name="agent", agent="codex", **kw)  # type: ignore[arg-type]


def test_launch_writes_only_the_session_dir_and_never_home(tmp_path: Path, fake_codex: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    home, work, data = tmp_path / "home", tmp_path / "work", tmp_path / "data"
    for d in (home, work, data):
        d.mkdir()
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text('model = "theirs"\n')
    monkeypatch.setenv("HOME", str(home))
    session_dir = data / "sessions" / "s-1"
    prompt_file = session_dir / briefing.SYSTEM_PROMPT_FILE
    cfg = CodexConfig(bin=str(fake_codex), base_url="http://127.0.0.1:9/v1", env_key="MY_KEY", model="gpt-5")
    before_home, before_work = tree(home), tree(work)
    env = {"PATH": os.defpath, "HOME": str(home), "CODEX_SANDBOX": "seatbelt"}
    started = launch.codex_launch(spawn(argv=["--sandbox", "workspace-write"]), env, str(work), session_dir,
                                  prompt_file, cfg)

    assert tree(home) == before_home and tree(work) == before_work  # no ~/.codex write, no AGENTS.md
    assert (home / ".codex" / "config.toml").read_text() == 'model = "theirs"\n'
    assert tree(data) == {"sessions", "sessions/s-1", "sessions/s-1/codex-home", "sessions/s-1/codex-home/config.toml"}
    codex_home = session_dir / "codex-home"
    assert env["CODEX_HOME"] == str(codex_home) and oct(codex_home.stat().st_mode & 0o777) == "0o700"

    config = tomllib.loads((codex_home / "config.toml").read_text())
    assert set(config["hooks"]) == set(codex.HOOK_EVENTS)
    handler = config["hooks"]["Stop"][0]["hooks"][0]
    assert handler["type"] == "command" and handler["command"].endswith(" hook Stop") and handler["timeout"] == 10
    assert os.path.isabs(handler["command"].split()[0])

    argv = started.argv
    assert argv[0] == str(fake_codex) and "--no-daemon" in argv and "--dangerously-bypass-hook-trust" in argv
    overrides = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
    assert f'projects."{work}".trust_level="trusted"' in overrides
    assert 'model_provider="maestro"' in overrides and 'model="gpt-5"' in overrides
    provider = tomllib.loads(next(o for o in overrides if o.startswith("model_providers.")))
    assert provider["model_providers"]["maestro"] == {"name": "maestro", "base_url": "http://127.0.0.1:9/v1",
                                                      "wire_api": "responses", "env_key": "MY_KEY"}
    assert argv[-2:] == ["--sandbox", "workspace-write"]
    # The briefing: a placeholder where it is stored, the text as a TOML string where it is executed.
    assert started.placeholder in argv and str(prompt_file) in started.placeholder
    text = 'Brief "quoted"\nline two \\ é \x7f \U0001f600'
    real = started.real_argv(text)
    instructions = next(a for a in real if a.startswith("developer_instructions="))
    assert tomllib.loads(instructions)["developer_instructions"] == text
    assert started.transcript_path is None and started.claude_session_id is None


def test_session_env_drops_an_outer_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_SANDBOX", "seatbelt")
    monkeypatch.setenv("CODEX_HOME", "/somewhere/else")
    monkeypatch.setenv("MY_KEY", "sk-secret")
    from maestrod.config import ClaudeConfig

    env = launch.session_env(spawn(), {"MAESTRO_SESSION_ID": "s-1"}, ClaudeConfig())
    assert "CODEX_SANDBOX" not in env and "CODEX_HOME" not in env
    assert env["MY_KEY"] == "sk-secret"  # the user's key variable passes through


def test_use_login_copies_auth_json_privately(tmp_path: Path, fake_codex: Path) -> None:
    home, session_dir = tmp_path / "home", tmp_path / "data" / "sessions" / "s-2"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "auth.json").write_text('{"tokens": {}}')
    env = {"PATH": os.defpath, "HOME": str(home)}
    started = launch.codex_launch(spawn(), env, str(tmp_path), session_dir, session_dir / "p.md",
                                  CodexConfig(bin=str(fake_codex), use_login=True))
    copy = session_dir / "codex-home" / "auth.json"
    assert copy.read_text() == '{"tokens": {}}' and oct(copy.stat().st_mode & 0o777) == "0o600"
    assert not any(a.startswith("model_provider") for a in started.argv)  # Codex's own provider, logged in


def test_refusals(tmp_path: Path, fake_codex: Path) -> None:
    env = {"PATH": str(tmp_path / "nowhere"), "HOME": str(tmp_path)}
    with pytest.raises(errors.RpcError, match="Codex CLI not found"):
        launch.codex_launch(spawn(), dict(env), str(tmp_path), tmp_path / "s", tmp_path / "p.md", CodexConfig())
    with pytest.raises(errors.RpcError, match="use_login"):
        launch.codex_launch(spawn(), dict(env), str(tmp_path), tmp_path / "s", tmp_path / "p.md",
                            CodexConfig(bin=str(fake_codex), use_login=True))
    with pytest.raises(errors.RpcError, match="allowed_tools"):
        launch.codex_launch(spawn(allowed_tools="Bash"), dict(env), str(tmp_path), tmp_path / "s",
                            tmp_path / "p.md", CodexConfig(bin=str(fake_codex)))


def test_rollout_paths_a_hook_may_name(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    day = home / "sessions" / "2026" / "12" / "02"
    day.mkdir(parents=True)
    name = "rollout-2026-12-02T16-35-06-01a2379c-16c5-7d22-9d3f-82322957ebdd.jsonl"
    assert codex.check_rollout(str(home), str(day / name)) == str(day / name)
    assert codex.check_rollout(str(home), str(day / ".." / "02" / name)) == str(day / name)
    for bad in (str(tmp_path / name), str(home / "sessions" / name), str(day / "notes.jsonl"), "relative/" + name,
                str(day / name) + "\x00", str(home / "sessions" / "2026" / "12" / "xx" / name)):
        assert codex.check_rollout(str(home), bad) is None, bad
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / "sessions" / "2026" / "11").mkdir()
    (home / "sessions" / "2026" / "11" / "30").symlink_to(elsewhere)
    assert codex.check_rollout(str(home), str(home / "sessions" / "2026" / "11" / "30" / name)) is None

    assert codex.find_rollout(str(home)) is None
    (day / name).write_text("{}\n")
    older = day.parent / "01"
    older.mkdir()
    (older / name.replace("12-02T", "12-01T")).write_text("{}\n")
    assert codex.find_rollout(str(home)) == str(day / name)  # the newest day


# -- the hook intake with a Codex session (a stand-in `codex` that draws Codex's empty composer) -----------

STAND_IN = """#!/bin/sh
printf 'TOKEN=%s\\n' "$MAESTRO_SESSION_TOKEN"
printf '\\n\\342\\200\\272 Ask Codex to do anything\\n\\n  gpt-5 default\\n  ? for shortcuts\\n'
exec cat
"""


async def test_codex_hooks_drive_the_status_and_name_the_rollout(daemon: Daemon, client: RawClient,
                                                                 short_tmp: Path, events: EventLog) -> None:
    binary = short_tmp / "codex"
    binary.write_text(STAND_IN)
    binary.chmod(0o755)
    work = short_tmp / "work"
    work.mkdir()
    await client.call("project.create", {"name": "p", "dir": str(work)})
    daemon.app.config.codex.bin = str(binary)
    s = await client.call("session.spawn", {"project": "p", "name": "cx", "agent": "codex", "cwd": str(work)})
    sid = s["id"]
    await events.status(sid, "idle")  # the empty composer, before any hook (SessionStart comes with a prompt)
    text = await wait_screen(daemon.app, sid, lambda t: "TOKEN=" in t)
    agent = await _as(daemon, text.split("TOKEN=", 1)[1].split()[0])
    home = daemon.app.data_dir / "sessions" / sid / "codex-home"
    day = home / "sessions" / "2026" / "12" / "02"
    rollout = day / "rollout-2026-12-02T16-35-06-01a2379c-16c5-7d22-9d3f-82322957ebdd.jsonl"

    async def hook(event: str, **payload: object) -> None:
        await agent.call("hook.event", {"event": event, "payload": {"hook_event_name": event, **payload}})

    # A path outside the session's CODEX_HOME is refused and changes nothing.
    await hook("SessionStart", session_id="thread-1", transcript_path=str(short_tmp / rollout.name), source="startup")
    assert (await client.call("session.get", {"id": sid}))["transcript_path"] is None
    refused = [e for e in events.items if e["topic"] == "session.hook" and e["data"].get("refused_reason")]
    assert refused and "CODEX_HOME" in refused[0]["data"]["refused_reason"]
    # Its own rollout (not written yet) is taken, announced, and the thread id kept.
    await hook("SessionStart", session_id="thread-1", transcript_path=str(rollout), source="startup")
    found = await events.wait_for(lambda e: e["topic"] == "session.transcript" and e["data"]["session_id"] == sid)
    assert found["data"]["transcript_path"] == str(rollout) and found["data"]["source"] == "hook"
    row = await client.call("session.get", {"id": sid})
    assert row["transcript_path"] == str(rollout) and row["claude_session_id"] == "thread-1"

    mark = len(events.items)
    # Context for the model goes back as JSON: Codex drops a UserPromptSubmit hook's plain text.
    daemon.app.hook_extensions.add_context_provider("UserPromptSubmit", lambda _sid, _p: "context for codex")
    answer = await agent.call("hook.event", {"event": "UserPromptSubmit", "payload": {"prompt": "go"}})
    assert json.loads(answer["stdout"]) == {"hookSpecificOutput": {"hookEventName": "UserPromptSubmit",
                                                                   "additionalContext": "context for codex"}}
    await events.status(sid, "working", start=mark)
    await hook("PermissionRequest", tool_name="Bash", tool_input={"command": "rm -rf build"})
    waiting = await events.status(sid, "waiting_input", start=mark)
    assert "permission to run Bash: rm -rf build" in json.dumps(waiting["data"])
    why = await client.call("session.explain", {"id": sid})
    assert why["reason"] == "Codex asks: permission to run Bash: rm -rf build" and not why["gate"]["open"]
    moved_on = len(events.items)
    await hook("PostToolUse", tool_name="Bash", tool_response="")
    await events.status(sid, "working", start=moved_on)  # answered: the dialog is over
    await hook("Stop", last_assistant_message="done")
    await events.status(sid, "idle", start=moved_on)
