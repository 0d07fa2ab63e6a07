"""A real headless Chromium (Debian's /usr/bin/chromium) driven through Playwright's sync API, for tests
and scripts that run a daemon under trio.

Playwright's sync objects belong to the thread that made them, and trio owns the test's main thread, so
the browser lives in one worker thread of its own: :meth:`Browser.run` hands it a function (called with
the Playwright browser) and waits for its result without blocking the trio loop.
Playwright's own browser downloads are never used (``executable_path``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import trio

T = TypeVar("T")

#: What Chromium needs to run headless here (as root, in a container, with no GPU and no network).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """Debian's chromium (``.ci/run`` installs it), or ``$MAESTRO_TEST_CHROMIUM``."""
    for candidate in (os.environ.get("MAESTRO_TEST_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def why_no_browser() -> str | None:
    """None when a browser test can run, else why not (for a skip that says so)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if chromium_path() is None:
        return "no chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)"
    return None


class Browser:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._playwright: Any = None
        self.browser: Any = None

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                                        headless=True)

    def start(self) -> None:
        self._pool.submit(self._start).result()

    def close(self) -> None:
        def stop() -> None:
            if self.browser is not None:
                self.browser.close()
            if self._playwright is not None:
                self._playwright.stop()

        try:
            self._pool.submit(stop).result(timeout=30)
        finally:
            self._pool.shutdown(wait=False)

    async def run(self, fn: Callable[[Any], T]) -> T:
        """``fn(browser)`` in the browser's thread, without blocking the trio loop."""
        future = self._pool.submit(fn, self.browser)
        return await trio.to_thread.run_sync(future.result)

