"""The ``maestrod`` program (and ``python -m maestrod``): install the attrs code cache, then run the daemon.

Start-up time is a graceful restart's pause (the socket does not answer until the re-executed daemon has
imported everything), so two things happen here, before anything else of the daemon is imported:

* the attrs code cache (:mod:`maestrod.attrs_code_cache`) is installed, so that the daemon's classes are built
  from code compiled once rather than at every start, and what was newly compiled is saved as soon as the
  imports are done (~50 ms of ~250 ms);
* the garbage collector is off until the socket answers (:func:`maestrod.main.run` turns it back on): the
  imports allocate some 250,000 objects that all live as long as the daemon, and some hundred collections
  would look through them for nothing (~10 ms). Once imported, they are frozen (``gc.freeze``), so the
  collections of the running daemon never scan them either.
"""

from __future__ import annotations

import gc

from maestrod import attrs_code_cache


def main() -> int:
    gc.disable()
    cache = attrs_code_cache.install(attrs_code_cache.default_path())
    from maestrod import main as daemon  # noqa: PLC0415 - after the cache is installed, on purpose

    cache.save()
    gc.freeze()
    return daemon.main(code_cache_note=cache.ignored)
