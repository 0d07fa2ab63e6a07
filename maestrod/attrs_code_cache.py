"""A persistent cache of the code attrs generates for each class, so that maestrod starts sooner.

Every ``@attrs.define`` class gets its ``__init__``, ``__eq__``, ``__repr__``, ... as Python source that attrs
compiles when the class is created. maestrod, trio and attrs create about 200 such classes on import; compiling
their source was a quarter of the daemon's start-up (~75 ms of ~300 ms on a 2-core machine): the largest part
of a graceful restart's pause, during which the socket does not answer. Python caches a module's bytecode in
``__pycache__`` but has nothing for code generated at run time, so this module does the same for attrs: the
compiled code objects are kept in one file (``marshal``, as a ``.pyc`` holds them) and looked up by a hash of
the generated source and its file name; anything not found is compiled as usual and saved for next time.

Why it is safe:

* The cache only ever answers "here is the code object ``compile`` would return for this exact source and file
  name": the key is a 128-bit BLAKE2 hash of both, and the file is tied to this interpreter's bytecode (its
  ``importlib`` magic number and cache tag). A file that does not match, does not read, or is not a regular
  file of this user that nobody else may write is ignored, and the source is compiled as without the cache.
* It wraps one private attrs function, ``attr._make._compile_and_eval(script, globs, locs, filename)``, the
  single place attrs compiles a class's methods. Installed before attrs is imported, it wraps it as soon as
  ``attr._make`` has run (a one-time import hook), so attrs' own classes come from the cache too. When an attrs
  release renames or reshapes that function, :func:`install` leaves attrs untouched (it checks the signature)
  and the daemon starts as before. tests/test_attrs_code_cache.py holds both paths to that.
* The file lives in the user's cache directory (``$XDG_CACHE_HOME/maestro``, created private), is written
  atomically (a temporary file renamed over it) and only when something new was compiled: a second start with
  the same code writes nothing. ``MAESTRO_CODE_CACHE=off`` turns it off; ``MAESTRO_CODE_CACHE=/a/path`` moves
  it.

``maestrod --check-state``, which a graceful restart runs with the newly installed code before it re-executes,
goes through the same start-up, so after an upgrade the cache already holds the new code's classes when the
successor imports them.

Stdlib only (and :mod:`maestrod.private_files`): this runs before anything else of the daemon, attrs
included, is imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import marshal
import os
import re
import stat
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import ModuleSpec, PathFinder
from typing import TYPE_CHECKING, Any, cast

from maestrod.private_files import open_regular, write_private

if TYPE_CHECKING:
    from importlib.abc import Loader

ENV = "MAESTRO_CODE_CACHE"
#: The file starts with this, then the interpreter's bytecode magic number, then one marshalled dict.
HEADER = b"maestro attrs code cache 1\n"
#: A cache larger than this is not read (the daemon's classes need ~1 MiB).
MAX_BYTES = 32 << 20
#: The parameters of the attrs function this module wraps; any other shape is left alone.
WRAPPED_PARAMETERS = ("script", "globs", "locs", "filename")

#: The number attrs writes into each ``__hash__`` it generates: ``hash()`` of a string, which differs from one
#: process to the next (hash randomisation), so it is left out of the key and replaced in a cached code object.
TYPE_HASH = re.compile(r"hash\(\(\n +(-?\d+),\n")

CompileAndEval = Callable[..., None]
#: A code object and the type hash it was compiled with (None: its source has none).
Entry = tuple[types.CodeType, int | None]


def default_path(env: Mapping[str, str] | None = None) -> str | None:
    """Where the cache for this interpreter lives; None when ``MAESTRO_CODE_CACHE=off``."""
    env = os.environ if env is None else env
    override = env.get(ENV, "")
    if override.lower() in ("off", "0", "no", "false"):
        return None
    if override:
        return override
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    # Compiled code depends on the interpreter only (the file's header holds its bytecode magic number), not
    # on the attrs version, whose generated source is the key. (``attr.__version__`` would also import
    # importlib.metadata: 25 ms.)
    tag = sys.implementation.cache_tag or sys.implementation.name
    return os.path.join(base, "maestro", f"attrs-code.{tag}.marshal")


def key_of(script: str, filename: str) -> bytes:
    return hashlib.blake2b(f"{filename}\0{script}".encode(), digest_size=16).digest()


class CodeCache:
    """Code objects by :func:`key_of` their source: those read from ``path`` and those compiled since."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.loaded: dict[bytes, Entry] = {}
        #: What this process used (hits and new compiles): what :meth:`save` writes, so entries of classes
        #: that no longer exist (an upgrade changed them) are dropped the next time it writes.
        self.used: dict[bytes, Entry] = {}
        self.hits = 0
        self.misses = 0
        #: Misses since the file was last written.
        self.unsaved = 0
        self.installed = False
        #: Why :meth:`load` ignored the file, or why :func:`install` left attrs alone (None: neither).
        self.ignored: str | None = None

    def code_for(self, script: str, filename: str) -> types.CodeType:
        found = TYPE_HASH.search(script)
        type_hash = int(found[1]) if found else None
        # The key leaves the per-process number out; the code keeps the number it was compiled with.
        key = key_of(script if found is None else script[:found.start(1)] + "#" + script[found.end(1):], filename)
        entry = self.loaded.get(key)
        if entry is None:
            code = compile(script, filename, "exec")
            self.misses += 1
            self.unsaved += 1
        else:
            code, compiled_with = entry
            if compiled_with != type_hash and compiled_with is not None and type_hash is not None:
                code = replace_constant(code, compiled_with, type_hash)
            self.hits += 1
        self.used[key] = (code, type_hash)
        return code

    def load(self) -> None:
        """Read the file, if it is there and sound (otherwise start empty and say why in :attr:`ignored`)."""
        if self.path is None:
            return
        try:
            data = read_private_file(self.path)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.ignored = str(exc)
            return
        prefix = HEADER + importlib.util.MAGIC_NUMBER
        if not data.startswith(prefix):
            self.ignored = f"{self.path}: written for another Python or another version of this cache"
            return
        try:
            table = marshal.loads(data[len(prefix):])
        except (EOFError, ValueError, TypeError) as exc:
            self.ignored = f"{self.path}: does not read ({exc})"
            return
        if not isinstance(table, dict) or not all(
                isinstance(k, bytes) and isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], types.CodeType)
                and (v[1] is None or type(v[1]) is int) for k, v in table.items()):
            self.ignored = f"{self.path}: not a table of code objects"
            return
        self.loaded = table

    def save(self) -> bool:
        """Write what this process used, if it compiled anything new; True when it wrote. Never raises for
        the file's sake: a cache that cannot be written only costs the next start its compile time."""
        if self.path is None or not self.unsaved:
            return False
        try:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
            write_private(self.path, HEADER + importlib.util.MAGIC_NUMBER + marshal.dumps(dict(self.used)))
        except OSError:
            return False
        self.loaded.update(self.used)
        self.unsaved = 0
        return True


def replace_constant(code: types.CodeType, old: int, new: int) -> types.CodeType:
    """``code`` with the integer constant ``old`` replaced by ``new``, in nested functions and constant tuples
    too: what compiling the same source with ``new`` written in it gives (but for that line's column
    positions, which only a traceback's carets use)."""

    def swap(value: object) -> object:
        if type(value) is int and value == old:
            return new
        if isinstance(value, types.CodeType):
            return replace_constant(value, old, new)
        if type(value) is tuple:
            return tuple(swap(v) for v in value)
        if type(value) is frozenset:
            return frozenset(swap(v) for v in value)
        return value

    return code.replace(co_consts=tuple(swap(c) for c in code.co_consts))


def read_private_file(path: str) -> bytes:
    """The file's bytes, if it is a regular file of this user that no one else may write (OSError or
    ValueError if not): the cache holds code this process runs, so it gets the care of the user's own
    ``__pycache__``."""
    fd = open_regular(path)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise ValueError(f"{path}: owned by another user")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ValueError(f"{path}: others may write it")
        if st.st_size > MAX_BYTES:
            raise ValueError(f"{path}: larger than {MAX_BYTES} bytes")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MAX_BYTES + 1)
    finally:
        os.close(fd)


def install(path: str | None) -> CodeCache:
    """Load the cache at ``path`` and route attrs' compiling through it, if attrs still has the function this
    wraps (:attr:`CodeCache.installed` says whether it does). Call it before the classes are created: when
    attrs is not imported yet, it takes effect the moment ``attr._make`` has run, so that even the classes of
    attrs' own modules (its validators, ...) come from the cache."""
    cache = CodeCache(path)
    cache.load()
    module = sys.modules.get("attr._make")
    if module is not None:
        patch(module, cache)
    else:
        sys.meta_path.insert(0, PatchOnImport(cache))
    return cache


def patch(module: types.ModuleType, cache: CodeCache) -> None:
    """Wrap ``module._compile_and_eval`` (``module`` is ``attr._make``) so that it takes code from ``cache``."""
    original: CompileAndEval | None = getattr(module, "_compile_and_eval", None)
    if original is None or not _has_expected_shape(original):
        cache.ignored = "attrs has no _compile_and_eval(script, globs, locs, filename): compiling as usual"
        return

    def compile_and_eval(script: str, globs: dict[str, Any] | None, locs: Mapping[str, object] | None = None,
                         filename: str = "") -> None:
        eval(cache.code_for(script, filename), globs, locs)  # noqa: S307 - attrs' own generated source

    compile_and_eval.__wrapped__ = original  # type: ignore[attr-defined]
    module._compile_and_eval = compile_and_eval  # type: ignore[attr-defined]
    cache.installed = True


class PatchOnImport:
    """A meta path finder for ``attr._make`` alone: it finds the module as Python would, and :func:`patch`es it
    as soon as it has run, then leaves ``sys.meta_path``."""

    def __init__(self, cache: CodeCache) -> None:
        self.cache = cache
        self.found = False

    def find_spec(self, name: str, path: Sequence[str] | None, target: types.ModuleType | None = None
                  ) -> ModuleSpec | None:
        if name != "attr._make" or self.found:
            return None
        self.found = True
        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = cast("Loader", PatchingLoader(spec.loader, self))
        return spec


class PatchingLoader:
    """``attr._make``'s own loader, which :func:`patch`es the module once it has run."""

    def __init__(self, loader: Loader, finder: PatchOnImport) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self.finder)
        self.loader.exec_module(module)
        patch(module, self.finder.cache)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ...: the module's own loader's
        return getattr(self.loader, name)


def _has_expected_shape(function: CompileAndEval) -> bool:
    try:
        parameters = tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return parameters == WRAPPED_PARAMETERS
