"""Worktree spawn overhead: `session.spawn` with `worktree` vs without, on a repository of 10,000 files,
against `git worktree add` alone on the same repository (the floor, measured in the same run).

The figure is the extra time a worktree adds to a spawn (median of N spawns with, minus the median of N
without); the goal (issue 12) is that extra <= 1.5x the time of `git worktree add` by itself: maestrod's
own work around git (finding the repository, resolving the base, picking a branch, recording) stays small.

Run: python bench/bench_worktree.py [--files 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import running_daemon  # noqa: E402
from _report import Result, goal_met, median, print_table, spread_of  # noqa: E402

GOAL = "<= 1.5x"
GIT_ID = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "b",
          "GIT_COMMITTER_EMAIL": "b@example.com"}


class Rpc:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")
        self.n = 0

    def call(self, method: str, params: dict[str, Any]) -> Any:
        self.n += 1
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params}).encode()
                          + b"\n")
        resp = json.loads(self.file.readline())
        if "error" in resp:
            raise RuntimeError(f"{method}: {resp['error']}")
        return resp["result"]


def make_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    repo.mkdir()
    for i in range(files):
        d = repo / f"d{i // 500:03d}"
        d.mkdir(exist_ok=True)
        (d / f"f{i:05d}.txt").write_text(f"file {i}\n")
    env = {**os.environ, **GIT_ID}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "."], ["git", "commit", "-qm", "files"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env)
    return repo


def run(quick: bool = False, files: int = 10_000, runs: int = 5) -> list[Result]:
    if quick:
        files, runs = 200, 2
    root = Path(tempfile.mkdtemp(prefix="mbw-", dir="/tmp"))
    repo = make_repo(root, files)
    floors = []
    for i in range(runs):
        path = root / f"plain-{i}"
        t0 = time.perf_counter()
        subprocess.run(["git", "worktree", "add", "--quiet", "-b", f"plain-{i}", str(path), "HEAD"], cwd=repo,
                       check=True)
        floors.append(time.perf_counter() - t0)
    with running_daemon() as (sock, _env):
        rpc = Rpc(sock)
        rpc.call("project.create", {"name": "P", "dir": str(repo)})
        plain, with_wt = [], []
        for i in range(runs):
            for wt, samples in ((False, plain), (True, with_wt)):
                params = {"project": "P", "name": f"{'wt' if wt else 'plain'}-{i}", "agent": "command",
                          "argv": ["cat"], "cwd": str(repo), **({"worktree": True} if wt else {})}
                t0 = time.perf_counter()
                s = rpc.call("session.spawn", params)
                samples.append(time.perf_counter() - t0)
                rpc.call("session.kill", {"id": s["id"]})
    floor, extra = median(floors), median(with_wt) - median(plain)
    print(f"git worktree add alone   median {floor * 1000:7.1f} ms  {spread_of(floors, 'ms', 1000)}")
    print(f"spawn without worktree   median {median(plain) * 1000:7.1f} ms  {spread_of(plain, 'ms', 1000)}")
    print(f"spawn with --worktree    median {median(with_wt) * 1000:7.1f} ms  {spread_of(with_wt, 'ms', 1000)}")
    ratio = extra / floor
    return [Result(f"worktree spawn overhead ({files} files)", extra * 1000, "ms", floor * 1000,
                   "git worktree add alone", ratio, GOAL, goal_met(ratio, GOAL), runs,
                   spread_of(with_wt, "ms", 1000), "extra = median spawn with worktree - median without")]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print_table(run(a.quick, a.files, a.runs))
