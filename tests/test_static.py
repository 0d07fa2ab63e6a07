"""Static checks as tests: mypy --strict and ruff stay clean, and maestrod's modules import no cycle.

mypy and ruff come with the ``test`` extra, so in CI these tests run rather than skip.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Module -> {imported module: line of the first import statement naming it}, within one package.
ImportGraph = dict[str, dict[str, int]]


def _run_tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` from the repository root, with this interpreter (so the venv's tool)."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: pip install -e '.[test]' brings it")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True)


def test_mypy_strict() -> None:
    # The cache under the repository (gitignored) keeps re-runs at about a second; a cold run takes
    # about five seconds on two cores.
    r = _run_tool("mypy", "--strict", "--cache-dir", str(REPO / ".mypy_cache"), "shared", "maestrod")
    assert r.returncode == 0, f"mypy --strict shared maestrod failed:\n{r.stdout}{r.stderr}"


def test_ruff_check() -> None:
    r = _run_tool("ruff", "check", ".")
    assert r.returncode == 0, f"ruff check . failed:\n{r.stdout}{r.stderr}"


# -- import cycles -----------------------------------------------------------------------------------


def package_modules(package_dir: Path) -> dict[str, Path]:
    """Every module of the package at ``package_dir`` by dotted name; an ``__init__.py`` is its package."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _import_targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
                    modules: dict[str, Path]) -> Iterator[str]:
    """The package's modules that one import statement in ``module`` loads (other imports are not ours)."""
    if isinstance(node, ast.Import):
        # `import a.b.c` names module a.b.c (its parent packages run too, but are not its dependency).
        yield from (alias.name for alias in node.names if alias.name in modules)
        return
    if node.level:
        # Relative: level 1 is the package holding `module` (a package's __init__ is in itself).
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    for alias in node.names:
        # `from a.b import c` loads module a.b.c when there is one, else it takes the name c from a.b.
        submodule = f"{base}.{alias.name}"
        if submodule in modules:
            yield submodule
        elif base in modules:
            yield base


def import_graph(package_dir: Path) -> ImportGraph:
    """Which of the package's modules each module imports, read with ``ast`` (nothing is imported).

    Every import statement counts wherever it is: under ``if TYPE_CHECKING:`` and inside functions
    too, since those are where a cycle hides until someone moves the import to the top.
    """
    modules = package_modules(package_dir)
    graph: ImportGraph = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _import_targets(node, module, path.name == "__init__.py", modules):
                    # A package __init__ taking a name from itself is no dependency.
                    if target != module:
                        edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


def import_cycles(graph: ImportGraph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted, in order."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, {}):
            if target not in index:
                visit(target)
                lowlink[module] = min(lowlink[module], lowlink[target])
            elif target in on_stack:
                lowlink[module] = min(lowlink[module], index[target])
        if lowlink[module] == index[module]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(components)


def describe_cycles(graph: ImportGraph, cycles: list[list[str]], package_dir: Path) -> str:
    """Each cycle's modules and the import statements (file:line) that tie them together."""
    modules = package_modules(package_dir)
    lines: list[str] = []
    for members in cycles:
        lines.append(f"cycle of {len(members)} modules: {', '.join(members)}")
        for module in members:
            source = modules[module].relative_to(package_dir.parent)
            for target, lineno in sorted(graph[module].items()):
                if target in members:
                    lines.append(f"    {module} -> {target}  ({source}:{lineno})")
    return "\n".join(lines)


def test_maestrod_has_no_import_cycle() -> None:
    package_dir = REPO / "maestrod"
    graph = import_graph(package_dir)
    cycles = import_cycles(graph)
    assert not cycles, "maestrod's modules import each other in a cycle:\n" + describe_cycles(
        graph, cycles, package_dir)


# -- the walker itself, on synthetic packages ------------------------------------------------------------


def _write_package(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (paths relative to ``root``) and return the top package's directory."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root / "pkg"


#: Every way of naming a module, and no cycle: a -> sub.mod <- sub, sub.mod -> c -> d -> pkg.
ACYCLIC = {
    "pkg/__init__.py": "",
    "pkg/a.py": "import os\nfrom pkg.sub import mod\nfrom shared import errors\n",
    "pkg/sub/__init__.py": "from pkg.sub.mod import THING\n",
    "pkg/sub/mod.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..c import C\nTHING = 1\n",
    "pkg/c.py": "def later():\n    import pkg.d as d\n    return d\nclass C: ...\n",
    "pkg/d.py": "import pkg\n",
}


def test_walker_resolves_every_form_of_import(tmp_path: Path) -> None:
    graph = import_graph(_write_package(tmp_path, ACYCLIC))
    assert {module: set(edges) for module, edges in graph.items()} == {
        "pkg": set(),
        "pkg.a": {"pkg.sub.mod"},  # a module named in `from package import module`; os, shared ignored
        "pkg.sub": {"pkg.sub.mod"},  # `from pkg.sub.mod import THING`: a name, so the module itself
        "pkg.sub.mod": {"pkg.c"},  # relative, and under TYPE_CHECKING
        "pkg.c": {"pkg.d"},  # inside a function, `import ... as`
        "pkg.d": {"pkg"},  # a package is its __init__
    }
    assert graph["pkg.sub.mod"]["pkg.c"] == 3
    assert import_cycles(graph) == []


@pytest.mark.parametrize(("closing_file", "closing_source", "cycle"), [
    # Back to pkg.a under TYPE_CHECKING: still a cycle for the walker.
    ("pkg/d.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
     ["pkg.a", "pkg.c", "pkg.d", "pkg.sub.mod"]),
    # A submodule taking a name from its package, whose __init__ imports the submodule.
    ("pkg/sub/mod.py", "from pkg.sub import OTHER\n", ["pkg.sub", "pkg.sub.mod"]),
    # A package __init__ importing a submodule relatively, which comes back to the package.
    ("pkg/__init__.py", "from . import a\n", ["pkg", "pkg.a", "pkg.c", "pkg.d", "pkg.sub.mod"]),
    # Back to pkg.sub.mod from inside a function, relatively.
    ("pkg/c.py", "def later():\n    from .sub import mod\n", ["pkg.c", "pkg.sub.mod"]),
])
def test_walker_finds_a_cycle(tmp_path: Path, closing_file: str, closing_source: str, cycle: list[str]) -> None:
    package_dir = _write_package(tmp_path, {**ACYCLIC, closing_file: closing_source})
    graph = import_graph(package_dir)
    cycles = import_cycles(graph)
    assert cycles == [cycle]
    report = describe_cycles(graph, cycles, package_dir)
    assert report.startswith(f"cycle of {len(cycle)} modules: {', '.join(cycle)}\n")
    assert f"({closing_file}:" in report


def test_tarjan_separates_independent_cycles() -> None:
    graph: ImportGraph = {"a": {"b": 1}, "b": {"a": 1, "c": 2}, "c": {"d": 1}, "d": {"e": 1}, "e": {"c": 1},
                          "f": {"a": 1}}
    assert import_cycles(graph) == [["a", "b"], ["c", "d", "e"]]
