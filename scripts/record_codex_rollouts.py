"""Record Codex CLI rollout files for the offline digest tests (tests/data/codex/).

Drives the real Codex CLI (``codex exec``, then ``codex exec resume`` for later turns of the same session)
against the scripted loopback Responses API of ``tests/fake_openai.py``, in a throw-away ``CODEX_HOME`` and
working directory, and copies the rollout files it writes to ``tests/data/codex/<scenario>.jsonl``.

Scenarios (each one session):

* ``commands-and-patch``: turn 1 runs a command that succeeds and one that fails (exit 2), turn 2 adds a
  file and edits another with ``apply_patch`` (the heredoc form through ``exec_command``, the form Codex
  recognises whatever the model's tool set) and runs a test that fails then passes, turn 3 only answers;
* ``failing-streak``: three failing commands in one turn (escalation), then a message.

What is changed in the copies, and only that: the temporary directories (``CODEX_HOME``, the working
directory, the user's home) are replaced by ``/codex-home``, ``/work/project`` and ``/home/user``, so the
files do not depend on the machine that recorded them.  Everything else (ids, timestamps, instructions,
record types the parser ignores) is kept as Codex wrote it.

Run: ``python scripts/record_codex_rollouts.py [--codex PATH]`` (default: ``.ci/cache/codex``'s binary,
which ``.ci/run`` installs); re-running replaces the files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_openai import FakeOpenAI, Item, function_call, scripted, text  # noqa: E402

OUT = ROOT / "tests" / "data" / "codex"
DEFAULT_CODEX = ROOT / ".ci" / "cache" / "codex" / "node_modules" / ".bin" / "codex"

ADD_TEST = """apply_patch <<'EOF'
*** Begin Patch
*** Add File: tests/test_calc.py
+import unittest
+
+from calc import add
+
+
+class AddTest(unittest.TestCase):
+    def test_add(self):
+        self.assertEqual(add(2, 3), 5)
*** End Patch
EOF"""

FIX = """apply_patch <<'EOF'
*** Begin Patch
*** Update File: calc.py
@@
 def add(a, b):
-    return a - b
+    return a + b
*** End Patch
EOF"""

TESTS = "python3 -m unittest -v tests.test_calc 2>&1 | tail -4"


def exec_call(cmd: str, **extra: Any) -> Item:
    return function_call("exec_command", {"cmd": cmd, **extra})


# Each scenario: (prompts, answers).  One answer per model request, in order: a turn asks once for its
# prompt and once more after each batch of tool outputs.
Scenario = tuple[list[str], list[list[Item]]]

SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "commands-and-patch": lambda: (
        ["Look at the project and run its checks.", "Fix add and add a test.", "Summarise what you did."],
        [
            # turn 1: a command that succeeds, a call Codex refuses, a command that fails
            [reasoning("Listing the project first."), text("I will look at the files first."), exec_call("ls")],
            [exec_call("python3 -c 'import calc; print(calc.add(2, 3))'", justification="check add")],
            [exec_call("test \"$(python3 -c 'import calc; print(calc.add(2, 3))')\" = 5")],
            [text("add(2, 3) does not return 5: calc.add subtracts.")],
            # turn 2: a patch adding a test, the test fails, a patch fixing the code, tests pass, commit
            [exec_call(ADD_TEST)],
            [exec_call(TESTS + "; exit ${PIPESTATUS[0]}")],
            [exec_call(FIX)],
            [exec_call(TESTS + "; exit ${PIPESTATUS[0]}")],
            [exec_call("git add -A && git commit -qm 'Fix add' && git log --oneline | head -1")],
            [text("Fixed `add` (it subtracted) and added tests/test_calc.py; the tests pass and the fix is committed.")],
            # turn 3: words only
            [text("Turn 1 found that add subtracted; turn 2 added a failing test, fixed add with a patch and committed.")],
        ],
    ),
    "failing-streak": lambda: (
        ["Build the project."],
        [
            [exec_call("make build")],
            [exec_call("cargo build")],
            [exec_call("npm run build")],
            [text("None of make, cargo or npm can build this project: there is no build configuration.")],
        ],
    ),
}


def reasoning(summary: str) -> Item:
    return {"type": "reasoning", "summary": [{"type": "summary_text", "text": summary}], "content": None,
            "encrypted_content": None}


def prepare_project(work: Path) -> None:
    (work / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (work / "README.md").write_text("# calc\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True)


def record(name: str, codex: Path) -> Path:
    prompts, answers = SCENARIOS[name]()
    fake = FakeOpenAI(scripted(*answers)).start()
    tmp = Path(tempfile.mkdtemp(prefix="codex-rec-"))
    try:
        home, work, user = tmp / "codex-home", tmp / "project", tmp / "user"
        for d in (home, work, user):
            d.mkdir()
        prepare_project(work)
        (home / "config.toml").write_text(
            'model = "gpt-5"\nmodel_provider = "fake"\n'
            f'[model_providers.fake]\nname = "fake"\nbase_url = "{fake.base_url}"\n'
            'wire_api = "responses"\nenv_key = "FAKE_KEY"\n'
            f'[projects."{work}"]\ntrust_level = "trusted"\n')
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "CODEX"))},
               "CODEX_HOME": str(home), "HOME": str(user), "FAKE_KEY": "x",
               "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        for index, prompt in enumerate(prompts):
            args = [str(codex), "exec", "--skip-git-repo-check", "--sandbox", "danger-full-access"]
            if index:
                args += ["resume", "--last"]
            subprocess.run([*args, prompt], cwd=work, env=env, check=True, timeout=180,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rollouts = sorted((home / "sessions").rglob("rollout-*.jsonl"))
        if len(rollouts) != 1:
            raise SystemExit(f"{name}: expected one rollout file, found {[str(r) for r in rollouts]}")
        data = rollouts[0].read_text(encoding="utf-8")
        for real, fixed in ((str(home), "/codex-home"), (str(work), "/work/project"), (str(user), "/home/user"),
                            (str(tmp), "/tmp/codex-rec")):
            data = data.replace(real, fixed)
        OUT.mkdir(parents=True, exist_ok=True)
        target = OUT / f"{name}.jsonl"
        target.write_text(data, encoding="utf-8")
        return target
    finally:
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codex", type=Path, default=DEFAULT_CODEX, help="the codex binary")
    ap.add_argument("scenario", nargs="*", choices=[[], *SCENARIOS], help="default: all")
    a = ap.parse_args()
    for name in a.scenario or SCENARIOS:
        print(record(name, a.codex))
    return 0


if __name__ == "__main__":
    sys.exit(main())
