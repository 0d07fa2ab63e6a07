"""The ``maestrod`` program (and ``python -m maestrod``): install the attrs code cache, then run the daemon.

The cache (:mod:`maestrod.attrs_code_cache`) must be in place before the daemon's modules create their classes,
so this module imports :mod:`maestrod.main` only after installing it, and saves what was newly compiled as soon
as those imports are done (the daemon itself then runs for days).
"""

from __future__ import annotations

from maestrod import attrs_code_cache


def main() -> int:
    cache = attrs_code_cache.install(attrs_code_cache.default_path())
    from maestrod import main as daemon  # noqa: PLC0415 - after the cache is installed, on purpose

    cache.save()
    return daemon.main()
