"""The screen witness: classified on a trigger, while a dialog is up, on request; never faster than its rate;
stale is never a prompt; a plain command is never classified unless asked; backlogs fed off the loop.

Timing runs on trio's MockClock (autojump): sleeps are virtual, and "nothing happened" is checked once every
task is blocked (trio.testing.wait_all_tasks_blocked), never after a real sleep.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import attrs
import pytest
import trio
import trio.testing

from maestrod.sessions import screen as screen_mod
from maestrod.sessions import terminal as terminal_mod
from maestrod.sessions.screen import ScreenObservation, ScreenWatch
from maestrod.sessions.terminal import BACKLOG_MAX, DEFAULT_EMULATOR, Terminal

PROMPT = b"\x1b[2J\x1b[H\xe2\x95\xad\xe2\x94\x80\xe2\x94\x80\xe2\x95\xae\r\n\xe2\x94\x82 > \r\n  ? for shortcuts\r\n"
#: Drawn like Claude Code 2.1.328 draws it: words placed with cursor moves (ESC[nG), not spaces.
DIALOG = (b"\x1b[2J\x1b[H\x1b[2GQuick\x1b[8Gsafety\x1b[15Gcheck:\x1b[22GIs\x1b[25Gthis\x1b[30Ga\x1b[32Gproject\r\n"
          b"\x1b[2G\xe2\x9d\xaf 1. Yes, I trust this folder\r\n\x1b[4G2. No, exit\r\n")


@attrs.frozen
class Match:
    kind: str
    rule: str
    reason: str | None = None


class Rules:
    """A stand-in for maestrod.sessions.screens.ScreenRules: the trust dialog and the empty prompt."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def match(self, lines: list[str]) -> Match | None:
        self.calls.append(trio.current_time())
        text = "\n".join(lines)
        if "Quick safety check" in text and "No, exit" in text:
            return Match("dialog", "trust-folder", "Claude Code asks whether to trust this folder")
        if "? for shortcuts" in text:
            return Match("prompt", "empty-prompt")
        return None

    def trigger_pattern(self) -> re.Pattern[bytes]:
        return re.compile(rb"safety|shortcuts")


class Harness:
    def __init__(self, rules: Rules | None, *, rows: int = 24, cols: int = 80, rate: float = 4.0) -> None:
        self.terminal = Terminal(rows, cols)
        self.rules = rules
        self.changes: list[ScreenObservation] = []
        self.send, self.receive = trio.open_memory_channel[ScreenObservation](100)
        self.watch = ScreenWatch(self.terminal, rules, self._changed, max_rate_hz=rate)

    def _changed(self, obs: ScreenObservation) -> None:
        self.changes.append(obs)
        self.send.send_nowait(obs)

    def write(self, data: bytes) -> None:
        """What the session's reader does with one read."""
        self.terminal.process(data)
        self.watch.output_arrived()

    async def next_change(self) -> ScreenObservation:
        with trio.fail_after(30):
            return await self.receive.receive()


@pytest.fixture(autouse=True, params=["avt", "pyte"])
def emulator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both screen models (avt when pyavt is installed; pyte is the fallback)."""
    if request.param == "avt":
        pytest.importorskip("avt")
    monkeypatch.setattr(terminal_mod, "DEFAULT_EMULATOR", request.param)
    return str(request.param)


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as n:
        yield n
        n.cancel_scope.cancel()


async def started(h: Harness, nursery: trio.Nursery) -> Harness:
    nursery.start_soon(h.watch.run)
    await trio.testing.wait_all_tasks_blocked()
    return h


async def test_a_trigger_gets_the_dialog_classified_and_its_going_seen(
        autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    h = await started(Harness(Rules()), nursery)
    h.write(PROMPT)
    prompt = await h.next_change()
    assert (prompt.kind, prompt.rule) == ("prompt", "empty-prompt")
    await trio.sleep(2)
    shown_at = trio.current_time()
    h.write(DIALOG)
    dialog = await h.next_change()
    assert (dialog.kind, dialog.rule, dialog.reason) == (
        "dialog", "trust-folder", "Claude Code asks whether to trust this folder")
    assert dialog.at - shown_at <= screen_mod.SETTLE_MAX  # quiet session: only the settling wait
    # The dialog goes: redrawn text with no trigger in it is classified because a dialog was up.
    await trio.sleep(2)
    h.write(b"\x1b[2J\x1b[Hworking on it...\r\n")
    gone = await h.next_change()
    assert gone.kind == "other" and h.watch.latest == gone


async def test_on_change_only_when_kind_rule_or_reason_change(
        autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    rules = Rules()
    h = await started(Harness(rules), nursery)
    h.write(PROMPT)
    await h.next_change()
    for _ in range(5):
        await trio.sleep(1)
        calls = len(rules.calls)
        h.write(PROMPT)  # the same prompt drawn again: classified, not reported
        while len(rules.calls) == calls:
            await trio.sleep(0.01)
    await trio.testing.wait_all_tasks_blocked()
    assert len(h.changes) == 1 and len(rules.calls) >= 6
    latest = h.watch.latest
    assert latest is not None and latest.at > h.changes[0].at


async def test_never_faster_than_its_rate(autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    rules = Rules()
    h = await started(Harness(rules, rate=4.0), nursery)
    h.write(DIALOG)
    await h.next_change()
    # A dialog stays up while output streams under it: every read asks for a classification.
    for i in range(300):
        h.write(b"\x1b[20;1Hspinner %d" % i)
        await trio.sleep(0.01)
    gaps = [b - a for a, b in zip(rules.calls, rules.calls[1:])]
    assert len(rules.calls) >= 8 and min(gaps) >= 0.25 - 1e-9


async def test_a_dialog_drawn_in_pieces_is_classified_whole(
        autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    rules = Rules()
    h = await started(Harness(rules), nursery)
    half = DIALOG.index(b"\r\n") + 2
    h.write(DIALOG[:half])  # the trigger is in the first piece, "No, exit" in the second
    await trio.sleep(0.003)
    h.write(DIALOG[half:])
    obs = await h.next_change()
    assert obs.kind == "dialog" and len(rules.calls) == 1


async def test_a_trigger_cut_between_two_reads(autojump_clock: trio.testing.MockClock,
                                                nursery: trio.Nursery) -> None:
    h = await started(Harness(Rules()), nursery)
    cut = DIALOG.index(b"safety") + 3
    h.write(DIALOG[:cut])
    await trio.sleep(1)  # long past the settling time: the first piece alone is not classified
    assert h.changes == []
    h.write(DIALOG[cut:])
    assert (await h.next_change()).kind == "dialog"


async def test_stale_is_never_a_prompt(autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    h = await started(Harness(Rules()), nursery)
    h.write(PROMPT)
    assert (await h.next_change()).kind == "prompt"
    # A flood: more than the model's queue holds, so output is dropped for it; the prompt is still
    # drawn at the end, but what the screen shows is unknown.
    block = b"".join(b"line %06d of a flood\r\n" % i for i in range(2000))
    for _ in range(BACKLOG_MAX // len(block) + 2):
        h.write(block)
    h.write(b"  ? for shortcuts\r\n")
    assert h.terminal.stale
    assert (await h.next_change()).kind == "stale"
    assert (await h.watch.fresh()).kind == "stale"
    # A full repaint makes it known again.
    await trio.sleep(1)
    h.write(PROMPT)
    assert not h.terminal.stale
    assert (await h.next_change()).kind == "prompt"


async def test_without_rules_nothing_is_classified_unless_asked(
        autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    h = await started(Harness(None), nursery)
    for _ in range(20):
        h.write(DIALOG)
        await trio.sleep(0.05)
    await trio.testing.wait_all_tasks_blocked()
    assert h.watch.latest is None and h.changes == []
    obs = await h.watch.fresh()
    assert (obs.kind, obs.rule, obs.reason) == ("other", None, None)
    assert "Quick" in h.terminal.text() and h.terminal.pending_bytes == 0
    h.watch.request()
    await trio.testing.wait_all_tasks_blocked()
    latest = h.watch.latest
    assert latest is not None and latest.kind == "other" and len(h.changes) == 1


async def test_a_steady_stream_is_fed_in_the_background(
        autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    h = await started(Harness(None), nursery)
    line = b"x" * 70 + b"\r\n"
    for _ in range(3000):  # ~216 KB at ~7 KB a second: never enough to overflow the model's queue
        h.write(line)
        await trio.sleep(0.01)
    assert h.terminal.pending_bytes < screen_mod.FEED_AT + len(line)
    assert not h.terminal.stale and h.terminal.model_skipped == 0 and h.watch.latest is None


async def test_fresh_brings_everything_up_to_date_and_reports(
        autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    h = await started(Harness(Rules()), nursery)
    h.terminal.set_triggers(None)  # no background classification: only fresh() looks
    h.write(DIALOG)
    assert h.terminal.pending_bytes == len(DIALOG)
    obs = await h.watch.fresh()
    assert obs.kind == "dialog" and h.terminal.pending_bytes == 0 and h.changes == [obs]


async def test_a_large_backlog_is_fed_in_a_worker_thread(nursery: trio.Nursery,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[object] = []
    real = trio.to_thread.run_sync

    async def spy(fn: object, *args: object, **kwargs: object) -> object:
        threads.append(fn)
        return await real(fn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trio.to_thread, "run_sync", spy)
    h = Harness(Rules(), rows=40, cols=100)
    rows = [b"\x1b[%d;1H%s" % (y % 8 + 30, (b"row %d " % y) * 8) for y in range(4000)]
    body = b"".join(rows[: 2 * h.terminal.slice_bytes // len(rows[0])])  # two slices of the emulator's
    assert h.terminal.slice_bytes < len(body) < BACKLOG_MAX
    h.terminal.process(body + DIALOG.replace(b"\x1b[2J", b""))  # no full clear: the backlog must be fed
    obs = await h.watch.fresh()
    assert obs.kind == "dialog" and threads and h.terminal.pending_bytes == 0


async def test_feeding_in_a_thread_while_the_loop_reads() -> None:
    """Output keeps arriving (clears, queries, text) while a worker thread feeds the model: the model ends
    up exactly where a terminal fed synchronously ends up."""
    frames = [b"\x1b[2J\x1b[H" + b"".join(b"frame %d row %d\r\n" % (f, r) for r in range(30)) for f in range(200)]
    stream = b"".join(frames[i] + (b"\x1b[6n" if i % 50 == 0 else b"") + b"tail %d" % i for i in range(200))
    reference = Terminal(40, 80)
    reference.process(stream)
    reference.sync_now(full=True)
    t = Terminal(40, 80)
    done = False

    def feeder() -> None:
        while not done or t.pending_bytes:
            t.feed_some(t.slice_bytes // 8 or 1)

    async with trio.open_nursery() as n:
        n.start_soon(trio.to_thread.run_sync, feeder)
        replies = []
        for i in range(0, len(stream), 997):
            replies += t.process(stream[i : i + 997])[1]
            await trio.sleep(0)
        done = True
    t.sync_now(full=True)
    assert t.lines() == reference.lines() and t.cursor == reference.cursor
    assert len(replies) == 4


def test_default_emulator_is_avt_when_installed(emulator: str) -> None:
    pytest.importorskip("avt")
    assert DEFAULT_EMULATOR == "avt" and Terminal(2, 2).emulator == emulator
