"""The dashboard page in a real headless Chromium, against a real daemon (Unix socket, web feed, PTYs).

Sessions are command sessions (small Python programs in a PTY) and the scripted Claude Code stand-in
(tests/conftest.py's FAKE_CLAUDE, for a real waiting_input + needs_attention through the hooks). Every
wait is for something to appear in the page (Playwright's waits); screenshots go to pytest's tmp_path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from maestrod.web.endpoint import WebEndpoint
from maestrod.web.feed import WebFeed
from tests.browser_support import Browser, why_no_browser
from tests.conftest import Daemon, EventLog, RawClient
from tests.session_support import _fake_claude, _project, _spawn

_NO_BROWSER = why_no_browser()
if _NO_BROWSER is not None and os.environ.get("MAESTRO_REQUIRE_BROWSER"):  # .ci/run, with chromium installed
    raise RuntimeError(f"{_NO_BROWSER} -- and MAESTRO_REQUIRE_BROWSER is set: the browser tests must run here")
pytestmark = pytest.mark.skipif(_NO_BROWSER is not None, reason=_NO_BROWSER or "")

#: Page waits (ms): generous for a loaded 2-core machine; a pass takes a fraction of it. Waits are
#: functions ("() => ..."), never bare expressions: the page's CSP forbids eval, which those need.
WAIT_MS = 15_000

#: A program with colours that echoes what it is sent ("got: ...") and exits on "exit".
ECHO = r'''
import sys
print("\x1b[1;32mready\x1b[0m to \x1b[38;5;208mtake\x1b[0m prompts", flush=True)
for line in sys.stdin:
    line = line.strip()
    if line == "exit":
        break
    print("got: " + line, flush=True)
'''

HOSTILE_NAME = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
HOSTILE_SCREEN = "<script>window.__pwned = 3</script><b>bold?</b>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    b.start()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
async def web(daemon: Daemon, nursery: trio.Nursery) -> AsyncIterator[WebEndpoint]:
    endpoint = await nursery.start(WebFeed(daemon.app, 0).run)
    assert endpoint is not None
    yield endpoint


def _open(browser: Any, url: str, width: int = 1280, height: int = 800) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors
    page.goto(url)
    page.wait_for_function("() => window.maestroStats && window.maestroStats.connects >= 1", timeout=WAIT_MS)
    return page


def _session_button(page: Any, sid: str) -> Any:
    return page.locator(f'button.session[data-id="{sid}"]')


def _wait_term(page: Any, text: str) -> None:
    page.wait_for_function("t => document.getElementById('term').textContent.includes(t)", arg=text,
                           timeout=WAIT_MS)


async def test_lists_sessions_shows_the_terminal_and_delivers_a_prompt(
        browser: Browser, web: WebEndpoint, client: RawClient, daemon: Daemon, short_tmp: Path,
        tmp_path: Path) -> None:
    await _project(client, short_tmp)
    s = await _spawn(client, [sys.executable, "-u", "-c", ECHO], name="echo-worker")
    sid = s["id"]

    def look(b: Any) -> dict[str, Any]:
        page = _open(b, web.dashboard_url)
        button = _session_button(page, sid)
        button.wait_for(timeout=WAIT_MS)
        assert "echo-worker" in button.inner_text()
        # The process tree's memory and CPU (session.list's rss_bytes/cpu_percent), in the row and the detail.
        import re

        assert re.search(r"\d+ MiB · \d+% CPU", button.locator(".res").inner_text())
        button.click()
        _wait_term(page, "ready to take prompts")
        # Colours from the screen model: "ready" is bold bright green, "take" palette 208.
        ready = page.locator("#term span", has_text="ready").first
        assert ready.evaluate("e => getComputedStyle(e).fontWeight") in ("700", "bold")
        take = page.locator("#term span", has_text="take").first
        assert take.evaluate("e => getComputedStyle(e).color") == "rgb(255, 135, 0)"
        # The prompt box: sent from the page, delivered into the program, echoed on its screen.
        page.fill("#prompt-text", "hello from the page")
        page.click("#prompt-send")
        page.wait_for_function("() => document.getElementById('prompt-state').textContent.includes('delivered')",
                               timeout=WAIT_MS)
        _wait_term(page, "got: hello from the page")
        page.screenshot(path=str(tmp_path / "desktop.png"))
        assert page.errors == [], page.errors
        result = {"frames": page.evaluate("window.maestroStats.framesRendered")}
        page.context.close()
        return result

    seen = await browser.run(look)
    assert seen["frames"] >= 2
    output = await client.call("session.output", {"id": sid})
    import base64

    assert b"got: hello from the page" in base64.b64decode(output["data"])
    history = await client.call("session.history", {"id": sid})
    assert [p["text"] for p in history["prompts"]] == ["hello from the page"]


async def test_status_and_attention_arrive_without_reload_and_notify(
        browser: Browser, web: WebEndpoint, client: RawClient, daemon: Daemon, short_tmp: Path,
        fake_claude: Path, events: EventLog) -> None:
    await _project(client, short_tmp)
    s = await _fake_claude(daemon, client, fake_claude, events, name="agent-1")
    sid = s["id"]
    origin = web.url.rstrip("/")

    def open_page(b: Any) -> Any:
        context = b.new_context(viewport={"width": 1280, "height": 800})
        context.grant_permissions(["notifications"], origin=origin)
        page = context.new_page()
        page.goto(web.dashboard_url)
        _session_button(page, sid).locator(".badge.st-idle").wait_for(timeout=WAIT_MS)
        page.evaluate("window.__sameDocument = true")
        assert page.evaluate("Notification.permission") == "granted"
        return page

    page = await browser.run(open_page)
    # The scripted agent raises a permission prompt: waiting_input with needs_attention, through its hooks.
    await client.call("session.input", {"id": sid, "text": "\x01"})
    await events.status(sid, "waiting_input")

    def changed(_b: Any) -> dict[str, Any]:
        button = _session_button(page, sid)
        button.locator(".badge.st-waiting_input").wait_for(timeout=WAIT_MS)
        attention = button.locator(".badge.attn")
        attention.wait_for(timeout=WAIT_MS)
        page.wait_for_function("() => window.maestroStats.notifications >= 1", timeout=WAIT_MS)
        page.wait_for_function("() => document.getElementById('attention').textContent.includes('permission')",
                               timeout=WAIT_MS)
        out = {"title": attention.get_attribute("title"), "same": page.evaluate("window.__sameDocument"),
               "connects": page.evaluate("window.maestroStats.connects")}
        page.context.close()
        return out

    seen = await browser.run(changed)
    assert seen == {"title": "Claude needs your permission", "same": True, "connects": 1}


async def test_agent_text_is_shown_as_text(
        browser: Browser, web: WebEndpoint, client: RawClient, daemon: Daemon, short_tmp: Path) -> None:
    await _project(client, short_tmp)
    program = f"import time; print({HOSTILE_SCREEN!r}, flush=True); time.sleep(600)"
    s = await _spawn(client, [sys.executable, "-c", program], name=HOSTILE_NAME)

    def look(b: Any) -> dict[str, Any]:
        page = _open(b, web.dashboard_url)
        button = _session_button(page, s["id"])
        button.wait_for(timeout=WAIT_MS)
        button.click()
        _wait_term(page, HOSTILE_SCREEN)
        out = {"name": button.locator(".name").inner_text(), "title": page.inner_text("#sel-name"),
               "pwned": page.evaluate("window.__pwned === undefined ? null : window.__pwned"),
               "injected": page.evaluate("document.querySelectorAll('#term b, #session-groups img, "
                                         "body script').length"),
               "errors": page.errors}
        page.context.close()
        return out

    seen = await browser.run(look)
    # The page's only script element is its own; nothing the agent wrote became an element.
    assert seen == {"name": HOSTILE_NAME, "title": HOSTILE_NAME, "pwned": None, "injected": 1, "errors": []}


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
async def test_layout_fits_without_horizontal_scroll(
        browser: Browser, web: WebEndpoint, client: RawClient, daemon: Daemon, short_tmp: Path,
        tmp_path: Path, width: int, height: int) -> None:
    await _project(client, short_tmp)
    wide = "import time; print('W' * 120 + '|end', flush=True); time.sleep(600)"  # a full 120-column row
    s = await _spawn(client, [sys.executable, "-c", wide], name="a-session-with-a-rather-long-name-" * 2)

    def look(b: Any) -> dict[str, Any]:
        page = _open(b, web.dashboard_url, width, height)
        _session_button(page, s["id"]).wait_for(timeout=WAIT_MS)
        _wait_term(page, "|end")
        page.screenshot(path=str(tmp_path / f"dashboard-{width}.png"), full_page=True)
        out = page.evaluate("""() => {
            const vis = (id) => { const r = document.getElementById(id).getBoundingClientRect();
                                  return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= innerWidth; };
            return {scroll: document.documentElement.scrollWidth, inner: innerWidth,
                    sessions: vis('sessions'), terminal: vis('termbox'),
                    termTop: document.getElementById('termbox').getBoundingClientRect().top};
        }""")
        page.context.close()
        return out  # type: ignore[no-any-return]

    seen = await browser.run(look)
    assert seen["scroll"] <= seen["inner"] == width, seen
    assert seen["sessions"] and seen["terminal"], seen
    if width >= 1280:  # on a desktop the terminal is on the first screen, beside the list
        assert seen["termTop"] < height, seen
