"""``maestroctl digest FILE``: offline digests through the real CLI (no daemon anywhere)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import MAESTROCTL, maestroctl_env
from tests.test_digest_service_support import add_session, append, prompt, say

HERE = Path(__file__).parent
TRANSCRIPTS = HERE / "data" / "transcripts"
GOLDEN = HERE / "data" / "golden"
SAMPLES = [
    TRANSCRIPTS / "claude-2.1.328" / "print-mode-tools-and-errors.jsonl",
    TRANSCRIPTS / "ee_e770a56988_0_full.jsonl",
    TRANSCRIPTS / "spotter-8463c716-subagents" / "subagents" / "agent-a7be2f0.jsonl",
]


def ctl(*args: str, input_: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = maestroctl_env(Path("/nonexistent/maestrod.sock"))  # proves no daemon is involved
    return subprocess.run([MAESTROCTL, *args], env=env, capture_output=True, input=input_, timeout=60,
                          check=False)


def golden(sample: Path, mode: str) -> str:
    name = str(sample.relative_to(TRANSCRIPTS)).replace("/", "__")
    return (GOLDEN / f"{name}.{mode}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("mode", ["tools", "text"])
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_digest_matches_the_golden_digest(sample: Path, mode: str) -> None:
    r = ctl("digest", str(sample), "--mode", mode, "--last", "0", "--utc")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == golden(sample, mode)


def test_json_output() -> None:
    sample = SAMPLES[0]
    r = ctl("--json", "digest", str(sample), "--last", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"\n") == 1, "one line of JSON"
    out = json.loads(r.stdout)
    assert out["file"] == str(sample) and out["mode"] == "tools"
    assert out["total_entries"] == 12 and len(out["entries"]) == 3
    assert out["entries"][-1]["summary"].startswith("The add function is fixed")
    assert out["state"] == "idle" and out["usage"]["output_tokens"] > 0 and out["cost_usd"] > 0
    assert {"needs_attention", "attention_reason", "stuck", "running", "model"} <= set(out)
    text = json.loads(ctl("--json", "digest", str(sample), "--mode", "text").stdout)
    assert text["mode"] == "text" and all(e["kind"] in ("prompt", "text") for e in text["entries"])


def test_last_and_stdin() -> None:
    sample = SAMPLES[0]
    r = ctl("digest", str(sample), "--last", "2", "--utc")
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 3 and lines[0].startswith("# idle · 2/12 tools")
    piped = ctl("digest", "-", "--last", "2", "--utc", input_=sample.read_bytes())
    assert piped.returncode == 0 and piped.stdout == r.stdout


def test_exit_codes() -> None:
    missing = ctl("digest", "/nonexistent/t.jsonl")
    assert missing.returncode == 2 and b"cannot read /nonexistent/t.jsonl" in missing.stderr
    assert ctl("digest", str(SAMPLES[0]), "--mode", "words").returncode == 2
    assert ctl("digest", str(SAMPLES[0]), "--last", "-1").returncode == 2
    assert ctl("digest").returncode == 2
    empty = ctl("digest", "-", input_=b"")
    assert empty.returncode == 0 and empty.stdout.decode().startswith("# idle · 0/0 tools")
    garbage = ctl("--json", "digest", "-", input_=b"not json\n\xff\n")
    assert garbage.returncode == 0 and json.loads(garbage.stdout)["total_entries"] == 0


def test_the_fast_path_parses_it_and_the_digest_code_loads_lazily() -> None:
    code = ("import sys; from maestroctl import fastargs; a = fastargs.parse(['digest', 'f.jsonl', '--last', '5']);"
            "print(a is not None, a.last, 'shared.digest' in sys.modules, 'shared.transcript' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert out.stdout.split() == ["True", "5", "False", "False"], out.stderr


# --------------------------------------------------------------------------------------------------------
# `maestroctl session log|digests|usage` against an in-process daemon (maestroctl/commands/session_log.py)


async def _ctl(daemon: Any, *args: str, token: str | None = None) -> Any:
    env = maestroctl_env(daemon.socket_path, **({"MAESTRO_SESSION_TOKEN": token} if token else {}))
    return await trio.run_process([MAESTROCTL, *args], capture_stdout=True, capture_stderr=True, env=env,
                                  check=False)


async def test_session_log_digests_and_usage(daemon: Any, tmp_path: Path) -> None:
    app = daemon.app
    path = tmp_path / "w.jsonl"
    path.write_bytes(SAMPLES[0].read_bytes())
    add_session(app, "s-boss", None, role="coordinator", name="boss",
                token_hash=hashlib.sha256(b"tok").hexdigest())
    add_session(app, "s-w", path, name="api", parent="s-boss")
    other = tmp_path / "o.jsonl"
    other.write_bytes(prompt("other job", 0) + say("Working on the other job.", 1))
    add_session(app, "s-o", other, name="db", parent="s-boss")

    r = await _ctl(daemon, "--json", "session", "log", "api", "--last", "3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["id"] == "s-w" and len(out["entries"]) == 3 and out["total_entries"] == 12

    r = await _ctl(daemon, "session", "log", "s-w", "--mode", "text")
    lines = r.stdout.decode().splitlines()
    assert lines[0].startswith("# api (s-w) · working") and "4/4 text" in lines[0]
    assert lines[-1].endswith("The add function is fixed; the check expected a wrong value.")

    r = await _ctl(daemon, "--json", "session", "digests", "--my-workers", "--last", "1", token="tok")
    assert r.returncode == 0, r.stderr
    assert sorted(s["name"] for s in json.loads(r.stdout)["sessions"]) == ["api", "db"]
    r = await _ctl(daemon, "session", "digests", "s-o")
    assert "Working on the other job." in r.stdout.decode()

    r = await _ctl(daemon, "session", "usage", "api")
    assert r.returncode == 0 and "input" in r.stdout.decode() and "≈$" in r.stdout.decode()
    r = await _ctl(daemon, "session", "log", "s-nope")
    assert r.returncode == 1 and b"not found" in r.stderr


async def test_session_log_follow_streams_until_the_session_exits(daemon: Any, tmp_path: Path) -> None:
    app = daemon.app
    path = tmp_path / "w.jsonl"
    path.write_bytes(prompt("go", 0) + say("First step is done.", 1))
    add_session(app, "s-w", path, name="api")
    proc = await trio.lowlevel.open_process([MAESTROCTL, "session", "log", "s-w", "--follow"],
                                            stdout=subprocess.PIPE, env=maestroctl_env(daemon.socket_path))
    assert proc.stdout is not None
    got = b""

    async def read_until(text: bytes) -> None:
        nonlocal got
        with trio.fail_after(15):
            while text not in got:
                chunk = await proc.stdout.receive_some(65536)  # type: ignore[union-attr]
                assert chunk, got
                got += chunk

    await read_until(b"First step is done.")
    append(path, say("Second step is done.", 2))
    await read_until(b"Second step is done.")
    assert got.count(b"First step is done.") == 1, "nothing is printed twice"
    app.record("system", "session", "s-w", "session.status", {"from": "working", "to": "exited"},
               event={"session_id": "s-w", "from": "working", "to": "exited"})
    with trio.fail_after(15):
        assert await proc.wait() == 0
