"""The attrs code cache (maestrod/attrs_code_cache.py): a class built from the cache has the code a fresh compile
of attrs' source gives and behaves the same; a cache file that is missing, corrupt, hostile or from another
Python is ignored (classes are compiled as usual) and never blocks; the daemon's start-up fills it once."""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from maestrod import attrs_code_cache
from maestrod.attrs_code_cache import CodeCache, read_private_file, replace_constant

#: Classes of each kind attrs generates differently, built with the cache installed; prints what the cache
#: did and, per generated method, whether its code equals a fresh compile of the source attrs registered in
#: linecache (with this process's own type hash in it), then checks the classes behave.
PROBE = r"""
import json, linecache, sys, types
from maestrod import attrs_code_cache
cache = attrs_code_cache.install(sys.argv[1])
import attrs

@attrs.define
class Plain:
    a: int
    b: list[int] = attrs.field(factory=list)

@attrs.frozen
class Frozen:
    name: str
    size: int = attrs.field(default=0, validator=attrs.validators.ge(0))

@attrs.frozen
class Empty:  # its __hash__ hashes a constant tuple: the compiler folds it into one constant
    pass

@attrs.define(frozen=True, cache_hash=True)
class Cached:
    x: int

def same(a, b):
    if a.co_code != b.co_code or a.co_names != b.co_names or len(a.co_consts) != len(b.co_consts):
        return False
    for x, y in zip(a.co_consts, b.co_consts):
        if isinstance(x, types.CodeType):
            if not (isinstance(y, types.CodeType) and same(x, y)):
                return False
        elif x != y or type(x) is not type(y):
            return False
    return True

checked = []
for cls in (Plain, Frozen, Empty, Cached):
    for name in ("__init__", "__eq__", "__hash__", "__repr__", "__setattr__"):
        fn = cls.__dict__.get(name)
        code = getattr(fn, "__code__", None)
        if code is None or not code.co_filename.startswith("<attrs generated"):
            continue
        fresh = compile("".join(linecache.cache[code.co_filename][2]), code.co_filename, "exec")
        [expected] = [c for c in fresh.co_consts if isinstance(c, types.CodeType) and c.co_name == name]
        checked.append([cls.__name__, name, same(code, expected)])

p = Plain(1); assert p == Plain(1) and p != Plain(2) and p.b == [] and repr(p) == "Plain(a=1, b=[])"
f = Frozen("x", 2); assert f == Frozen("x", 2) and hash(f) == hash(Frozen("x", 2)) and hash(f) != hash(Frozen("y", 2))
try:
    f.size = 3
    raise SystemExit("a frozen class took an assignment")
except attrs.exceptions.FrozenInstanceError:
    pass
try:
    Frozen("x", -1)
    raise SystemExit("a validator did not run")
except ValueError:
    pass
assert hash(Empty()) == hash(Empty()) and hash(Cached(3)) == hash(Cached(3))
wrote = cache.save()
import attr._make, inspect
hook_gone = not any(isinstance(f, attrs_code_cache.PatchOnImport) for f in sys.meta_path)
source_ok = "class Attribute" in inspect.getsource(attr._make)  # through the wrapped loader
print(json.dumps({"installed": cache.installed, "hits": cache.hits, "misses": cache.misses, "wrote": wrote,
                  "ignored": cache.ignored, "checked": checked, "hook_gone": hook_gone,
                  "source_ok": source_ok}))
"""


def probe(cache_path: Path | str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(cache_path)], capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_second_process_builds_every_class_from_the_cache_with_the_code_compile_gives(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "attrs-code.marshal"
    first = probe(path)
    assert first["installed"] and first["misses"] and first["wrote"], first
    # Installed before attrs was imported: attrs' own classes (its validators, ...) went through it too.
    assert first["misses"] > 10 and first["hook_gone"] and first["source_ok"], first  # type: ignore[operator]
    assert (path.parent.stat().st_mode & 0o777) == 0o700 and (path.stat().st_mode & 0o777) == 0o600
    written = path.stat()
    second = probe(path)
    # Another process has another hash seed, so another number in each __hash__: still found, and replaced.
    assert second["misses"] == 0 and second["hits"] == first["misses"] and not second["wrote"], second
    assert second["ignored"] is None
    checked = second["checked"]
    assert isinstance(checked, list) and len(checked) >= 8
    assert {tuple(c[:2]) for c in checked} >= {("Frozen", "__hash__"), ("Empty", "__hash__"),
                                               ("Cached", "__hash__"), ("Plain", "__init__")}
    assert all(ok for _, _, ok in checked), checked
    # Nothing new was compiled: the file was not written again.
    assert path.stat().st_mtime_ns == written.st_mtime_ns and path.stat().st_ino == written.st_ino


@pytest.mark.parametrize("content", [b"", b"garbage", attrs_code_cache.HEADER + b"\x00" * 4 + b"x",
                                     attrs_code_cache.HEADER + importlib.util.MAGIC_NUMBER + b"\xff\x00",
                                     attrs_code_cache.HEADER + importlib.util.MAGIC_NUMBER
                                     + marshal.dumps({b"k": "not code"})])
def test_a_corrupt_or_foreign_file_is_ignored_and_replaced(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "attrs-code.marshal"
    path.write_bytes(content)
    path.chmod(0o600)
    got = probe(path)
    assert got["hits"] == 0 and got["misses"] and got["wrote"], got
    assert content == b"" or got["ignored"], got
    assert all(ok for _, _, ok in got["checked"]), got  # type: ignore[union-attr]
    assert probe(path)["misses"] == 0


def test_hostile_files_are_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        read_private_file(str(fifo))  # opened without blocking, then refused
    shared = tmp_path / "shared"
    shared.write_bytes(b"x")
    shared.chmod(0o666)
    with pytest.raises(ValueError, match="others may write it"):
        read_private_file(str(shared))
    link = tmp_path / "link"
    link.symlink_to(shared)
    with pytest.raises(OSError):
        read_private_file(str(link))
    # Installed with such a file: ignored, said why, and classes still build.
    got = probe(fifo)
    assert got["installed"] and "not a regular file" in str(got["ignored"]) and got["misses"], got


def test_off_and_the_default_place() -> None:
    assert attrs_code_cache.default_path({"MAESTRO_CODE_CACHE": "off"}) is None
    assert attrs_code_cache.default_path({"MAESTRO_CODE_CACHE": "/x/y"}) == "/x/y"
    default = attrs_code_cache.default_path({"XDG_CACHE_HOME": "/c"})
    assert default is not None and default.startswith("/c/maestro/attrs-code.")
    cache = CodeCache(None)
    cache.code_for("x = 1\n", "<f>")
    assert cache.misses == 1 and not cache.save()


def test_attrs_of_another_shape_is_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import attr._make

    def other(script: str, globs: dict[str, object]) -> None:
        raise AssertionError("not called by this test")

    monkeypatch.setattr(attr._make, "_compile_and_eval", other)
    cache = attrs_code_cache.install(str(tmp_path / "c"))
    assert not cache.installed and attr._make._compile_and_eval is other
    assert "compiling as usual" in str(cache.ignored)


def test_replace_constant_reaches_nested_code_and_folded_tuples() -> None:
    code = compile("def f(x):\n    return hash((123456789, x)), (123456789, 2)\n", "<t>", "exec")
    swapped = replace_constant(code, 123456789, -5)
    ns: dict[str, object] = {}
    exec(swapped, ns)  # noqa: S102
    f = ns["f"]
    assert isinstance(f, types.FunctionType) and f(7) == (hash((-5, 7)), (-5, 2))


def test_the_daemon_fills_the_cache_at_start_up_and_then_only_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "attrs-code.marshal"
    env = dict(os.environ, MAESTRO_CODE_CACHE=str(path))
    start = [sys.executable, "-m", "maestrod", "--version"]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=60)
    assert path.exists(), "python -m maestrod did not write the attrs code cache"
    first = path.stat()
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=60)
    # Nothing new to compile the second time: the file was not written again.
    assert path.stat().st_mtime_ns == first.st_mtime_ns and path.stat().st_ino == first.st_ino
    # The daemon's own classes are in it (maestrod, shared, trio and attrs create about 200 on import).
    table = marshal.loads(path.read_bytes()[len(attrs_code_cache.HEADER) + len(importlib.util.MAGIC_NUMBER):])
    assert len(table) > 150


def test_the_daemon_says_why_it_ignored_the_cache(tmp_path: Path) -> None:
    shared = tmp_path / "attrs-code.marshal"
    shared.write_bytes(b"x")
    shared.chmod(0o666)
    env = dict(os.environ, MAESTRO_CODE_CACHE=str(shared))
    # --check-state goes through the daemon's start-up and logging, then answers (here: no such state file).
    r = subprocess.run([sys.executable, "-m", "maestrod", "--check-state", str(tmp_path / "none.json")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert "attrs code cache" in r.stderr and "others may write it" in r.stderr, r.stderr
