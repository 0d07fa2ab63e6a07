"""The compiled argv fast path parses exactly like the real argparse parser, or declines."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from maestroctl import fastargs
from maestroctl._argspec import SPEC
from maestroctl.main import build_parser


def argparse_vars(argv: list[str]) -> dict[str, Any] | None:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(build_parser().parse_args(argv))
        except SystemExit:
            return None


def test_snapshot_matches_the_parser() -> None:
    fresh = fastargs.compile_spec(build_parser())
    assert fresh == SPEC, "maestroctl/_argspec.py is stale: run `python -m maestroctl.fastargs > maestroctl/_argspec.py`"


CORPUS = [
    ["ping"], ["--json", "ping"], ["daemon", "status"], ["--socket", "/tmp/x.sock", "--json", "daemon", "status"],
    ["--json", "project", "create", "--name", "N", "--dir", "/tmp"],
    ["--json", "task", "create", "--project", "P", "--title", "T", "--parent", "t-1", "--priority", "high",
     "--depends-on", "t-2", "t-3", "--description", "D"],
    ["--json", "task", "create", "--project", "P", "--title", "T", "--depends-on", "t-2", "--depends-on", "t-3"],
    ["--json", "task", "list", "--project", "P"], ["task", "list", "--status", "todo", "--status", "blocked", "--tree"],
    ["--json", "task", "update", "t-1", "--status", "in_progress"],
    ["task", "update", "--status", "completed", "t-1"],
    ["--json", "task", "ready", "--project", "P"], ["task", "history", "t-1", "--limit", "5"],
    ["--timeout=2.5", "task", "get", "t-1"], ["rpc", "system.methods"], ["rpc", "task.get", '{"id": "t-1"}'],
    ["completion", "bash"], ["task", "list", "--parent="], ["project", "delete", "p-1", "--cascade"],
]


@pytest.mark.parametrize("argv", CORPUS, ids=" ".join)
def test_fast_path_agrees_with_argparse(argv: list[str]) -> None:
    fast = fastargs.parse(argv)
    slow = argparse_vars(argv)
    assert fast is not None, "the fast path should handle this common command line"
    assert vars(fast) == slow


@pytest.mark.parametrize("argv", [
    ["-h"], ["task", "--help"], ["task", "list", "--proj", "P"], ["task", "create", "--title"],
    ["task", "create", "--project", "P"], ["task", "list", "--status", "urgent"], ["task"], [],
    ["task", "history", "t-1", "--limit", "x"], ["frob"], ["task", "update", "a", "--status", "todo", "b"],
    ["--socket"], ["task", "get", "--", "t-1"],
])
def test_fast_path_declines_what_it_cannot_be_sure_of(argv: list[str]) -> None:
    assert fastargs.parse(argv) is None


def _commands() -> list[tuple[list[str], dict[str, Any]]]:
    out = []
    for gname, g in SPEC["groups"].items():
        if "commands" in g:
            out.extend(([gname, c], node) for c, node in g["commands"].items() if node["supported"])
        elif g["supported"]:
            out.append(([gname], g))
    return out


WORDS = st.sampled_from(["x", "t-1", "P", "1", "2.5", "todo", "high", "in_progress", "-", "a b", "--", "-1"])


@st.composite
def command_lines(draw: Any) -> list[str]:
    prefix, node = draw(st.sampled_from(_commands()))
    argv = list(draw(st.lists(st.sampled_from([["--json"], ["--socket", "/s"], ["--timeout", "3"]]),
                              max_size=2)))
    flat = [tok for part in argv for tok in part] + prefix
    options = list(node["options"].items())
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 2))
        if kind == 0 and options:
            flag, opt = draw(st.sampled_from(options))
            flat.append(flag)
            if opt["kind"] not in ("store_true", "store_false"):
                choices = opt["choices"]
                flat.append(draw(st.sampled_from(choices)) if choices and draw(st.booleans()) else draw(WORDS))
        else:
            flat.append(draw(WORDS))
    return flat


@settings(max_examples=400, deadline=None)
@given(command_lines())
@example(["task", "update", "--depends-on", "x", "x", "-"])  # a lone "-" is a value of --depends-on
def test_fast_path_never_disagrees(argv: list[str]) -> None:
    fast = fastargs.parse(argv)
    if fast is None:
        return
    assert vars(fast) == argparse_vars(argv), argv
