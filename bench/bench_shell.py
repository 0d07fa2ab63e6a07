"""Shell start-up: wall time from starting `maestroctl shell` in a PTY to its first interactive prompt
(`maestro> ` drawn, keys accepted), and to the toolbar showing the daemon's sessions (the feed connected
and loaded), against `python3 -I -c pass` (the floor), with the time of `import prompt_toolkit` alone
(in-process, measured in a fresh interpreter each run) beside it.  N runs each, interleaved.

Goal (issue 10): the first prompt in under 300 ms on this 2-core machine.
Run: python bench/bench_shell.py [--runs 15] [--sessions 5] [--quick]; also part of `python -m bench`.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import ptyprocess

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import BIN, running_daemon  # noqa: E402
from _report import Result, goal_met, median, print_table, spread_of  # noqa: E402

GOAL = "<= 300 ms"

CPR_REQUEST = b"\x1b[6n"


def shell_once(env: dict[str, str], toolbar_word: str) -> tuple[float, float]:
    """(seconds to the first prompt, seconds to the toolbar naming ``toolbar_word``)."""
    t0 = time.perf_counter()
    pty = ptyprocess.PtyProcess.spawn([str(BIN / "maestroctl"), "shell"], env=dict(env, TERM="xterm"),
                                      dimensions=(30, 120))
    seen = b""
    prompt_at = toolbar_at = None
    try:
        deadline = t0 + 20
        while toolbar_at is None:
            assert time.perf_counter() < deadline, f"the shell did not come up: {seen[-400:]!r}"
            ready, _, _ = select.select([pty.fd], [], [], 0.5)
            if not ready:
                continue
            data = pty.read(65536)
            seen += data
            if CPR_REQUEST in data:  # answer as a terminal does (prompt_toolkit asks where its cursor is)
                pty.write(b"\x1b[1;1R")
            now = time.perf_counter()
            if prompt_at is None and b"maestro>" in seen:
                prompt_at = now - t0
            if prompt_at is not None and toolbar_word.encode() in seen:
                toolbar_at = now - t0
        pty.write(b"\x04")  # Ctrl-D
        pty.wait()
    finally:
        if pty.isalive():
            pty.terminate(force=True)
        pty.close(force=True)
    assert prompt_at is not None
    return prompt_at, toolbar_at


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def import_alone(env: dict[str, str]) -> float:
    code = "import time; t = time.perf_counter(); import prompt_toolkit; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout)


def run(quick: bool = False, runs: int = 15, sessions: int = 5) -> list[Result]:
    if quick:
        runs, sessions = 2, 1
    with running_daemon() as (sock, env):
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # what a user gets: cached bytecode
        env["XDG_STATE_HOME"] = str(sock.parent / "state")
        work = str(sock.parent)
        ctl = str(BIN / "maestroctl")
        subprocess.run([ctl, "project", "create", "--name", "bench", "--dir", work], env=env,
                       stdout=subprocess.DEVNULL, check=True)
        for i in range(sessions):
            subprocess.run([ctl, "session", "spawn", "--project", "bench", "--name", f"agent-{i}", "--cwd", work,
                            "--", "cat"], env=env, stdout=subprocess.DEVNULL, check=True)
        last = f"agent-{sessions - 1}" if sessions else "no live sessions"
        floor_cmd = [sys.executable, "-I", "-c", "pass"]
        for _ in range(1 if quick else 2):  # warm the page cache and the bytecode
            shell_once(env, last)
            timed(floor_cmd, env)
            import_alone(env)
        floors, imports, prompts, toolbars = [], [], [], []
        for _ in range(runs):
            floors.append(timed(floor_cmd, env))
            imports.append(import_alone(env))
            p, t = shell_once(env, last)
            prompts.append(p)
            toolbars.append(t)
    f, i, p, t = (median(v) * 1000 for v in (floors, imports, prompts, toolbars))
    print(f"shell start-up, {runs} runs each ({os.cpu_count()} cores), {sessions} live sessions")
    print(f"floor  python3 -I -c pass            median {f:7.1f} ms  {spread_of(floors, 'ms', 1000, 1)}")
    print(f"import prompt_toolkit (alone)        median {i:7.1f} ms  {spread_of(imports, 'ms', 1000, 1)}")
    print(f"shell  to the first prompt           median {p:7.1f} ms  {spread_of(prompts, 'ms', 1000, 1)}")
    print(f"shell  to the toolbar's sessions     median {t:7.1f} ms  {spread_of(toolbars, 'ms', 1000, 1)}")
    print(f"first prompt {p / f:.1f}x the floor; prompt_toolkit's import alone is {i / p:.0%} of it (goal {GOAL})")
    return [Result("shell start-up: maestroctl shell to its first prompt", p, "ms", floor=f,
                   floor_label="python -I -c pass", goal=GOAL, met=goal_met(p, GOAL), runs=runs,
                   spread=f"shell {spread_of(prompts, 'ms', 1000, 1)}; floor {spread_of(floors, 'ms', 1000, 1)}",
                   note=f"import prompt_toolkit alone {i:.1f} ms ({spread_of(imports, 'ms', 1000, 1)}), "
                        f"{i / p:.0%} of it"),
            Result("shell start-up: to the toolbar showing the sessions", t, "ms", floor=f,
                   floor_label="python -I -c pass", runs=runs, spread=spread_of(toolbars, "ms", 1000, 1),
                   note=f"{sessions} live sessions (the feed connected, subscribed and loaded)")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--sessions", type=int, default=5, help="live sessions for the toolbar to show")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print_table(run(args.quick, args.runs, args.sessions))


if __name__ == "__main__":
    main()
